"""Dense passage retrieval over an ``Index``, with date and source filters."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from qa.embedding import Embedder
from qa.index import Index
from qa.types import Hit, Release

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which releases may answer: a date range (inclusive) and a set of sources.

    A release without a date is excluded by any date bound; ``sources`` matches
    case-insensitively.
    """

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        if isinstance(self.sources, str):
            raise ValueError(f"sources must be a tuple of names, got the string {self.sources!r}")

    @property
    def empty(self) -> bool:
        return self.date_from is None and self.date_to is None and self.sources is None

    def allows(self, release: Release) -> bool:
        if self.date_from is not None or self.date_to is not None:
            if release.date is None:
                return False
            if self.date_from is not None and release.date < self.date_from:
                return False
            if self.date_to is not None and release.date > self.date_to:
                return False
        if self.sources is not None:
            wanted = {s.casefold() for s in self.sources}
            if (release.source or "").casefold() not in wanted:
                return False
        return True


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return k


class Retriever:
    """Top-k passages for a question by cosine similarity of normalized vectors."""

    def __init__(self, index: Index, embedder: Embedder, k: int = 10):
        index.check_embedder(embedder)
        self.index = index
        self.embedder = embedder
        self.k = _check_k(k)

    def encode(self, queries: Sequence[str]) -> np.ndarray:
        return self.embedder.encode(list(queries))

    def search(self, query: str, k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        return self.search_batch([query], k=k, filters=filters)[0]

    def search_batch(
        self, queries: Sequence[str], k: int | None = None, filters: Filters | None = None
    ) -> list[list[Hit]]:
        return self.search_vectors(self.encode(queries), k=k, filters=filters)

    def search_vectors(
        self, vectors: np.ndarray, k: int | None = None, filters: Filters | None = None
    ) -> list[list[Hit]]:
        k = self.k if k is None else _check_k(k)
        n = self.index.passage_vectors.ntotal
        if n == 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        params = None
        if filters is not None and not filters.empty:
            allowed = np.array(
                [
                    fid
                    for fid, p in self.index.passages.items()
                    if filters.allows(self.index.releases[p.release_id])
                ],
                dtype=np.int64,
            )
            if len(allowed) == 0:
                return [[] for _ in range(len(vectors))]
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            n = len(allowed)
        scores, ids = self.index.passage_vectors.search(
            np.ascontiguousarray(vectors, dtype=np.float32), min(k, n), params=params
        )
        out: list[list[Hit]] = []
        for row_s, row_i in zip(scores, ids, strict=True):
            hits = []
            for s, i in zip(row_s.tolist(), row_i.tolist(), strict=True):
                if i < 0:
                    continue
                p = self.index.passages[i]
                hits.append(Hit(p, float(s), self.index.releases[p.release_id]))
            out.append(hits)
        return out
