"""FAISS helpers: ids from content keys, flat or IVF indexes by size, search parameters."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import faiss
import numpy as np

from qa.types import Sentence

logger = logging.getLogger(__name__)


def vector_id(key: str) -> int:
    """A positive int64 FAISS id from a content key, stable across rebuilds."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 4


def sentence_key(s: Sentence) -> str:
    return f"{s.release_id}:s:{s.start}:{s.end}"


def flat_index(dimension: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


IVF_FROM = 50_000


"""From this many vectors, search scans a few inverted lists (IVF), not every vector: at
100k passages the 357k sentence vectors took 71 ms a question to scan exactly on 2 cores.
Smaller indexes stay exact. Recall@10 against exact search is measured by ``make bench``."""


IVF_PROBE = 1 / 16


"""Share of the inverted lists a search visits (at least 16 lists)."""


def sized(vectors: faiss.Index) -> faiss.Index:
    """The vector index fit for its size: exact below ``IVF_FROM``, else an IVF trained on
    (a sample of) its own vectors. IVF keeps ids, reconstruct and remove (hash-table map)."""
    if not wants_ivf(vectors):
        return vectors
    n, d = vectors.ntotal, vectors.d
    ids = faiss.vector_to_array(vectors.id_map).astype(np.int64)
    x = vectors.index.reconstruct_n(0, n)
    nlist = int(4 * np.sqrt(n))
    sample = np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)
    logger.info("training an IVF index of %d lists on %d of %d vectors", nlist, len(sample), n)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = 0
    ivf.train(np.ascontiguousarray(x[np.sort(sample)]))
    ivf.add_with_ids(x, ids)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.nprobe = max(16, int(nlist * IVF_PROBE))
    return ivf


PQ_TRAIN = 65_536


"""Vectors an IVF-PQ quantizer is trained on (a seeded sample): enough for 4·√n lists and 256
codes per sub-vector up to tens of millions of vectors, and all the float vectors a compressed
build holds in RAM at once."""


PQ_MIN = 1_000


"""Fewer vectors than this stay exact in a compressing index (their floats take < 2 MB)."""


def wants_pq(vectors: faiss.Index) -> bool:
    """A compressing index converts its float vectors once it holds ``PQ_TRAIN`` of them."""
    return not isinstance(vectors, faiss.IndexIVFPQ) and vectors.ntotal >= PQ_TRAIN


def to_ivfpq(vectors: faiss.Index, *, expected: int | None = None) -> tuple[faiss.IndexIVFPQ, float]:
    """The vectors as IVF-PQ codes (``d/4`` bytes a vector: 96 for MiniLM's 384 dimensions, where
    48 bytes gave recall@10 0.83 and 96 gave 0.91 on 20,600 SQuAD passages),
    the quantizer trained on a sample of them; with recall@10 against exact search measured on
    256 of them as queries. ``expected`` (default: the count held) sizes the inverted lists."""
    if isinstance(vectors, faiss.IndexIVFPQ):
        return vectors, 1.0
    n, d = vectors.ntotal, vectors.d
    if isinstance(vectors, faiss.IndexIVF):
        ids = vector_ids(vectors)
        x = vectors.reconstruct_batch(ids)
    else:
        ids = faiss.vector_to_array(vectors.id_map).astype(np.int64)
        x = vectors.index.reconstruct_n(0, n)
    rng = np.random.default_rng(0)
    sample = np.ascontiguousarray(x[np.sort(rng.choice(n, size=min(n, PQ_TRAIN), replace=False))])
    total = max(n, expected or 0)
    nlist = max(1, min(int(4 * np.sqrt(total)), len(sample) // 39))
    m = max(1, d // 4)
    while d % m:
        m -= 1
    nbits = 8 if len(sample) >= 10 * 256 else 4  # small archives: fewer codes, each trained on enough points
    logger.info(
        "training IVF-PQ (%d lists, %d x %d bits) on %d of %d vectors", nlist, m, nbits, len(sample), n
    )
    pq = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    pq.cp.seed = 0
    pq.train(sample)
    pq.set_direct_map_type(faiss.DirectMap.Hashtable)
    pq.nprobe = max(16, int(nlist * IVF_PROBE))
    pq.add_with_ids(np.ascontiguousarray(x), ids)
    queries = np.ascontiguousarray(x[rng.choice(n, size=min(n, 256), replace=False)])
    exact = faiss.IndexFlatIP(d)
    exact.add(np.ascontiguousarray(x))
    k = min(10, n)
    _, want = exact.search(queries, k)
    _, got = pq.search(queries, k)
    recall = float(
        np.mean([len(set(ids[w].tolist()) & set(g.tolist())) / k for w, g in zip(want, got, strict=True)])
    )
    logger.info("IVF-PQ recall@%d against exact: %.3f", k, recall)
    return pq, recall


def vector_ids(vectors: faiss.Index) -> np.ndarray:
    """Every id a vector index (flat or IVF) holds, sorted."""
    if isinstance(vectors, faiss.IndexIVF):
        lists = vectors.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(vectors.nlist)
            if lists.list_size(i)
        ]
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    else:
        ids = faiss.vector_to_array(vectors.id_map)
    return np.sort(ids.astype(np.int64))


def wants_ivf(vectors: faiss.Index) -> bool:
    return not isinstance(vectors, faiss.IndexIVF) and vectors.ntotal >= IVF_FROM


def search_params(vectors: faiss.Index, selector: faiss.IDSelector | None = None) -> Any:
    """Search parameters restricting a search to ``selector`` (None: everything)."""
    if isinstance(vectors, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=vectors.nprobe) if selector else None
    return faiss.SearchParameters(sel=selector) if selector else None
