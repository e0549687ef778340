"""The public facade: build or update an index, then search and ask."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.answer import Answerer, AnswererSettings, content_words
from qa.chunking import ChunkerSettings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.index import Index, QAIndexError, writer_lock
from qa.releases import ReadReport, Skipped, read_releases
from qa.retrieval import Filters, Retriever
from qa.types import Answer, Hit

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What ``update_index`` did, for the CLI's closing summary."""

    path: str
    releases: int
    skipped: tuple[Skipped, ...]
    added: int
    removed: int
    passages: int
    sentences: int
    seconds: float
    rebuilt: bool

    @property
    def up_to_date(self) -> bool:
        return self.added == 0 and self.removed == 0 and not self.rebuilt


def update_index(
    index_path: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    *,
    embedder: Embedder | None = None,
    chunker: ChunkerSettings | None = None,
    strict: bool = False,
    progress: bool = False,
) -> IndexReport:
    """Make the index at ``index_path`` hold exactly the releases under ``sources``.

    Unchanged releases keep their vectors; only new or changed ones are embedded.
    A model or chunker change rebuilds from scratch. Nothing is written when the
    corpus is unchanged.
    """
    t0 = time.perf_counter()
    emb = embedder if embedder is not None else SentenceTransformerEmbedder()
    settings = chunker if chunker is not None else ChunkerSettings()
    root = Path(index_path)
    with writer_lock(root):
        report: ReadReport = read_releases(sources, strict=strict, progress=progress)
        source_names = tuple(str(s) for s in sources)
        index: Index | None = None
        rebuilt = False
        if (root / "current").exists():
            try:
                index = Index.load(root)
                if (index.model, index.dimension) != (emb.name, emb.dimension) or index.chunker != settings:
                    logger.warning("model or chunker settings changed: rebuilding %s", root)
                    index, rebuilt = None, True
            except QAIndexError as e:
                logger.warning("%s; rebuilding", e)
                index, rebuilt = None, True
        if index is None:
            index = Index.empty(emb, settings)
            rebuilt = True
        added, removed = index.sync(report.releases, emb, progress=progress)
        changed = rebuilt or added or removed or index.sources != source_names
        index.sources = source_names
        if changed:
            index.save(root, locked=True)
    return IndexReport(
        path=str(root),
        releases=len(report.releases),
        skipped=report.skipped,
        added=added,
        removed=removed,
        passages=len(index.passages),
        sentences=len(index.sentences),
        seconds=time.perf_counter() - t0,
        rebuilt=rebuilt,
    )


_FOLLOWUP_START = re.compile(r"^\s*(and|also|but|so|what about|how about|and what|then)\b", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|there|he|she|his|her)\b", re.I)


def last_user_question(history: Sequence[Message] | None) -> str | None:
    for m in reversed(history or ()):
        if m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"].strip():
            return str(m["content"])
    return None


def resolve_followup(question: str, history: Sequence[Message] | None) -> str | None:
    """The question to retrieve with when ``question`` leans on the chat so far, else None.

    A follow-up ("And when was it held?", "What about 2023?") is short, starts with a
    connective or leans on a pronoun; the previous question supplies its subject.
    """
    prev = last_user_question(history)
    if prev is None:
        return None
    q = question.strip()
    few_words = len(content_words(q)) <= 3
    if _FOLLOWUP_START.search(q) or (few_words and _PRONOUN.search(q)) or len(content_words(q)) <= 1:
        return f"{prev.strip()} {q}"
    return None


class Assistant:
    """Answers questions from an index by quoting releases.

    >>> a = Assistant.load("embeddings/default")        # doctest: +SKIP
    >>> a.ask("Who chaired the AMCC?").text             # doctest: +SKIP
    """

    def __init__(
        self,
        index: Index,
        embedder: Embedder | None = None,
        *,
        k: int = 10,
        answerer: AnswererSettings | None = None,
    ):
        self.index = index
        self.embedder = embedder if embedder is not None else SentenceTransformerEmbedder()
        self.retriever = Retriever(index, self.embedder, k=k)
        self.answerer = Answerer(index, answerer)

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedder: Embedder | None = None, **kwargs: Any) -> Assistant:
        emb = embedder if embedder is not None else SentenceTransformerEmbedder()
        return cls(Index.load(path, emb), emb, **kwargs)

    def search(self, query: str, k: int | None = None, filters: Filters | None = None) -> list[Hit]:
        return self.retriever.search(_check_question(query), k=k, filters=filters)

    def search_batch(
        self, queries: Sequence[str], k: int | None = None, filters: Filters | None = None
    ) -> list[list[Hit]]:
        return self.retriever.search_batch([_check_question(q) for q in queries], k=k, filters=filters)

    def ask(
        self,
        question: str,
        history: Sequence[Message] | None = None,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        threshold: float | None = None,
    ) -> Answer:
        return self.ask_batch([question], [history], k=k, filters=filters, threshold=threshold)[0]

    def ask_batch(
        self,
        questions: Sequence[str],
        histories: Sequence[Sequence[Message] | None] | None = None,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        threshold: float | None = None,
    ) -> list[Answer]:
        qs = [_check_question(q) for q in questions]
        hist = list(histories) if histories is not None else [None] * len(qs)
        if len(hist) != len(qs):
            raise ValueError(f"got {len(qs)} questions but {len(hist)} histories")
        resolved = [resolve_followup(q, h) for q, h in zip(qs, hist, strict=True)]
        queries = [r if r is not None else q for q, r in zip(qs, resolved, strict=True)]
        vecs = self.retriever.encode(queries)
        hits = self.retriever.search_vectors(vecs, k=k, filters=filters)
        return [
            self.answerer.answer(q, v, h, threshold=threshold, resolved_question=r)
            for q, v, h, r in zip(qs, vecs, hits, resolved, strict=True)
        ]


def _check_question(q: str) -> str:
    if not isinstance(q, str):
        raise TypeError(f"question must be a string, got {type(q).__name__}")
    cleaned = "".join(c if c.isprintable() or c in "\n\t" else " " for c in q)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise ValueError("the question is empty")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is {len(cleaned)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return cleaned
