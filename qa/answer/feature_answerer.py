"""The feature answerer: find the sentence that answers, the short span in it, cite both.

Two small models (``qa/models/answerer.json``: boosted trees, or logistic regression with
``--model lr``; trained by ``release-qa train-answerer`` on SQuAD v1.1 train) score the
candidate sentences of the top passages and the candidate spans within them (from the
index-time annotation). The best sentence's probability is the answer's score: calibrated,
it decides when to decline. It needs no neural reader, and the neural answerer asks it for
its view of each sentence.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from qa.answer.base import Candidate, date_prior
from qa.answer.features import (
    SENTENCE_FEATURES,
    SPAN_FEATURES,
    Model,
    Question,
    add_relative,
    model_from_dict,
    sentence_features,
    span_features,
    span_features_many,
)
from qa.index import Index
from qa.ingest.annotate import Annotation
from qa.types import Hit, Sentence

logger = logging.getLogger(__name__)

T = TypeVar("T")

MODEL_PATH = Path(__file__).parents[1] / "models" / "answerer.json"


@dataclass(frozen=True, slots=True)
class AnswerModels:
    sentence: Model
    span: Model
    threshold: float

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> AnswerModels:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                sentence=model_from_dict(d["sentence"], SENTENCE_FEATURES),
                span=model_from_dict(d["span"], SPAN_FEATURES),
                threshold=float(d["threshold"]),
            )
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise RuntimeError(
                f"answerer model {path} cannot be used ({e}); retrain it with: release-qa train-answerer"
            ) from None


@functools.lru_cache(maxsize=4)
def default_models(path: str = str(MODEL_PATH)) -> AnswerModels | None:
    if not Path(path).is_file():
        logger.warning("no answerer model at %s: using the untrained fallback scorer", path)
        return None
    return AnswerModels.load(path)


@dataclass(frozen=True, slots=True)
class AnswererSettings:
    """``threshold``: below this score the assistant declines (None: the model's own,
    chosen by its training sweep). ``passages``: how many top passages are read."""

    threshold: float | None = None
    passages: int = 5

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not isinstance(self.passages, int) or self.passages < 1:
            raise ValueError(f"passages must be a positive int, got {self.passages!r}")


@dataclass(frozen=True, slots=True)
class Scored:
    """One candidate sentence with its features, span scores, probability, and the release offsets
    of its best span (the whole sentence when it has no candidate spans)."""

    sentence: Sentence
    hit: Hit
    passage_rank: int
    features: np.ndarray
    span_probs: np.ndarray
    prob: float
    start: int
    end: int


_FALLBACK_THRESHOLD = 0.35
CONFIDENT = 0.75
"""The feature answerer's confident level (its scores were calibrated on SQuAD only)."""


