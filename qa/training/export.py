"""Ship a reader checkpoint into the package: fp16 weights, tokenizer, its training log and model card."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from qa.training.reader import model_card, swap_in
from qa.training.shared_norm import open_reader_card


def export_reader(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Ship a checkpoint: fp16 safetensors, tokenizer, training log and a model card, swapped in
    atomically. The old calibration no longer fits the new weights and is dropped."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    src, dst = Path(checkpoint), Path(out)
    meta = json.loads((src / "training.json").read_text())
    model = AutoModelForQuestionAnswering.from_pretrained(src, dtype=torch.float32).half()
    tok = AutoTokenizer.from_pretrained(src)
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    for junk in ("special_tokens_map.json", "vocab.txt"):
        if (tmp / junk).exists() and (tmp / "tokenizer.json").exists():
            (tmp / junk).unlink()
    (tmp / "training.json").write_text(json.dumps(meta, indent=2))
    card = open_reader_card(meta) if meta.get("kind") == "shared-norm" else model_card(meta)
    (tmp / "README.md").write_text(card)
    swap_in(tmp, dst)
    return dst
