"""Lever 1: the encoder through ONNX Runtime against torch, interleaved in one process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from evals.bench_peers import ROOT, peer_env
from evals.bench_stats import summary
from qa.embedding import SentenceTransformerEmbedder

COLD = (
    "import time; t=time.perf_counter(); from qa.embedding import SentenceTransformerEmbedder as E; "
    "e=E(backend='{b}'); e.encode(['Who chaired the meeting?']); print(time.perf_counter()-t)"
)


def compare(passages: Sequence[str], questions: Sequence[str], rounds: int) -> dict[str, Any]:
    encs = {b: SentenceTransformerEmbedder(backend=b) for b in ("torch", "onnx")}
    for e in encs.values():
        e.encode(["warm up"])
    vt = encs["torch"].encode(list(passages) + list(questions))
    vo = encs["onnx"].encode(list(passages) + list(questions))
    cos = (vt * vo).sum(axis=1)
    batch: dict[str, list[float]] = {b: [] for b in encs}
    query: dict[str, list[float]] = {b: [] for b in encs}
    cold: dict[str, list[float]] = {b: [] for b in encs}
    for r in range(rounds):
        order = list(encs) if r % 2 == 0 else list(reversed(encs))
        for b in order:
            t = time.perf_counter()
            encs[b].encode(list(passages))
            batch[b].append(len(passages) / (time.perf_counter() - t))
        for q in questions:
            for b in order:
                t = time.perf_counter()
                encs[b].encode([q])
                query[b].append((time.perf_counter() - t) * 1e3)
        for b in order:
            out = subprocess.run(
                [sys.executable, "-c", COLD.format(b=b)],
                cwd=ROOT,
                env=peer_env(),
                capture_output=True,
                text=True,
                check=True,
            )
            cold[b].append(float(out.stdout.strip().splitlines()[-1]))
    return {
        "texts_compared": len(cos),
        "cosine_min": float(cos.min()),
        "cosine_mean": float(np.mean(cos)),
        "passages_per_s": {b: summary(v) for b, v in batch.items()},
        "query_encode_ms": {b: summary(v) for b, v in query.items()},
        "cold_start_s": {b: summary(v) for b, v in cold.items()},
        "throughput_ratio": summary([o / t for o, t in zip(batch["onnx"], batch["torch"], strict=True)]),
        "query_ratio": summary(query["torch"])["p50"] / summary(query["onnx"])["p50"],
        "passages": len(passages),
        "questions": len(questions),
        "rounds": rounds,
    }
