"""Reranking the fused passages with what retrieval already knows of them.

Reciprocal rank fusion keeps only ranks: a passage BM25 puts first by a wide margin and one it
puts first by a hair count alike, and the passage vector, dropped from the fusion because it
took from it, says nothing at all. A small model of boosted trees over the scores behind the
ranks (BM25's, the best sentence's cosine, the passage vector's cosine), the fused rank, the
title's overlap with the question, how many of the candidates share a release and whether the
release's year and month are ones the question names, reorders the fused top ``depth`` before the
reader reads the first of them. It is trained on press-train and SQuAD train questions over their
own releases (``release-qa train-reranker``, ``qa.training.rerank``); no encoder pass is added,
so it costs a few milliseconds a question.

One is shipped (``qa/models/reranker.json``, its card ``reranker.md``; 2026-12-06, session 26,
with ``month``): on the tuning sets it puts the gold passage first for 79.7% of press-tune's
answerable questions (78.1% with the model before it, 71.9% with none) and the gold release first
for 91.0% (88.1%); SQuAD v2.0's tuning half is unchanged (80.4%). ``Assistant(..., rerank=...)``
and $RELEASE_QA_RERANK choose; by default it is used over an index of the encoder it was fitted
to.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.index import Index, sentence_key, vector_id
from qa.text import MONTHS, content_words
from qa.trees import TreeModel
from qa.types import Passage, Release

RERANK_FEATURES = (
    "fused_rank",
    "fused_score",
    "bm25",
    "bm25_rank",
    "sentence_cos",
    "sentence_gap",
    "sentence_rank",
    "passage_cos",
    "passage_gap",
    "title_overlap",
    "release_passages",
    "release_rank",
    "year",
    "month",
)
"""``fused_rank``: log(1 + place in the fused list); ``fused_score``: its reciprocal-rank sum;
``bm25``: BM25's score over the best BM25 score of the question (0 when BM25 did not return
it); ``bm25_rank`` and ``sentence_rank``: log(1 + place) in BM25's and the by-sentence ranking
(``ABSENT`` when not returned); ``sentence_cos``: the cosine of the question and the passage's
best sentence, ``sentence_gap`` that minus the best over the candidates; ``passage_cos`` and
``passage_gap``: the same for the passage's own vector; ``title_overlap``: the share of the
question's content words in the release title; ``release_passages``: how many candidates come
from the passage's release; ``release_rank``: log(1 + the first place of that release);
``year``: 1 when the question names the release's year, -1 when it names only other years, 0
when it names none; ``month``: the same for the months it names (``month_names``), a month
named with a year matching only in that year, 0 for an undated release."""

ABSENT = 60
"""The rank a passage gets in a ranking that did not return it (deeper than any search)."""

RERANKER_PATH = Path(__file__).resolve().parent.parent / "models" / "reranker.json"

_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_MONTH = re.compile(
    r"\b(?:(?P<before>in|on|of|since|during|until|from|by|late|early|mid)[\s-]+)?"
    r"(?P<month>" + "|".join(MONTHS) + r")"
    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?\b,?)?(?:\s+(?P<year>(?:19|20)\d\d)\b)?"
)


def month_names(question: str) -> set[tuple[int, int | None]]:
    """The (month, year or None) pairs ``question`` names: a capitalised month name with a year
    after it, or after a word that makes it a date ("in May", "since March"), so that "May" the
    verb is not read as one."""
    out: set[tuple[int, int | None]] = set()
    for m in _MONTH.finditer(question):
        if m["year"] is None and m["before"] is None:
            continue
        out.add((MONTHS.index(m["month"]) + 1, int(m["year"]) if m["year"] else None))
    return out


def month_agreement(named: set[tuple[int, int | None]], release: Release) -> float:
    """1 when ``release`` is dated in a month ``named`` (in its year, when one is named), -1 when
    in none of them, 0 when none is named or the release is undated."""
    d = release.date
    if not named or d is None:  # an undated release neither matches nor contradicts
        return 0.0
    return 1.0 if any(m == d.month and y in (None, d.year) for m, y in named) else -1.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """What retrieval knows of one question's fused candidates: the question as searched, its
    vector, the fused list (passage vector id, reciprocal-rank score; best first) and the
    rankings behind it (id -> (place, score))."""

    query: str
    vector: np.ndarray
    fused: tuple[tuple[int, float], ...]
    lexical: dict[int, tuple[int, float]]
    dense: dict[int, tuple[int, float]]


def rerank_features(index: Index, evidence: Evidence, passages: dict[int, Passage]) -> np.ndarray:
    """(candidates, len(RERANK_FEATURES)) for ``evidence.fused``; ``passages`` maps their ids."""
    fused = evidence.fused
    if not fused:
        return np.zeros((0, len(RERANK_FEATURES)), dtype=np.float64)
    q = np.asarray(evidence.vector, dtype=np.float32).reshape(-1)
    found = [passages[fid] for fid, _ in fused]
    pvec = np.stack([index.passage_vectors.reconstruct(fid) for fid, _ in fused])
    passage_cos = pvec @ q
    ids = [np.array([vector_id(sentence_key(s)) for s in p.sentences], dtype=np.int64) for p in found]
    flat = np.concatenate(ids) if any(len(i) for i in ids) else np.zeros(0, dtype=np.int64)
    cos = index.sentence_vectors.reconstruct_batch(flat) @ q if len(flat) else np.zeros(0, dtype=np.float32)
    bounds = np.cumsum([0] + [len(i) for i in ids])
    sentence_cos = np.array([float(cos[a:b].max()) if b > a else 0.0 for a, b in itertools.pairwise(bounds)])
    best_bm25 = max((s for _, s in evidence.lexical.values()), default=0.0) or 1.0
    asked = content_words(evidence.query)
    years = set(_YEAR.findall(evidence.query))
    months = month_names(evidence.query)
    releases = [index.releases[p.release_id] for p in found]
    count: dict[str, int] = {}
    first: dict[str, int] = {}
    for k, r in enumerate(releases):
        count[r.id] = count.get(r.id, 0) + 1
        first.setdefault(r.id, k)
    rows = []
    for k, ((fid, score), r) in enumerate(zip(fused, releases, strict=True)):
        lex = evidence.lexical.get(fid)
        dense = evidence.dense.get(fid)
        year = 0.0
        if years:
            year = 1.0 if r.date is not None and str(r.date.year) in years else -1.0
        rows.append(
            [
                math.log1p(k),
                score,
                lex[1] / best_bm25 if lex else 0.0,
                math.log1p(lex[0] if lex else ABSENT),
                sentence_cos[k],
                sentence_cos[k] - sentence_cos.max(),
                math.log1p(dense[0] if dense else ABSENT),
                passage_cos[k],
                passage_cos[k] - passage_cos.max(),
                len(asked & content_words(r.title)) / max(1, len(asked)),
                count[r.id],
                math.log1p(first[r.id]),
                year,
                month_agreement(months, r),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


class Reorders(Protocol):
    """What the retriever asks of a reranker: how deep to fetch, and the new order."""

    depth: int

    def order(
        self, index: Index, evidence: Evidence, passages: dict[int, Passage]
    ) -> list[tuple[int, float]]: ...


class Reranker:
    """Boosted trees over ``RERANK_FEATURES`` that reorder the fused top ``depth``."""

    def __init__(self, model: TreeModel, depth: int = 20, info: dict[str, object] | None = None):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"reranker depth must be a positive int, got {depth!r}")
        self.model = model
        self.depth = depth
        self.info = dict(info or {})

    @property
    def encoder(self) -> str | None:
        """The encoder whose scores it was fitted to (None: not recorded)."""
        value = self.info.get("encoder")
        return str(value) if value is not None else None

    def fits(self, model: str) -> bool:
        """Whether an index built with ``model`` gives the scores it was fitted to (the same
        encoder, float or int8)."""
        return self.encoder is None or model.split("@")[0] == self.encoder.split("@")[0]

    @classmethod
    def load(cls, path: str | os.PathLike[str] = RERANKER_PATH) -> Reranker:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(TreeModel.from_dict(d["model"], RERANK_FEATURES), int(d["depth"]), d)

    def save(self, path: str | os.PathLike[str], **extra: object) -> Path:
        out = Path(path)
        body = {"depth": self.depth, "features": list(RERANK_FEATURES), **extra}
        body["model"] = self.model.to_dict()
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out)
        return out

    def order(
        self, index: Index, evidence: Evidence, passages: dict[int, Passage]
    ) -> list[tuple[int, float]]:
        """The fused candidates best first by the model, each with its probability of holding
        the answer (ties keep the fused order)."""
        x = rerank_features(index, evidence, passages)
        if not len(x):
            return []
        p = self.model.proba(x)
        order = sorted(range(len(p)), key=lambda i: (-p[i], i))
        return [(evidence.fused[i][0], float(p[i])) for i in order]


def reranker_available(path: str | os.PathLike[str] = RERANKER_PATH) -> bool:
    return Path(path).is_file()
