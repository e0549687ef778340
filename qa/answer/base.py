"""What every answerer is: something that proposes quotable spans with the probability that each
is right. One function (``answer_from_candidates``) then picks the answer, declines below the
threshold and finds the alternatives, whichever answerer proposed the spans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from qa.answer.features import Question, years
from qa.types import Answer, Citation, Hit, Release, Sentence


@dataclass(frozen=True, slots=True)
class Candidate:
    """A span one answerer proposes: ``release.text[start:end]`` inside ``sentence`` of the passage
    ``hit`` (read at ``rank`` among the hits), with the probability ``prob`` that it is right and the
    features that probability came from."""

    hit: Hit
    rank: int
    sentence: Sentence
    start: int
    end: int
    prob: float
    features: np.ndarray = field(compare=False, repr=False)

    @property
    def release(self) -> Release:
        return self.hit.release


@runtime_checkable
class Answerer(Protocol):
    """Proposes candidates for a question from the retrieved passages."""

    @property
    def threshold(self) -> float:
        """Below this probability the assistant declines."""
        ...

    @property
    def confident(self) -> float:
        """From this probability an answer is confident; between ``threshold`` and here it is
        still given, marked low confidence, with the next best spans beside it."""
        ...

    def candidates(
        self, question: str, qvec: np.ndarray, hits: Sequence[Hit], context: str | None = None
    ) -> list[Candidate]:
        """``context``: the earlier question when this one is a follow-up."""
        ...


def answer_from_candidates(
    question: str,
    candidates: Sequence[Candidate],
    hits: Sequence[Hit],
    threshold: float,
    resolved_question: str | None = None,
    confident: float | None = None,
) -> Answer:
    """The most probable candidate quoted with its citation, or a decline below ``threshold``.
    Below ``confident`` the answer is marked low confidence and the next best spans come with it."""
    if not candidates:
        return declined(question, 0.0, hits, resolved_question)
    best = max(candidates, key=lambda c: c.prob)
    if best.prob < threshold:
        return declined(question, best.prob, hits, resolved_question)
    if confident is not None and best.prob < confident:
        picked = runners_up(best, candidates, threshold)
    else:
        picked = alternatives(question, best, candidates, threshold)
    alts = tuple(Citation.of(c.release, c.start, c.end) for c in picked)
    return quoted(question, best, hits, resolved_question, alts, confident)


def answer(
    answerer: Answerer,
    question: str,
    qvec: np.ndarray,
    hits: Sequence[Hit],
    *,
    threshold: float | None = None,
    context: str | None = None,
    resolved_question: str | None = None,
) -> Answer:
    """Ask ``answerer`` for candidates and decide (``threshold`` None: the answerer's own)."""
    limit = answerer.threshold if threshold is None else threshold
    cands = answerer.candidates(question, qvec, hits, context)
    return answer_from_candidates(question, cands, hits, limit, resolved_question, answerer.confident)


def quoted(
    question: str,
    best: Candidate,
    hits: Sequence[Hit],
    resolved_question: str | None,
    alternatives: tuple[Citation, ...] = (),
    confident: float | None = None,
) -> Answer:
    """The answer quoting ``release.text[start:end]`` inside its sentence, with its citation."""
    release, sentence = best.release, best.sentence
    return Answer(
        question=question,
        text=release.text[best.start : best.end],
        sentence=sentence.text,
        score=best.prob,
        citation=Citation.of(release, best.start, best.end),
        sentence_start=sentence.start,
        sentence_end=sentence.end,
        hits=tuple(hits),
        resolved_question=resolved_question,
        alternatives=alternatives,
        confident=confident,
    )


def declined(question: str, score: float, hits: Sequence[Hit], resolved_question: str | None) -> Answer:
    return Answer(question, None, None, score, None, hits=tuple(hits), resolved_question=resolved_question)


ALTERNATIVE_RATIO = 0.6
"""Another release is an alternative when its best answer scores at least this share of the best."""


def alternatives(
    question: str, best: Candidate, candidates: Sequence[Candidate], limit: float
) -> list[Candidate]:
    """The best candidate of each other release scoring close to the best (at most 3), when the
    question names no year to choose between them (say, each year's edition of a summit)."""
    if Question.parse(question).years:
        return []
    per_release: dict[str, Candidate] = {}
    for c in sorted(candidates, key=lambda c: -c.prob):
        if c.prob >= max(limit, ALTERNATIVE_RATIO * best.prob):
            per_release.setdefault(c.release.id, c)
    per_release.pop(best.release.id, None)
    return list(per_release.values())[:3]


def runners_up(best: Candidate, candidates: Sequence[Candidate], threshold: float) -> list[Candidate]:
    """The next best spans of other sentences (at most 3, from half the threshold): what a reader
    checks beside a low-confidence answer."""
    out: list[Candidate] = []
    seen = {(best.release.id, best.sentence.start)}
    for c in sorted(candidates, key=lambda c: -c.prob):
        key = (c.release.id, c.sentence.start)
        if key in seen or c.prob < threshold / 2:
            continue
        seen.add(key)
        out.append(c)
        if len(out) == 3:
            break
    return out


YEAR_MISMATCH = 0.35
"""Weight of a sentence from a release dated in another year than the question names.

The models learned from SQuAD, whose articles carry no dates, so they cannot know that
"the 2021 joint statement" rules out the 2023 one; this rule says it."""


def date_prior(q: Question, release_date: dt.date | None, sentence_text: str) -> float:
    if not q.years or release_date is None or str(release_date.year) in q.years:
        return 1.0
    return 1.0 if q.years & years(sentence_text) else YEAR_MISMATCH
