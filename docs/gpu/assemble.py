"""Device output -> checkpoint folders (fp16 weights; a student gets its frozen word embeddings back
from its base, the reader it started from, where that folder is here (run-parallel.sh: the shipped
reader, so assemble before exporting a new one), else from the teacher of the same call (run.sh))."""

import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load, save_file

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
KEY = "bert.embeddings.word_embeddings.weight"
weights = {}
for name in ("teacher", "student"):
    parts = sorted(src.glob(f"{name}.part*"), key=lambda p: int(p.name.split("part")[1]))
    if not parts:
        continue
    w = load(b"".join(p.read_bytes() for p in parts))
    d = json.loads((src / f"{name}.json").read_text())
    if KEY not in w:
        base = Path(d["training"]["config"].get("base") or "") / "model.safetensors"
        w[KEY] = load(base.read_bytes())[KEY].half() if base.is_file() else weights["teacher"][KEY]
    weights[name] = w
    out = dst / name
    out.mkdir(parents=True, exist_ok=True)
    save_file(w, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(d["config"], indent=2))
    (out / "training.json").write_text(json.dumps(d["training"], indent=2))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path("qa/models/reader") / f, out / f)
    t = d["training"]
    print(
        name,
        t["state"],
        t["seconds"],
        t["done"],
        [(h["windows"], round(h.get("f1", 0), 3)) for h in t["history"][-4:]],
    )
