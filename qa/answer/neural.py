"""Answering with the neural reader: it picks the best span of each sentence of the top passages,
and a small calibrated model turns the reader's scores and the span's place (passage rank, where
the sentence sits in its release, its length; optionally the feature answerer's view of the
sentence) into the probability that the span is right, which ranks the candidates and decides.

The calibration (``qa/models/reader/calibration.json``) is fitted by
``release-qa calibrate-reader`` on press-tune and one half of SQuAD v2.0 dev-shared's articles,
with the decline threshold and the confident level chosen by the rule in
``qa.training.calibrate``; the eval reports press-dev and the other SQuAD half.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer.base import Candidate, date_prior
from qa.answer.feature_answerer import AnswererSettings, FeatureAnswerer
from qa.answer.features import Question
from qa.answer.prior import SentencePrior, prior_available
from qa.answer.span_reader import (
    PRECISIONS,
    READER_PATH,
    Precision,
    ReadSpan,
    SpanReader,
    SpanReaderSettings,
    header_text,
)
from qa.index import Index, sentence_key, vector_id
from qa.text import content_words
from qa.types import Hit, Sentence

logger = logging.getLogger(__name__)

CALIBRATION_FEATURES = (
    "margin",
    "log_prob",
    "sentence_logit",
    "passage_rank",
    "gap",
    "passage_best",
    "position",
    "span_words",
    "dense",
    "title_overlap",
    "release_share",
    "sentence_prior",
    "retrieval",
    "retrieval_top",
)
"""``margin``: span score minus the window's no-answer score; ``log_prob``: log of the span's share
of every span's probability over the passages read; ``sentence_logit``: the feature answerer's
logit for the span's sentence; ``passage_rank``: 0 for the top passage; ``gap``: score minus the
best span's score over all passages read; ``passage_best``: 1 for the best span of its passage;
``position``: where the sentence starts in its release (0 = first character, 1 = last; a
release's answers rarely sit in its closing boilerplate or contact block); ``span_words``: log of
the span's word count; ``dense``: cosine of the question and the passage vectors (retrieval's
view of the passage, which the reader does not see); ``title_overlap``: share of the question's
content words in the release's title; ``release_share``: the share of the reader's span
probability that falls in the span's release (answers a release gives twice are likelier its own);
``sentence_prior``: the log-odds, from its surface alone, that the span's sentence is one users ask
about (``qa.answer.prior``: captions, boilerplate and contact lines score low; 0 when no prior is
installed); ``retrieval``: the passage's retrieval score (with the reranker, the probability that
the passage holds the answer; ``qa.retrieval.rerank``); ``retrieval_top``: that score over the
top passage's (1 for the top one): scale-free, so it reads alike whatever scored the passages
(the reranker's probabilities, BM25's raw scores under ``mode="bm25"``, cosines, fused ranks)."""

_RELEASE_SHARE = CALIBRATION_FEATURES.index("release_share")
_PRIOR = CALIBRATION_FEATURES.index("sentence_prior")

RECIPE = ("margin", "log_prob", "passage_rank", "gap", "passage_best", "position", "span_words")
"""The features a calibration is fitted on unless asked otherwise: chosen by the ablation of
2026-12-02 and confirmed on the open-corpus reader (``sentence_logit`` lowers the unanswerable
questions declined and costs a call to the feature answerer per question; ``dense``,
``title_overlap`` and ``release_share`` add little on press-tune)."""

SELECT_RECIPE = (*RECIPE, "retrieval_top")
"""The selection model's features unless asked otherwise (2026-12-05, session 22: with
``READ_PASSAGES`` passages, SQuAD's tuning half +1.5, press-tune +0.8 as users see it)."""

READ_PASSAGES = 4
"""How many passages a calibration is fitted to read unless asked otherwise (session 22)."""


