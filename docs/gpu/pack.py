"""A checkpoint's fp16 weights in pieces under 16 MiB (a student without its frozen word embeddings:
they are its teacher's), with its training log and config in one JSON."""

import json
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

src, dst, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
meta = json.loads((src / "training.json").read_text())
meta.pop("optimizer_groups", None)
skip = "bert.embeddings.word_embeddings.weight" if meta["config"].get("freeze_word_embeddings") else None
w = {k: v.half().contiguous() for k, v in load_file(src / "model.safetensors").items() if k != skip}
save_file(w, dst / "tmp.safetensors", metadata={"format": "pt"})
data = (dst / "tmp.safetensors").read_bytes()
(dst / "tmp.safetensors").unlink()
step = 15 * 2**20
for i in range(0, len(data), step):
    (dst / f"{name}.part{i // step}").write_bytes(data[i : i + step])
# the transport's paths -> the project's (the same data)
meta["config"] |= {
    "train": "../shared/train/squad-v1.1-train.json.gz",
    "dev": "../shared/evals/squad-v1.1-dev-shared.json",
    "negatives": "checkpoints/negatives.jsonl",
    "press_negatives": "checkpoints/press-negatives.jsonl",
    "out": "checkpoints/open-reader" if name == "teacher" else "checkpoints/student",
}
(dst / f"{name}.json").write_text(
    json.dumps({"training": meta, "config": json.loads((src / "config.json").read_text())})
)
print("PACKED", name, len(data))
