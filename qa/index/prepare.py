"""The per-release work of a build: sentences, passages, their vectors and annotations.

Kept apart from ``Index`` so the work can run anywhere (in this process, or on Ray workers,
``qa.index.ray_build``) while the index only inserts the results, in the order given: every way
of building then gives the same index. ``to_row``/``from_row`` carry a prepared release between
processes as plain JSON and float32 bytes.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.embedding import Embedder, SpanEmbedder
from qa.ingest.annotate import annotate_batch
from qa.ingest.chunking import Chunker, ChunkerSettings
from qa.ingest.releases import FileRead
from qa.serialize import release_from_dict, release_to_dict
from qa.text import passage_embedding_text
from qa.types import Passage, Release, Sentence


@dataclass(frozen=True, slots=True, eq=False)
class PreparedRelease:
    """A release with everything the index stores of it, ready to insert."""

    release: Release
    passages: tuple[Passage, ...]
    sentences: tuple[Sentence, ...]
    passage_vectors: np.ndarray
    """float32, one row per passage."""
    sentence_vectors: np.ndarray
    """float32, one row per sentence."""
    annotations: tuple[str, ...] | None = None
    """One annotation (JSON) per sentence; None when the index keeps none."""


Preparer = Callable[[Sequence[Release]], Iterable[PreparedRelease]]
"""Prepares releases, yielding one ``PreparedRelease`` per release in the order given."""


class BuildWorkers(Protocol):
    """Somewhere else to do a build's per-file and per-release work (``qa.index.ray_build``)."""

    def read(self, files: Sequence[tuple[Path, str]]) -> Iterable[FileRead]:
        """A ``FileReader``: one ``FileRead`` per file, in the order given."""
        ...

    def preparer(
        self, embedder: Embedder, settings: ChunkerSettings, *, annotate: bool = False
    ) -> Preparer: ...


class VectorMemo:
    """The vectors of the last ``size`` distinct sentences a build encoded: a real archive repeats
    lines ("###", signature blocks, "THE WHITE HOUSE,"; about 1 sentence in 10), which are then
    encoded once."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._rows: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()

    def get(self, text: str) -> np.ndarray | None:
        row = self._rows.get(text)
        if row is not None:
            self._rows.move_to_end(text)
        return row

    def put(self, text: str, row: np.ndarray) -> None:
        self._rows[text] = row
        self._rows.move_to_end(text)
        while len(self._rows) > self.size:
            self._rows.popitem(last=False)


def encode_distinct(
    embedder: Embedder, texts: Sequence[str], memo: VectorMemo | None = None, *, progress: bool = False
) -> np.ndarray:
    """``embedder.encode(texts)``, each distinct text encoded once (and none ``memo`` holds)."""
    distinct = list(dict.fromkeys(texts))
    known = {t: v for t in distinct if memo is not None and (v := memo.get(t)) is not None}
    todo = [t for t in distinct if t not in known]
    got = dict(zip(todo, embedder.encode(todo, progress=progress), strict=True)) if todo else {}
    if memo is not None:
        for t, v in got.items():
            memo.put(t, v)
    got.update(known)
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.ascontiguousarray(np.stack([got[t] for t in texts]), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class ChunkedRelease:
    """A release cut into its sentences and passages, not yet encoded."""

    release: Release
    sentences: tuple[Sentence, ...]
    passages: tuple[Passage, ...]


def chunk_releases(
    releases: Sequence[Release], chunker: Chunker, *, progress: bool = False
) -> list[ChunkedRelease]:
    """The text half of preparing: sentences and passages (pure Python, one core)."""
    items: Iterable[Release] = releases
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(list(releases), desc="chunking", unit="release")
    out = []
    for r in items:
        sents = chunker.sentences(r)
        out.append(ChunkedRelease(r, tuple(sents), tuple(chunker.chunk(r, sents))))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class LateVectors:
    """Passage vectors and sentence vectors from one encoder pass over the passages."""

    passages: np.ndarray
    sentences: np.ndarray
    """One row per sentence: the mean of its readings (a sentence two passages share is read in
    both), normalized; zero where ``read`` is False."""
    read: np.ndarray
    """bool per sentence: False where no passage's tokens reached it (past the truncation)."""