@dataclass(frozen=True, slots=True)
class Calibration:
    weights: tuple[float, ...]
    bias: float
    threshold: float
    features: tuple[str, ...] = CALIBRATION_FEATURES
    passages: int = 3
    """How many top passages the reader reads (what the calibration was fitted with)."""
    confident: float = 0.75
    """From this probability an answer is confident (between ``threshold`` and here: low confidence)."""
    precision: Precision = "fp32"
    """The reader's ONNX precision the calibration was fitted with (``SpanReaderSettings``): the
    answerer runs its default reader at it, so the scores are the ones calibrated."""
    select_features: tuple[str, ...] = ()
    select: tuple[float, ...] = ()
    """Weights over ``select_features`` of a conditional logit that picks the question's answer
    among its candidates (``qa.training.calibrate.fit_select``); empty: the most probable one.
    Fitted on the choice itself, it uses the reranker's view of the passage (``retrieval_top``)
    that a per-candidate fit cannot (2026-12-05, cross-validated on the tuning sets: right
    answers +0.9 points on SQuAD, +0.4 on press)."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.passages < 1:
            raise ValueError(f"passages must be >= 1, got {self.passages!r}")
        if len(self.weights) != len(self.features):
            raise ValueError(f"{len(self.weights)} weights for {len(self.features)} features")
        if len(self.select) != len(self.select_features):
            raise ValueError(f"{len(self.select)} select weights for {len(self.select_features)} features")
        unknown = (set(self.features) | set(self.select_features)) - set(CALIBRATION_FEATURES)
        if unknown:
            raise ValueError(f"unknown calibration features {sorted(unknown)!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not 0.0 <= self.confident <= 1.0:
            raise ValueError(f"confident must be in [0, 1], got {self.confident!r}")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        d = json.loads(Path(path).read_text())
        return cls(
            tuple(d["weights"]),
            float(d["bias"]),
            float(d["threshold"]),
            tuple(d["features"]),
            int(d.get("passages", 3)),
            float(d.get("confident", 0.75)),
            d.get("precision", "fp32"),
            tuple(d.get("select_features", ())),
            tuple(d.get("select", ())),
        )

    def save(self, path: str | os.PathLike[str], **extra: object) -> None:
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        body = {
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "passages": self.passages,
            "confident": self.confident,
            "precision": self.precision,
        }
        if self.select:
            body |= {"select_features": list(self.select_features), "select": list(self.select)}
        tmp.write_text(json.dumps({**body, "threshold": self.threshold, **extra}, indent=2))
        os.replace(tmp, p)

    def uses(self, feature: str) -> bool:
        """Whether the probability or the selection reads ``feature`` (some cost time to compute)."""
        return feature in self.features or feature in self.select_features

    def proba(self, x: np.ndarray) -> np.ndarray:
        """The probability that each of one question's candidates (the rows of ``x``) is right.
        With a selection model, the one it picks keeps its own probability and each other is
        scaled by its odds against it under the selection model, so the most probable candidate
        is the one the selection picks (a date prior multiplied in later can still move it)."""
        cols = [CALIBRATION_FEATURES.index(f) for f in self.features]
        z = x[:, cols] @ np.asarray(self.weights) + self.bias
        p = 1.0 / (1.0 + np.exp(-z))
        if not self.select or not len(p):
            return p
        s = x[:, [CALIBRATION_FEATURES.index(f) for f in self.select_features]] @ np.asarray(self.select)
        k = int(np.argmax(s))
        return p[k] * np.exp(s - s[k])


UNCALIBRATED = Calibration(weights=(1.0,), bias=0.0, threshold=0.3, features=("log_prob",))
"""Before ``calibrate-reader`` has run: the span's probability share, as it is."""


