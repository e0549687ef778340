"""Ship a reader checkpoint into the package: fp16 weights, tokenizer, its training log and model card."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from qa.training.reader import model_card, swap_in
from qa.training.shared_norm import open_reader_card

BLEND_SECTION = """
## Then: blended with the reader it started from

The weights shipped are {weight:.2f} x the run's above + {rest:.2f} x `{blend}`'s, parameter by
parameter (WiSE-FT, Wortsman et al. 2022): `release-qa export-reader CHECKPOINT --blend {blend}
--weight {weight}`.
"""


def shipped_log(meta: dict[str, Any]) -> dict[str, Any]:
    """A training log as it ships: without the optimizer's resume bookkeeping (parameter index
    lists that only a checkpoint's ``--resume`` reads), at every stage it keeps."""
    out = {k: v for k, v in meta.items() if k != "optimizer_groups"}
    if isinstance(out.get("base_training"), dict):
        out["base_training"] = shipped_log(out["base_training"])
    return out


def export_reader(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    blend: str | os.PathLike[str] | None = None,
    weight: float = 1.0,
    note: str | None = None,
) -> Path:
    """Ship a checkpoint: fp16 safetensors, tokenizer, training log and a model card, swapped in
    atomically. The old calibration no longer fits the new weights and is dropped.

    ``blend``: a reader of the same shape (the one the checkpoint was fine-tuned from); the weights
    shipped are ``weight`` x the checkpoint's + (1 - ``weight``) x its (WiSE-FT, Wortsman et al.
    2022: interpolating a fine-tuned model with its start keeps much of the fine-tuning's gain in
    its domain and loses less elsewhere).

    ``note``: Markdown appended to the model card, for what the training log cannot know (which
    weights a path in the commands held when they ran)."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight!r}")
    if blend is None and weight != 1.0:
        raise ValueError(f"weight {weight!r} needs a reader to blend with (blend)")
    if note is not None and not note.strip():
        raise ValueError("note is empty: leave it out, or give the text to append to the card")
    src, dst = Path(checkpoint), Path(out)
    meta = json.loads((src / "training.json").read_text())
    model = AutoModelForQuestionAnswering.from_pretrained(src, dtype=torch.float32)
    if blend is not None:
        other = AutoModelForQuestionAnswering.from_pretrained(blend, dtype=torch.float32).state_dict()
        mine = model.state_dict()
        if mine.keys() != other.keys() or any(mine[k].shape != other[k].shape for k in mine):
            raise ValueError(f"{blend}: not the shape of {src}: blending needs the same architecture")
        model.load_state_dict(
            {
                k: weight * v + (1.0 - weight) * other[k] if v.is_floating_point() else v
                for k, v in mine.items()
            }
        )
        meta["blend"] = {"with": str(blend), "weight": weight}
    model = model.half()
    tok = AutoTokenizer.from_pretrained(src)
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    for junk in ("special_tokens_map.json", "vocab.txt"):
        if (tmp / junk).exists() and (tmp / "tokenizer.json").exists():
            (tmp / junk).unlink()
    (tmp / "training.json").write_text(json.dumps(shipped_log(meta), indent=2))
    card = open_reader_card(meta) if meta.get("kind") == "shared-norm" else model_card(meta)
    if blend is not None:
        card += BLEND_SECTION.format(weight=weight, rest=1.0 - weight, blend=blend)
    if note is not None:
        card = card.rstrip("\n") + "\n\n" + note.strip("\n") + "\n"
    (tmp / "README.md").write_text(card)
    swap_in(tmp, dst)
    return dst
