"""Lever 2: exact flat search against HNSW and IVF on the index's own vectors.

IVF is what the index adopts from ``qa.index.IVF_FROM`` vectors (``qa.index.sized``);
HNSW is measured only.

Recall@10 counts an HNSW hit as right when its exact score reaches the exact 10th score, so
republished copies (identical vectors, tied scores) do not count as misses.
"""

from __future__ import annotations

import time
from typing import Any

import faiss
import numpy as np

from evals.bench_stats import summary
from qa.index import IVF_FROM, sized


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
        out["hnsw"][str(e)] = {"ms": summary(ms), "recall_at_10": _recall(vectors, queries, ids, kth)}
    del hnsw
    if len(vectors) >= IVF_FROM:
        out["ivf"] = ivf_check(vectors, queries, k=k)
    return out


def _recall(vectors: np.ndarray, queries: np.ndarray, ids: np.ndarray, kth: np.ndarray) -> float:
    """Share of returned ids whose exact score reaches the exact k-th score (ties count)."""
    scores = np.einsum("qd,qkd->qk", queries, vectors[np.clip(ids, 0, None)])
    return float(((scores >= kth[:, None] - 1e-5) & (ids >= 0)).mean())


def ivf_check(vectors: np.ndarray, queries: np.ndarray, *, k: int = 10) -> dict[str, Any]:
    """The IVF index exactly as the library builds it (rows as ids), at its own nprobe and
    at a quarter and a half of it: training time, latency and recall@k against exact."""
    d = vectors.shape[1]
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    flat.add_with_ids(vectors, np.arange(len(vectors), dtype=np.int64))
    exact, _ = flat.search(queries, k)
    t = time.perf_counter()
    ivf = sized(flat)
    out: dict[str, Any] = {"n": len(vectors), "train_s": time.perf_counter() - t, "nlist": ivf.nlist}
    shipped = ivf.nprobe
    out["nprobe"] = shipped
    out["runs"] = {}
    for nprobe in sorted({max(1, shipped // 4), max(1, shipped // 2), shipped}):
        ivf.nprobe = nprobe
        ms, ids = _timed_search(ivf, queries, k)
        out["runs"][str(nprobe)] = {
            "ms": summary(ms),
            "recall_at_10": _recall(vectors, queries, ids, exact[:, -1]),
        }
    ivf.nprobe = shipped
    return out