def late_sentence_vectors(
    parts: Sequence[ChunkedRelease], embedder: SpanEmbedder, *, progress: bool = False
) -> LateVectors:
    """Each passage's vector and each sentence's vector read in its passages."""
    texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    owner: list[int] = []  # the sentence (index over all parts) of each span
    base = 0
    for x in parts:
        where = {(s.start, s.end): base + i for i, s in enumerate(x.sentences)}
        for p in x.passages:
            text = passage_embedding_text(x.release, p)
            off = len(text) - len(p.text)  # the title before the passage
            texts.append(text)
            spans.append([(off + s.start - p.start, off + s.end - p.start) for s in p.sentences])
            owner.extend(where[(s.start, s.end)] for s in p.sentences)
        base += len(x.sentences)
    got = embedder.encode_spans(texts, spans, progress=progress)
    sums = np.zeros((base, got.texts.shape[1]), dtype=np.float32)
    ok = got.found
    np.add.at(sums, np.asarray(owner, dtype=np.int64)[ok], got.spans[ok])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    read = norms[:, 0] > 0
    svec = np.where(read[:, None], sums / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
    return LateVectors(got.texts, svec, read)


def encode_chunked(
    parts: Sequence[ChunkedRelease],
    embedder: Embedder,
    memo: VectorMemo | None,
    *,
    annotate: bool,
    progress: bool,
    late: bool = False,
) -> list[PreparedRelease]:
    """The encoder half: one encoder call for all passages and, unless ``late`` reads them in
    their passages, one for all (distinct) sentences, which the encoder batches by length (faster
    than a call per release); ``annotate``: spaCy annotations too."""
    sentences = [s for x in parts for s in x.sentences]
    if late:
        if not isinstance(embedder, SpanEmbedder):
            raise TypeError(
                f"late sentence vectors need an embedder with encode_spans; {embedder.name!r} has none"
            )
        late_vecs = late_sentence_vectors(parts, embedder, progress=progress)
        pvec, svec = late_vecs.passages, late_vecs.sentences
        if not late_vecs.read.all():  # past a passage's truncation: encoded on their own
            missed = np.flatnonzero(~late_vecs.read)
            svec[missed] = encode_distinct(embedder, [sentences[i].text for i in missed], memo)
    else:
        texts = [passage_embedding_text(x.release, p) for x in parts for p in x.passages]
        pvec = embedder.encode(texts, progress=progress)
        svec = encode_distinct(embedder, [s.text for s in sentences], memo, progress=progress)
    anns = (
        [a.to_json() for a in annotate_batch([s.text for s in sentences])] if annotate and sentences else None
    )
    out: list[PreparedRelease] = []
    pi = si = 0
    for x in parts:
        np_, ns = len(x.passages), len(x.sentences)
        out.append(
            PreparedRelease(
                release=x.release,
                passages=x.passages,
                sentences=x.sentences,
                passage_vectors=pvec[pi : pi + np_],
                sentence_vectors=svec[si : si + ns],
                annotations=tuple(anns[si : si + ns]) if anns is not None else None,
            )
        )
        pi, si = pi + np_, si + ns
    return out


def prepare_releases(
    releases: Sequence[Release],
    embedder: Embedder,
    settings: ChunkerSettings,
    *,
    annotate: bool = False,
    progress: bool = False,
    memo: VectorMemo | None = None,
) -> list[PreparedRelease]:
    """Chunk and encode ``releases``, and with ``annotate`` (and ``settings.annotator`` set)
    annotate their sentences now rather than when an answerer first asks for them.

    Annotating is optional because spaCy costs about half the encoder's time and only the
    feature answerer reads annotations (``Index.annotations_of``).
    """
    parts = chunk_releases(releases, Chunker(settings, embedder.count_tokens), progress=progress)
    annotate = annotate and settings.annotator is not None
    late = settings.sentence_vectors == "late"
    return encode_chunked(parts, embedder, memo, annotate=annotate, progress=progress, late=late)


def prepare_locally(
    embedder: Embedder,
    settings: ChunkerSettings,
    *,
    batch: int = 64,
    annotate: bool = False,
    progress: bool = False,
) -> Preparer:
    """The default ``Preparer``: ``batch`` releases at a time in this process, lazily, so a
    caller that saves between batches loses at most one batch when killed.

    The next batch is chunked in a second thread while this one is encoded: chunking is pure
    Python on one core and the encoder (ONNX, torch) releases the GIL, so the core the encoder
    leaves idle between its own calls does the chunking (a build's text work was ~15% of its
    time, all of it on one core)."""

    def prepare(releases: Sequence[Release]) -> Iterator[PreparedRelease]:
        memo = VectorMemo()
        chunker = Chunker(settings, embedder.count_tokens)
        annotating = annotate and settings.annotator is not None
        late = settings.sentence_vectors == "late"
        batches = [releases[lo : lo + batch] for lo in range(0, len(releases), batch)]
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-chunk") as ahead:
            pending = ahead.submit(chunk_releases, batches[0], chunker, progress=progress)
            for i in range(len(batches)):
                parts = pending.result()
                if i + 1 < len(batches):
                    pending = ahead.submit(chunk_releases, batches[i + 1], chunker, progress=progress)
                yield from encode_chunked(
                    parts, embedder, memo, annotate=annotating, progress=progress, late=late
                )

    return prepare


# ---------------------------------------------------------------- between processes


def to_row(p: PreparedRelease) -> dict[str, Any]:
    """A prepared release as plain values (JSON text, float32 bytes): what a worker sends back."""
    return {
        "release": json.dumps(release_to_dict(p.release)),
        "passages": json.dumps([[x.id, x.start, x.end] for x in p.passages]),
        "sentences": json.dumps([[x.start, x.end] for x in p.sentences]),
        "passage_vectors": np.ascontiguousarray(p.passage_vectors, dtype=np.float32).tobytes(),
        "sentence_vectors": np.ascontiguousarray(p.sentence_vectors, dtype=np.float32).tobytes(),
        "annotations": json.dumps(list(p.annotations) if p.annotations is not None else None),
    }


def from_row(row: dict[str, Any], dimension: int) -> PreparedRelease:
    """The inverse of ``to_row``; texts are cut from the release by their offsets."""
    r = release_from_dict(json.loads(row["release"]))
    sents = tuple(Sentence(r.id, a, b, r.text[a:b]) for a, b in json.loads(row["sentences"]))
    passages = tuple(
        Passage(pid, r.id, a, b, r.text[a:b], tuple(s for s in sents if s.start >= a and s.end <= b))
        for pid, a, b in json.loads(row["passages"])
    )
    anns = json.loads(row["annotations"])
    return PreparedRelease(
        release=r,
        passages=passages,
        sentences=sents,
        passage_vectors=_matrix(row["passage_vectors"], len(passages), dimension),
        sentence_vectors=_matrix(row["sentence_vectors"], len(sents), dimension),
        annotations=tuple(anns) if anns is not None else None,
    )


def _matrix(data: bytes, rows: int, dimension: int) -> np.ndarray:
    x = np.frombuffer(data, dtype=np.float32)
    if x.size != rows * dimension:
        raise ValueError(f"expected {rows} x {dimension} floats, got {x.size}")
    return x.reshape(rows, dimension).copy()
