"""Extractive answering: pick the sentence that answers, quote it, cite it, or decline."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.index import Index
from qa.types import Answer, Citation, Hit, Sentence

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "about",
        "into",
        "over",
        "under",
        "than",
        "then",
        "there",
        "their",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "we",
        "our",
        "you",
        "your",
        "i",
        "me",
        "my",
        "not",
        "no",
        "yes",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "also",
        "any",
        "all",
        "each",
        "some",
        "such",
        "so",
        "if",
        "up",
        "out",
        "off",
        "more",
        "most",
        "other",
        "many",
        "much",
        "did",
        "said",
        "say",
        "says",
        "tell",
    ]
)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*")


def content_words(text: str) -> set[str]:
    """Lower-cased words that carry meaning (no stop words, light plural stripping)."""
    out = set()
    for w in _TOKEN.findall(text.lower()):
        if w in STOPWORDS:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


@dataclass(frozen=True, slots=True)
class AnswererSettings:
    """``threshold``: below this score the assistant declines. ``passages``: how many top
    passages are read."""

    threshold: float = 0.35
    passages: int = 5
    cosine_weight: float = 0.5
    overlap_weight: float = 0.3
    passage_weight: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not isinstance(self.passages, int) or self.passages < 1:
            raise ValueError(f"passages must be a positive int, got {self.passages!r}")


class Answerer:
    """Scores every sentence of the top passages by question/sentence cosine, word overlap
    and the passage's retrieval score; the best one is the quote."""

    def __init__(self, index: Index, settings: AnswererSettings | None = None):
        self.index = index
        self.settings = settings if settings is not None else AnswererSettings()

    def candidates(self, hits: Sequence[Hit]) -> list[tuple[Sentence, Hit]]:
        seen: set[tuple[str, int]] = set()
        out = []
        for h in hits[: self.settings.passages]:
            for s in h.passage.sentences:
                key = (s.release_id, s.start)
                if key not in seen:
                    seen.add(key)
                    out.append((s, h))
        return out

    def score(self, question: str, qvec: np.ndarray, cands: Sequence[tuple[Sentence, Hit]]) -> np.ndarray:
        if not cands:
            return np.zeros(0, dtype=np.float32)
        st = self.settings
        svecs = self.index.sentence_vectors_of([s for s, _ in cands])
        cos = svecs @ qvec.astype(np.float32)
        qwords = content_words(question)
        overlap = np.array(
            [len(qwords & content_words(s.text)) / len(qwords) if qwords else 0.0 for s, _ in cands],
            dtype=np.float32,
        )
        pscore = np.array([h.score for _, h in cands], dtype=np.float32)
        return st.cosine_weight * cos + st.overlap_weight * overlap + st.passage_weight * pscore

    def answer(
        self,
        question: str,
        qvec: np.ndarray,
        hits: Sequence[Hit],
        *,
        threshold: float | None = None,
        resolved_question: str | None = None,
    ) -> Answer:
        threshold = self.settings.threshold if threshold is None else threshold
        query = resolved_question if resolved_question is not None else question
        cands = self.candidates(hits)
        scores = self.score(query, qvec, cands)
        if len(scores) == 0:
            return Answer(
                question, None, None, 0.0, None, hits=tuple(hits), resolved_question=resolved_question
            )
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < threshold:
            return Answer(
                question, None, None, score, None, hits=tuple(hits), resolved_question=resolved_question
            )
        sent, hit = cands[best]
        return Answer(
            question=question,
            text=sent.text,
            sentence=sent.text,
            score=score,
            citation=Citation.of(hit.release, sent.start, sent.end),
            sentence_start=sent.start,
            sentence_end=sent.end,
            hits=tuple(hits),
            resolved_question=resolved_question,
        )
