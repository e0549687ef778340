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
