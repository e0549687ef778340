"""Index build timing: the whole ``update_index`` with where its time goes, against the raw
encoder on exactly the texts the build embedded, in the same process right after."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import qa.assistant
import qa.index
import qa.ingest.chunking
from qa.embedding import Embedder, SpanEmbedder, SpanVectors


class TimedEmbedder:
    """Forwards to an embedder, recording each call's texts and seconds."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.encode_calls: list[tuple[list[str], float]] = []
        self.span_calls: list[tuple[list[str], float]] = []
        """Passages read with their sentences (late sentence vectors), one entry per call."""
        self.count_seconds = 0.0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        t = time.perf_counter()
        try:
            return self.inner.count_tokens(texts)
        finally:
            self.count_seconds += time.perf_counter() - t

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.encode(texts, batch_size=batch_size)
        self.encode_calls.append((list(texts), time.perf_counter() - t))
        return out

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, progress: bool = False
    ) -> SpanVectors:
        if not isinstance(self.inner, SpanEmbedder):
            raise TypeError(f"{self.inner.name!r} cannot read spans")
        t = time.perf_counter()
        out = self.inner.encode_spans(texts, spans)
        self.span_calls.append((list(texts), time.perf_counter() - t))
        return out

    def passage_calls(self) -> list[tuple[list[str], float]]:
        """The calls that encoded passages: the span reads, or else each build's first call."""
        return self.span_calls or self.encode_calls[:1]

    def sentence_calls(self) -> list[tuple[list[str], float]]:
        """The calls that encoded sentences on their own (with late vectors: those no passage read)."""
        return self.encode_calls if self.span_calls else self.encode_calls[1:]


@contextlib.contextmanager
def _timing(owner: Any, name: str, spent: dict[str, float], key: str) -> Iterator[None]:
    """Wrap ``owner.name`` so its seconds add up in ``spent[key]``; a missing name is skipped."""
    orig: Callable[..., Any] | None = getattr(owner, name, None)
    if orig is None:
        yield
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return orig(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, orig)


def timed_build(index_path: Path, sources: Sequence[str], embedder: Embedder) -> dict[str, Any]:
    """Run ``update_index`` and split its seconds into stages (the rest is "other")."""
    emb = TimedEmbedder(embedder)
    spent: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(_timing(qa.assistant, "read_releases", spent, "reading"))
        stack.enter_context(_timing(qa.ingest.chunking, "split_sentences", spent, "sentence splitting"))
        stack.enter_context(_timing(qa.index, "annotate_batch", spent, "annotation (spaCy)"))
        stack.enter_context(_timing(qa.index.Index, "save", spent, "store and vector writes"))
        t = time.perf_counter()
        report = qa.assistant.update_index(index_path, list(sources), embedder=emb)
        total = time.perf_counter() - t
    pcalls, scalls = emb.passage_calls(), emb.sentence_calls()
    passage_texts = [t for texts, _ in pcalls for t in texts]
    texts = passage_texts + [t for texts, _ in scalls for t in texts]
    stages = {
        **spent,
        "token counting": emb.count_seconds,
        "embedding passages": sum(s for _, s in pcalls),
        "embedding sentences": sum(s for _, s in scalls),
    }
    stages["other"] = max(0.0, total - sum(stages.values()))
    return {
        "seconds": total,
        "releases": report.releases,
        "passages": report.passages,
        "sentences": report.sentences,
        "texts_embedded": len(texts),
        "passage_texts": len(passage_texts),
        "sentences_read_in_passages": bool(emb.span_calls),
        "stages": stages,
        "_texts": texts,
        "_passage_texts": passage_texts,
    }


def raw_encoder(embedder: Embedder, texts: Sequence[str]) -> float:
    """Seconds for the encoder alone on ``texts`` (same batching as the index)."""
    t = time.perf_counter()
    embedder.encode(list(texts))
    return time.perf_counter() - t
