"""BM25 over passages (bm25s), built in memory from the index's store.

Names, numbers and years ("the 2023 statement") are where dense vectors are
weakest and exact word matches strongest, so retrieval fuses both.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    try:
        import Stemmer

        return Stemmer.Stemmer("english").stemWords
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        logger.warning("PyStemmer missing: BM25 runs without stemming")
        return None


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class BM25:
    """Okapi BM25 over a fixed list of documents; rows are positions in that list."""

    def __init__(self, documents: Sequence[str]):
        import bm25s

        self.size = len(documents)
        self._bm25 = bm25s.BM25()
        tokens = tokenize(documents)
        # bm25s refuses an empty vocabulary; an index of stop-word-only passages is legal
        self._bm25.index([t if t else ["\x00"] for t in tokens], show_progress=False)
        self._vocab = self._bm25.vocab_dict

    def search(
        self, queries: Sequence[str], k: int, mask: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """(row, score) pairs, best first; rows outside ``mask`` (0/1 per row) are excluded."""
        k = min(k, self.size)
        out: list[list[tuple[int, float]]] = []
        for toks in tokenize(queries):
            toks = [t for t in toks if t in self._vocab]
            if not toks or k == 0:
                out.append([])
                continue
            docs, scores = self._bm25.retrieve(
                [toks], k=k, show_progress=False, n_threads=1, weight_mask=mask
            )
            out.append([(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0])
        return out