class NeuralAnswerer:
    """The span reader's best span in each sentence of the top passages, scored by the
    calibration (``Answerer`` protocol). How many passages it reads: ``passages``, else the
    calibration's ``passages`` (what it was fitted with); ``settings.threshold`` overrides the
    calibration's threshold."""

    def __init__(
        self,
        index: Index,
        settings: AnswererSettings | None = None,
        reader: SpanReader | None = None,
        calibration: Calibration | None = None,
        *,
        passages: int | None = None,
        prior: SentencePrior | None = None,
    ):
        """``passages``: how many top passages to read (None: as many as the calibration was fitted
        on); ``prior``: the sentence prior (None: the installed one, if the calibration uses it)."""
        self.index = index
        self.settings = settings if settings is not None else AnswererSettings()
        if calibration is None:
            cal = (reader.path if reader is not None else READER_PATH) / "calibration.json"
            calibration = Calibration.load(cal) if cal.is_file() else UNCALIBRATED
        self.calibration = calibration
        self.reader = (
            reader
            if reader is not None
            else SpanReader(READER_PATH, SpanReaderSettings(precision=calibration.precision))
        )
        if passages is not None and passages < 1:
            raise ValueError(f"passages must be >= 1, got {passages!r}")
        self.passages = calibration.passages if passages is None else passages
        self.features = FeatureAnswerer(index, self.settings)
        self._prior = prior
        self._prior_looked = prior is not None

    @property
    def prior(self) -> SentencePrior | None:
        """The sentence prior, loaded on first use when the calibration uses it and one is
        installed (looked for once, not on every question)."""
        if not self._prior_looked and self.calibration.uses("sentence_prior"):
            self._prior = SentencePrior.load() if prior_available() else None
            self._prior_looked = True
        return self._prior

    @property
    def threshold(self) -> float:
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.calibration.threshold

    @property
    def confident(self) -> float:
        return max(self.calibration.confident, self.threshold)

    def _passage_vectors(self, hits: Sequence[Hit]) -> np.ndarray:
        """The passages' vectors from the index; a passage it does not hold (a span of a release
        read as given, ``Assistant.answer_from``) gets the normalised mean of its sentences'."""
        out = np.zeros((len(hits), self.index.dimension), dtype=np.float32)
        for i, h in enumerate(hits):
            fid = vector_id(h.passage.id)
            if fid in self.index.passages:
                out[i] = self.index.passage_vectors.reconstruct(fid)
            elif h.passage.sentences:
                ids = np.array([vector_id(sentence_key(s)) for s in h.passage.sentences], dtype=np.int64)
                mean = self.index.sentence_vectors.reconstruct_batch(ids).mean(axis=0)
                out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out

    def candidates(
        self, question: str, qvec: np.ndarray, hits: Sequence[Hit], context: str | None = None
    ) -> list[Candidate]:
        """The reader's best span in each sentence of the passages read (a sentence two passages
        share counts once, with its better reading)."""
        top = list(hits[: self.passages])
        if not top:
            return []
        reading = question if context is None else f"{context} {question}"
        heads = [
            header_text(h.release.title, h.release.date) if self.reader.reads_headers else "" for h in top
        ]
        per_text = self.reader.read_spans(
            reading,
            [hd + h.passage.text for hd, h in zip(heads, top, strict=True)],
            [
                ([0] if hd else []) + [len(hd) + s.start - h.passage.start for s in h.passage.sentences]
                for hd, h in zip(heads, top, strict=True)
            ],
        )
        if any(heads):
            per_text = [_unheaded(spans, len(hd)) for hd, spans in zip(heads, per_text, strict=True)]
        sent_prob: dict[tuple[str, int], float] = {}
        if self.calibration.uses("sentence_logit"):  # the feature answerer costs ~2x the reader
            sent_prob = {
                (sc.sentence.release_id, sc.sentence.start): sc.prob
                for sc in self.features.score(question, qvec, top, context)
            }
        q = Question.parse(question, context)
        top_score = max((sp.score for spans in per_text for sp in spans), default=0.0)
        dense = (
            self._passage_vectors(top) @ np.asarray(qvec, dtype=np.float32).reshape(-1)
            if self.calibration.uses("dense")
            else np.zeros(len(top), dtype=np.float32)
        )
        asked = content_words(reading)
        titled = [len(asked & content_words(h.release.title)) / max(1, len(asked)) for h in top]
        best_hit = max(h.score for h in top)
        to_top = [h.score / best_hit if best_hit > 0 else 1.0 for h in top]
        found: dict[tuple[str, int], _Reading] = {}
        for rank, (h, spans) in enumerate(zip(top, per_text, strict=True)):
            sents = h.passage.sentences
            offsets = [s.start - h.passage.start for s in sents]
            best_here = max((sp.score for sp in spans), default=0.0)
            for sp in spans:
                s = sents[max(0, bisect.bisect_right(offsets, sp.start) - 1)]
                a = max(s.start, h.passage.start + sp.start)
                b = min(s.end, h.passage.start + sp.end)
                key = (s.release_id, s.start)
                if b <= a or (key in found and found[key].span.score >= sp.score):
                    continue
                p = min(max(sent_prob.get(key, 0.5), 1e-4), 1 - 1e-4)
                f = [
                    sp.score - sp.null,
                    math.log(max(sp.prob, 1e-9)),
                    math.log(p / (1 - p)),
                    float(rank),
                    sp.score - top_score,
                    float(sp.score >= best_here),
                    s.start / max(1, len(h.release.text)),
                    math.log1p(len(h.release.text[a:b].split())),
                    float(dense[rank]),
                    titled[rank],
                    sp.prob,  # summed over the release below
                    0.0,  # the sentence prior, below
                    h.score,
                    to_top[rank],
                ]
                found[key] = _Reading(h, rank, s, a, b, sp, f)
        rows = list(found.values())
        if not rows:
            return []
        mass: dict[str, float] = {}
        for r in rows:
            mass[r.hit.release.id] = mass.get(r.hit.release.id, 0.0) + r.span.prob
        total = max(sum(mass.values()), 1e-9)
        for r in rows:
            r.features[_RELEASE_SHARE] = mass[r.hit.release.id] / total
        if self.prior is not None:
            odds = self.prior.log_odds(
                [r.sentence.text for r in rows],
                [r.sentence.start / max(1, len(r.hit.release.text)) for r in rows],
            )
            for r, v in zip(rows, odds, strict=True):
                r.features[_PRIOR] = float(v)
        x = np.asarray([r.features for r in rows], dtype=np.float64)
        probs = self.calibration.proba(x)
        return [
            Candidate(
                r.hit,
                r.rank,
                r.sentence,
                r.start,
                r.end,
                float(probs[i]) * date_prior(q, r.hit.release.date, r.sentence.text),
                x[i],
            )
            for i, r in enumerate(rows)
        ]


def _unheaded(spans: Sequence[ReadSpan], n: int) -> list[ReadSpan]:
    """The spans of a text read under an ``n``-character header, in the text's own offsets (none
    from the header itself)."""
    return [dataclasses.replace(sp, start=sp.start - n, end=sp.end - n) for sp in spans if sp.start >= n]


@dataclass(frozen=True, slots=True)
class _Reading:
    """The reader's span in one sentence, before calibration."""

    hit: Hit
    rank: int
    sentence: Sentence
    start: int  # release offsets
    end: int
    span: ReadSpan
    features: list[float]