class FeatureAnswerer:
    """Scores candidate sentences, then spans, with the trained models (or a fallback): the
    answerer that needs no neural reader (``Answerer`` protocol)."""

    def __init__(
        self,
        index: Index,
        settings: AnswererSettings | None = None,
        models: AnswerModels | None = None,
        *,
        untrained: bool = False,
    ):
        """``models``: None loads the shipped ones; ``untrained`` uses the hand-set fallback
        (what training featurizes with, before any model exists)."""
        self.index = index
        self.settings = settings if settings is not None else AnswererSettings()
        self.models = None if untrained else (models if models is not None else default_models())
        self._idf: tuple[int, dict[str, float]] | None = None

    @property
    def threshold(self) -> float:
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.models.threshold if self.models is not None else _FALLBACK_THRESHOLD

    @property
    def confident(self) -> float:
        return CONFIDENT

    def idf(self) -> dict[str, float]:
        """Inverse document frequency of stems over passages, rebuilt when the index changes."""
        if self._idf is None or self._idf[0] != self.index.version:
            df, n = self.index.stem_counts()
            n = max(1, n)
            self._idf = (self.index.version, {w: math.log(1 + n / c) for w, c in df.items() if c > 0})
        return self._idf[1]

    def _sentences(self, hits: Sequence[Hit]) -> list[tuple[Sentence, Hit, int]]:
        """(sentence, its passage's hit, the passage's rank) of the passages read, each sentence once."""
        seen: set[tuple[str, int]] = set()
        out = []
        for rank, h in enumerate(hits[: self.settings.passages]):
            for s in h.passage.sentences:
                key = (s.release_id, s.start)
                if key not in seen:
                    seen.add(key)
                    out.append((s, h, rank))
        return out

    def score(
        self, question: str, qvec: np.ndarray, hits: Sequence[Hit], context: str | None = None
    ) -> list[Scored]:
        """Every candidate sentence of the top passages, scored (unsorted)."""
        cands = self._sentences(hits)
        if not cands:
            return []
        q = Question.parse(question, context)
        svecs = self.index.sentence_vectors_of([s for s, _, _ in cands])
        cos = svecs @ qvec.astype(np.float32)
        order = np.argsort(-cos)
        cos_rank = np.empty(len(cos), dtype=np.int64)
        cos_rank[order] = np.arange(len(cos))
        cos_max = float(cos.max())
        idf = self.idf()
        prev_of: dict[tuple[str, int], str] = {}
        for _, h, _ in cands:
            for a, b in itertools.pairwise(h.passage.sentences):
                prev_of.setdefault((b.release_id, b.start), a.text)
        anns = self.index.annotations_of([s for s, _, _ in cands])
        span_probs = self._span_probs(q, [s.text for s, _, _ in cands], anns)
        rows = []
        for i, (s, h, rank) in enumerate(cands):
            rel, sp = h.release, span_probs[i]
            rows.append(
                sentence_features(
                    q,
                    s.text,
                    rel.title,
                    rel.date.year if rel.date else None,
                    anns[i],
                    float(cos[i]),
                    cos_max,
                    int(cos_rank[i]),
                    rank,
                    idf,
                    float(sp.max()) if len(sp) else 0.0,
                    prev_of.get((s.release_id, s.start)),
                )
            )
        x = add_relative(np.asarray(rows, dtype=np.float32))
        probs = self.models.sentence.proba(x) if self.models is not None else _fallback_sentence(x)
        probs = probs * np.asarray([date_prior(q, h.release.date, s.text) for s, h, _ in cands])
        return [
            Scored(s, h, rank, x[i], span_probs[i], float(probs[i]), *_best_span(s, span_probs[i], anns[i]))
            for i, (s, h, rank) in enumerate(cands)
        ]

    def candidates(
        self, question: str, qvec: np.ndarray, hits: Sequence[Hit], context: str | None = None
    ) -> list[Candidate]:
        """Each sentence's best span, with the sentence's probability."""
        return [
            Candidate(sc.hit, sc.passage_rank, sc.sentence, sc.start, sc.end, sc.prob, sc.features)
            for sc in self.score(question, qvec, hits, context)
        ]

    def _span_probs(self, q: Question, texts: Sequence[str], anns: Sequence[Annotation]) -> list[np.ndarray]:
        """Span scores of every sentence's candidates, in one model call for all of them."""
        if self.models is None:
            return [_fallback_span(q, t, a) for t, a in zip(texts, anns, strict=True)]
        feats = span_features_many(q, texts, anns)
        sizes = [len(f) for f in feats]
        if not sum(sizes):
            return [np.zeros(0, dtype=np.float32) for _ in feats]
        probs = self.models.span.proba(np.concatenate(feats))
        return np.split(probs, np.cumsum(sizes)[:-1])


def _best_span(s: Sentence, span_probs: np.ndarray, ann: Annotation) -> tuple[int, int]:
    """Release offsets of the sentence's best candidate span (the whole sentence if none)."""
    if not len(span_probs):
        return s.start, s.end
    c = ann.candidates[int(np.argmax(span_probs))]
    return s.start + c.start, s.start + c.end


def _fallback_sentence(x: np.ndarray) -> np.ndarray:
    """Hand-set weights for when no trained model ships: cosine, overlap, passage rank."""
    i = {name: k for k, name in enumerate(SENTENCE_FEATURES)}
    return 0.5 * x[:, i["cos"]] + 0.3 * x[:, i["overlap"]] + 0.2 * x[:, i["passage_rank"]]


def _fallback_span(q: Question, sentence_text: str, ann: Annotation) -> np.ndarray:
    if not ann.candidates:
        return np.zeros(0, dtype=np.float32)
    f = span_features(q, sentence_text, ann)
    i = {name: k for k, name in enumerate(SPAN_FEATURES)}
    return 0.5 * f[:, i["expected"]] - 0.4 * f[:, i["cand_overlap"]] - 0.2 * f[:, i["dist"]] / 30 + 0.05
