"""Passage retrieval over an ``Index``: dense, BM25, or both fused by reciprocal rank."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import faiss
import numpy as np

from qa.embedding import Embedder
from qa.index import Index
from qa.index.lexical import BM25
from qa.index.vectors import search_params
from qa.retrieval.filters import Filters
from qa.retrieval.fusion import reciprocal_rank_fusion
from qa.retrieval.rerank import Evidence, Reorders
from qa.types import Hit

logger = logging.getLogger(__name__)

# One question at a time is the common case; FAISS's OpenMP threads then mostly spin, and on
# shared cores they cost more than they give: flat search over 100k passages took 48-64 ms
# with the default threads and 15-18 ms with one (make bench, 2 cores).
faiss.omp_set_num_threads(1)

MODES = ("hybrid", "dense", "bm25")


def _check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return k


def _check_groups(groups: Sequence[int], n: int) -> list[int]:
    """``groups`` as a list, checked: one per query, numbered 0, 1, ... in order."""
    owner = list(groups)
    if len(owner) != n:
        raise ValueError(f"got {n} queries but {len(owner)} groups")
    steps = [b - a for a, b in zip([-1, *owner], owner, strict=False)]
    if any(d not in (0, 1) for d in steps) or (owner and owner[0] != 0):
        raise ValueError(f"groups must number questions 0, 1, ... in order; got {owner!r}")
    return owner


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"retrieval mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


class Retriever:
    """Top-k passages for a question.

    ``hybrid`` (default) fuses two rankings by reciprocal rank (score = sum of 1 / (rrf_k +
    rank) over the rankings, each ``depth`` deep): passages by BM25, and passages by their best
    sentence's vector (a factoid question often matches one sentence far better than the
    passage around it). ``dense`` ranks passages by their own vectors.

    Why these two: with sentences read in their passages (``ChunkerSettings.sentence_vectors``
    "late"), the passage-vector ranking added nothing to the fusion and took from it: gold
    passage first 77.0% without it, 74.2% with it (press-train + press-tune, 1,095 questions
    over 750 releases), 80.4% against 76.7% (1,500 SQuAD train questions); the three-way fusion
    over separately encoded sentences, the earlier default, 75.3% and 79.4%.

    ``lexical_weight``: BM25's rankings count this much in the fusion, the vectors' 1. Tried on
    press-tune (its 723 answerable questions over 900 releases, follow-ups in their chats): a
    passage holding the answer in the top 3 (what the reader reads) 93.1% at 1, 94.3% at 1.5,
    92.5% at 0.67; the gold release first 88.7%, 89.3%, 87.3%; SQuAD v2.0's tuning half (419
    answerable questions) 92.8% at 1, 92.6% at 1.5. Read and recalibrated at 1.5, the answers
    hardly moved (press-tune F1 as users see it 73.8 -> 74.0, SQuAD v2.0's tuning half 62.7 ->
    62.0), so the default stays 1.
    """

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        k: int = 10,
        *,
        mode: str = "hybrid",
        depth: int = 50,
        rrf_k: int = 10,
        lexical_weight: float = 1.0,
        reranker: Reorders | None = None,
    ):
        """``reranker``: reorders the fused top ``reranker.depth`` (hybrid mode only;
        ``qa.retrieval.rerank``); None keeps the fused order."""
        index.check_embedder(embedder)
        self.index = index
        self.embedder = embedder
        self.k = _check_k(k)
        self.mode = _check_mode(mode)
        self.depth = _check_k(depth)
        self.rrf_k = rrf_k
        if not lexical_weight > 0:
            raise ValueError(f"lexical_weight must be > 0, got {lexical_weight!r}")
        self.lexical_weight = float(lexical_weight)
        self.reranker = reranker

    # ------------------------------------------------------------ parts

    def encode(self, queries: Sequence[str]) -> np.ndarray:
        return self.embedder.encode(list(queries))

    def lexical(self) -> BM25:
        """The BM25 index over passages (title, year and text)."""
        return self.index.lexical()

    def _allowed(self, filters: Filters | None) -> set[str] | None:
        """Ids of the releases the filters let through (None: no filters)."""
        if filters is None or filters.empty:
            return None
        return {rid for rid, r in self.index.releases.items() if filters.allows(r)}

    def _dense(self, vectors: np.ndarray, k: int, allowed: set[str] | None) -> list[list[tuple[int, float]]]:
        params = None
        n = self.index.passage_vectors.ntotal
        if allowed is not None:
            pids = np.array(self.index.ids_of_releases("passages", allowed), dtype=np.int64)
            if len(pids) == 0:
                return [[] for _ in range(len(vectors))]
            params = search_params(self.index.passage_vectors, faiss.IDSelectorBatch(pids))
            n = len(pids)
        scores, ids = self.index.passage_vectors.search(
            np.ascontiguousarray(vectors, dtype=np.float32), min(k, n), params=params
        )
        return [
            [(i, float(s)) for s, i in zip(rs.tolist(), ri.tolist(), strict=True) if i >= 0]
            for rs, ri in zip(scores, ids, strict=True)
        ]

    def _sparse(
        self, queries: Sequence[str], k: int, allowed: set[str] | None
    ) -> list[list[tuple[int, float]]]:
        ok = None if allowed is None else set(self.index.ids_of_releases("passages", allowed))
        return self.lexical().search(queries, k, ok)

    def _by_sentence(
        self, vectors: np.ndarray, k: int, allowed: set[str] | None
    ) -> list[list[tuple[int, float]]]:
        """Passages ranked by their best sentence's cosine to the question."""
        params = None
        n = self.index.sentence_vectors.ntotal
        if allowed is not None:
            sids = np.array(self.index.ids_of_releases("sentences", allowed), dtype=np.int64)
            if len(sids) == 0:
                return [[] for _ in range(len(vectors))]
            params = search_params(self.index.sentence_vectors, faiss.IDSelectorBatch(sids))
            n = len(sids)
        scores, ids = self.index.sentence_vectors.search(
            np.ascontiguousarray(vectors, dtype=np.float32), min(2 * k, n), params=params
        )
        owners = self.index.passages_holding(sorted({i for i in ids.ravel().tolist() if i >= 0}))
        out = []
        for rs, ri in zip(scores, ids, strict=True):
            seen: dict[int, float] = {}
            for s, i in zip(rs.tolist(), ri.tolist(), strict=True):
                for fid in owners.get(i, ()) if i >= 0 else ():
                    seen.setdefault(fid, s)
            out.append(list(seen.items())[:k])
        return out

    # ------------------------------------------------------------ search

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, *, mode: str | None = None
    ) -> list[Hit]:
        return self.search_batch([query], k=k, filters=filters, mode=mode)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: str | None = None,
    ) -> list[list[Hit]]:
        m = self.mode if mode is None else _check_mode(mode)
        vectors = self.encode(queries) if m != "bm25" else None
        return self.search_encoded(queries, vectors, k=k, filters=filters, mode=m)

    def search_encoded(
        self,
        queries: Sequence[str],
        vectors: np.ndarray | None,
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: str | None = None,
        groups: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        lexical: Sequence[bool] | None = None,
    ) -> list[list[Hit]]:
        """Search with question vectors already computed (the answerer reuses them).

        ``groups``: one question asked in several phrasings (a possible follow-up, as asked and
        after the question it may lean on): ``groups[i]`` numbers the question query ``i``
        phrases (0, 1, ... in order); the rankings of a question's phrasings are fused by
        reciprocal rank into one list per question, each phrasing's rankings weighted by
        ``weights[i]`` (default 1). None: each query is its own question. ``lexical[i]``: query
        ``i`` is searched by BM25 alone, in any mode (its row of ``vectors`` is not read)."""
        k = self.k if k is None else _check_k(k)
        m = self.mode if mode is None else _check_mode(mode)
        owner = list(range(len(queries))) if groups is None else _check_groups(groups, len(queries))
        share = [1.0] * len(queries) if weights is None else [float(w) for w in weights]
        if len(share) != len(queries) or not all(w > 0.0 for w in share):
            raise ValueError(f"weights must be one > 0 per query; got {weights!r}")
        words_only = [False] * len(queries) if lexical is None else [bool(x) for x in lexical]
        if len(words_only) != len(queries):
            raise ValueError(f"got {len(queries)} queries but {len(words_only)} lexical flags")
        n = owner[-1] + 1 if owner else 0
        if self.index.passage_vectors.ntotal == 0 or not queries:
            return [[] for _ in range(n)]
        allowed = self._allowed(filters)
        if allowed is not None and not allowed:
            return [[] for _ in range(n)]
        fused = n < len(queries)
        depth = max(k, self.depth) if m == "hybrid" or fused else k
        sparse = [i for i in range(len(queries)) if m != "dense" or words_only[i]]
        dense = [i for i in range(len(queries)) if m != "bm25" and not words_only[i]]
        # each query's rankings with their weights, BM25's first (the fusion sums in this order)
        per_query: list[list[tuple[list[tuple[int, float]], float]]] = [[] for _ in queries]
        if sparse:
            found_sparse = self._sparse([queries[i] for i in sparse], depth, allowed)
            for i, ranking in zip(sparse, found_sparse, strict=True):
                per_query[i].append((ranking, share[i] * self.lexical_weight))
        if dense:
            assert vectors is not None
            search = self._by_sentence if m == "hybrid" else self._dense
            for i, ranking in zip(dense, search(vectors[dense], depth, allowed), strict=True):
                per_query[i].append((ranking, share[i]))
        rankings: list[list[list[tuple[int, float]]]] = [[] for _ in range(n)]
        ws: list[list[float]] = [[] for _ in range(n)]
        for g, row in zip(owner, per_query, strict=True):
            rankings[g] += [ranking for ranking, _ in row]
            ws[g] += [w for _, w in row]
        reranker = self.reranker if m == "hybrid" else None
        deep = max(k, reranker.depth) if reranker is not None else k
        ranked = [
            r[0][:deep] if len(r) == 1 else self._fuse(r, deep, w) for r, w in zip(rankings, ws, strict=True)
        ]
        found = self.index.passages.get_many({fid for row in ranked for fid, _ in row})
        if reranker is not None:
            assert vectors is not None
            first = {g: i for i, g in reversed(list(enumerate(owner)))}  # each question's first phrasing
            out = []
            for g, row in enumerate(ranked):
                i = first[g]
                if words_only[i]:  # no vector to read it by: the fused order stands
                    out.append(row[:k])
                    continue
                lists = [ranking for ranking, _ in per_query[i]]  # BM25's, then the by-sentence one
                ev = self.evidence(queries[i], vectors[i], row, lists[0], lists[-1])
                out.append(reranker.order(self.index, ev, found)[:k])
            ranked = out
        return [
            [Hit(found[fid], score, self.index.releases[found[fid].release_id]) for fid, score in row]
            for row in ranked
        ]

    @staticmethod
    def evidence(
        query: str,
        vector: np.ndarray,
        fused: Sequence[tuple[int, float]],
        lexical: Sequence[tuple[int, float]],
        dense: Sequence[tuple[int, float]],
    ) -> Evidence:
        """What the reranker reads of one question: its fused list and the BM25 and by-sentence
        rankings (passage id, score; best first) of its first phrasing."""
        return Evidence(
            query,
            vector,
            tuple(fused),
            {fid: (i, s) for i, (fid, s) in enumerate(lexical)},
            {fid: (i, s) for i, (fid, s) in enumerate(dense)},
        )

    def _fuse(
        self, rankings: Sequence[list[tuple[int, float]]], k: int, weights: Sequence[float] | None = None
    ) -> list[tuple[int, float]]:
        return reciprocal_rank_fusion(rankings, k, self.rrf_k, weights)
