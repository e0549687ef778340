"""Lever 2, measured only: exact flat search against HNSW on the index's own passage vectors.

Recall@10 counts an HNSW hit as right when its exact score reaches the exact 10th score, so
republished copies (identical vectors, tied scores) do not count as misses.
"""

from __future__ import annotations

import time
from typing import Any

import faiss
import numpy as np

from evals.bench_stats import summary


def near_duplicates(vectors: np.ndarray, spread: float = 0.2, seed: int = 7) -> np.ndarray:
    """Each vector nudged by seeded noise (norm ``spread``: cosine ~0.98 to the original), so
    republished copies become near-duplicates, as a real archive's recurring statements are;
    exact duplicates by the hundred make HNSW's graph fall apart into cliques."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(vectors.shape).astype(np.float32) * (spread / np.sqrt(vectors.shape[1]))
    out = vectors + noise
    return np.ascontiguousarray(out / np.linalg.norm(out, axis=1, keepdims=True), dtype=np.float32)


def _timed_search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    ms, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = index.search(q[None, :], k)
        ms.append((time.perf_counter() - t) * 1e3)
        ids.append(i[0])
    return ms, np.stack(ids)


def compare(
    vectors: np.ndarray, queries: np.ndarray, *, k: int = 10, ef: tuple[int, ...] = (32, 64, 128)
) -> dict[str, Any]:
    d = vectors.shape[1]
    flat = faiss.IndexFlatIP(d)
    flat.add(vectors)
    flat_ms, _ = _timed_search(flat, queries, k)
    # OpenMP threads spin while they wait; on busy shared cores one thread can be far faster
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        flat1_ms, _ = _timed_search(flat, queries, k)
    finally:
        faiss.omp_set_num_threads(threads)
    exact, _ = flat.search(queries, k)
    kth = exact[:, -1]
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(vectors)
    build_s = time.perf_counter() - t
    out: dict[str, Any] = {
        "n": len(vectors),
        "flat_ms": summary(flat_ms),
        "flat_1_thread_ms": summary(flat1_ms),
        "omp_threads": threads,
        "hnsw_build_s": build_s,
        "hnsw_M": 32,
        "hnsw_efConstruction": 80,
        "hnsw": {},
    }
    for e in ef:
        hnsw.hnsw.efSearch = e
        ms, ids = _timed_search(hnsw, queries, k)
        # exact scores of what HNSW returned, against the exact k-th score
        scores = np.einsum("qd,qkd->qk", queries, vectors[np.clip(ids, 0, None)])
        good = (scores >= kth[:, None] - 1e-5) & (ids >= 0)
        out["hnsw"][str(e)] = {"ms": summary(ms), "recall_at_10": float(good.mean())}
    return out
