"""BM25 over passages (bm25s), saved with the index and grown without a rebuild.

Names, numbers and years ("the 2023 statement") are where dense vectors are
weakest and exact word matches strongest, so retrieval fuses both.

bm25s cannot add documents to a built index, and rebuilding 100k passages takes
about 30 s. So documents added since the build are scored by hand with the same
formula (Lucene's BM25, bm25s' default) and the base's statistics, removed ones
are masked, and the whole is rebuilt only when those changes pile up (``stale``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

K1, B = 1.5, 0.75  # bm25s' defaults ("lucene")
PREFIX = "bm25."
"""File names in a snapshot folder: bm25.data.npy, bm25.vocab.json, ..., bm25.json."""


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


def _names() -> dict[str, str]:
    return {
        "data_name": f"{PREFIX}data.npy",
        "indices_name": f"{PREFIX}indices.npy",
        "indptr_name": f"{PREFIX}indptr.npy",
        "vocab_name": f"{PREFIX}vocab.json",
        "params_name": f"{PREFIX}params.json",
        "nnoc_name": f"{PREFIX}nnoc.npy",
    }


class BM25:
    """Okapi BM25 over documents keyed by int id (the passages' vector ids)."""

    def __init__(self, documents: Sequence[str], ids: Sequence[int]):
        import bm25s

        if len(documents) != len(ids):
            raise ValueError(f"{len(documents)} documents but {len(ids)} ids")
        tokens = tokenize(documents)
        self._bm25 = bm25s.BM25(k1=K1, b=B)
        # bm25s refuses an empty vocabulary; an index of stop-word-only passages is legal
        self._bm25.index([t if t else ["\x00"] for t in tokens], show_progress=False)
        self.avgdl = float(np.mean([max(1, len(t)) for t in tokens])) if tokens else 1.0
        self._base(np.asarray(ids, dtype=np.int64))

    def _base(self, ids: np.ndarray) -> None:
        self.ids = ids
        self._row = {int(f): r for r, f in enumerate(ids.tolist())}
        self._vocab: dict[str, int] = self._bm25.vocab_dict
        indptr = self._bm25.scores["indptr"]
        self._df = np.diff(indptr)  # documents holding each vocabulary entry
        self._alive = np.ones(len(ids), dtype=np.float32)
        self.added: dict[int, Counter[str]] = {}
        self._added_df: Counter[str] = Counter()
        self.removed: set[int] = set()

    # ------------------------------------------------------------ changes

    @property
    def size(self) -> int:
        return len(self.ids) - len(self.removed) + len(self.added)

    @property
    def stale(self) -> float:
        """Changes since the build as a share of its documents; rebuild when large."""
        return (len(self.added) + len(self.removed)) / max(1, len(self.ids))

    def add(self, ids: Sequence[int], documents: Sequence[str]) -> None:
        for fid, toks in zip(ids, tokenize(documents), strict=True):
            if (fid in self._row and fid not in self.removed) or fid in self.added:
                raise ValueError(f"document {fid} is already in the BM25 index")
            self.added[int(fid)] = Counter(toks)
            self._added_df.update(set(toks))

    def remove(self, ids: Iterable[int]) -> None:
        for fid in ids:
            counts = self.added.pop(fid, None)
            if counts is not None:
                self._added_df.subtract(set(counts))
            elif fid in self._row:
                self.removed.add(fid)
                self._alive[self._row[fid]] = 0.0

    # ------------------------------------------------------------ search

    def search(
        self, queries: Sequence[str], k: int, allowed: set[int] | None = None
    ) -> list[list[tuple[int, float]]]:
        """(id, score) pairs, best first; ids outside ``allowed`` are excluded."""
        mask = self._alive
        if allowed is not None:
            mask = mask * np.fromiter((f in allowed for f in self.ids.tolist()), np.float32, len(self.ids))
        out: list[list[tuple[int, float]]] = []
        for toks in tokenize(queries):
            hits = self._search_base(toks, k, mask) + self._search_added(toks, allowed)
            hits.sort(key=lambda x: (-x[1], x[0]))
            out.append(hits[:k])
        return out

    def _search_base(self, toks: list[str], k: int, mask: np.ndarray) -> list[tuple[int, float]]:
        known = [t for t in toks if t in self._vocab]
        kk = min(k, len(self.ids))
        if not known or kk == 0:
            return []
        docs, scores = self._bm25.retrieve([known], k=kk, show_progress=False, n_threads=1, weight_mask=mask)
        return [(int(self.ids[d]), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def _search_added(self, toks: list[str], allowed: set[int] | None) -> list[tuple[int, float]]:
        if not self.added or not toks:
            return []
        n = len(self.ids) + len(self.added)
        out: list[tuple[int, float]] = []
        for fid, counts in list(self.added.items()):  # a snapshot: add() may run meanwhile
            if allowed is not None and fid not in allowed:
                continue
            dl = max(1, sum(counts.values()))
            score = 0.0
            for t in toks:
                tf = counts.get(t, 0)
                if tf:
                    df = self._added_df[t] + (int(self._df[self._vocab[t]]) if t in self._vocab else 0)
                    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                    score += idf * tf / (tf + K1 * (1 - B + B * dl / self.avgdl))
            if score > 0:
                out.append((fid, score))
        return out

    # ------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        """Write the built part into ``folder`` (bm25.* files).

        Documents added since the build are not saved here: the caller keeps their ids
        (``added``, ``removed``) and adds them back from its store on load.
        """
        self._bm25.save(str(folder), show_progress=False, **_names())
        np.save(folder / f"{PREFIX}ids.npy", self.ids)  # int64: never pickled
        meta = {"avgdl": self.avgdl, "added": sorted(self.added), "removed": sorted(self.removed)}
        (folder / f"{PREFIX}json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> tuple[BM25, list[int], list[int]]:
        """The built part, memory-mapped; and the ids added and removed since, to redo."""
        import bm25s

        self = cls.__new__(cls)
        self._bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False, **_names())
        meta = json.loads((folder / f"{PREFIX}json").read_text(encoding="utf-8"))
        self.avgdl = float(meta["avgdl"])
        self._base(np.load(folder / f"{PREFIX}ids.npy"))  # numpy refuses pickles by default
        return self, [int(i) for i in meta["added"]], [int(i) for i in meta["removed"]]

    @staticmethod
    def saved_in(folder: Path) -> bool:
        return (folder / f"{PREFIX}json").is_file()
