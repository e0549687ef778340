"""Typed, frozen records passed between modules.

Every offset is a character offset into ``Release.text`` (the text exactly as the
library read it), so ``release.text[start:end]`` gives the passage, sentence or
answer back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date


def content_hash(text: str, n: int = 16) -> str:
    """Short, stable hex digest: ids come from content so rebuilds keep them."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


@dataclass(frozen=True, slots=True)
class Release:
    """One press release as read from disk."""

    id: str
    text: str
    title: str
    path: str
    date: date | None = None
    source: str | None = None
    url: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Sentence:
    release_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A window of whole sentences of one release."""

    id: str
    release_id: str
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage with its score (higher is better)."""

    passage: Passage
    score: float
    release: Release


@dataclass(frozen=True, slots=True)
class Citation:
    release_id: str
    title: str
    date: date | None
    source: str | None
    url: str | None
    path: str
    start: int
    end: int

    @classmethod
    def of(cls, release: Release, start: int, end: int) -> Citation:
        return cls(
            release_id=release.id,
            title=release.title,
            date=release.date,
            source=release.source,
            url=release.url,
            path=release.path,
            start=start,
            end=end,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """An extractive answer; ``text is None`` means the assistant declined.

    ``text`` is ``release.text[citation.start:citation.end]``; ``sentence`` is the
    whole sentence holding it, from ``sentence_start`` to ``sentence_end``.
    """

    question: str
    text: str | None
    sentence: str | None
    score: float
    citation: Citation | None
    sentence_start: int | None = None
    sentence_end: int | None = None
    hits: tuple[Hit, ...] = field(default=(), compare=False, repr=False)
    resolved_question: str | None = None
    alternatives: tuple[Citation, ...] = ()
    """Other releases that answer nearly as well (say, each year's edition of an event)
    when the question does not say which one it means; for a low-confidence answer, the next
    best spans."""
    confident: float | None = None
    """The score from which the answerer's answers are confident (below it: low confidence);
    None when the answerer has no such level."""

    @property
    def declined(self) -> bool:
        return self.text is None

    @property
    def confidence(self) -> str:
        """The score in words a reader understands: "high", "medium", "low" (or "none")."""
        if self.text is None:
            return "none"
        if self.confident is not None:
            return "high" if self.score >= self.confident else "low"
        if self.score >= CONFIDENCE_HIGH:
            return "high"
        return "medium" if self.score >= CONFIDENCE_MEDIUM else "low"


CONFIDENCE_HIGH = 0.75
CONFIDENCE_MEDIUM = 0.5
