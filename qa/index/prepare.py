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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.embedding import Embedder
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

    One encoder call for all passages and one for all sentences: the encoder batches by length,
    which is faster than a call per release. Annotating is optional because spaCy costs about half
    the encoder's time and only the feature answerer reads annotations (``Index.annotations_of``).
    """
    chunker = Chunker(settings, embedder.count_tokens)
    items: Iterable[Release] = releases
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(list(releases), desc="chunking", unit="release")
    parts: list[tuple[Release, list[Sentence], list[Passage]]] = []
    for r in items:
        sents = chunker.sentences(r)
        parts.append((r, sents, chunker.chunk(r, sents)))
    passages = [p for _, _, ps in parts for p in ps]
    sentences = [s for _, ss, _ in parts for s in ss]
    by_id = {r.id: r for r in releases}
    texts = [passage_embedding_text(by_id[p.release_id], p) for p in passages]
    pvec = embedder.encode(texts, progress=progress)
    svec = encode_distinct(embedder, [s.text for s in sentences], memo, progress=progress)
    anns = (
        [a.to_json() for a in annotate_batch([s.text for s in sentences])]
        if annotate and settings.annotator is not None and sentences
        else None
    )
    out: list[PreparedRelease] = []
    pi = si = 0
    for r, ss, ps in parts:
        out.append(
            PreparedRelease(
                release=r,
                passages=tuple(ps),
                sentences=tuple(ss),
                passage_vectors=pvec[pi : pi + len(ps)],
                sentence_vectors=svec[si : si + len(ss)],
                annotations=tuple(anns[si : si + len(ss)]) if anns is not None else None,
            )
        )
        pi, si = pi + len(ps), si + len(ss)
    return out


def prepare_locally(
    embedder: Embedder,
    settings: ChunkerSettings,
    *,
    batch: int = 64,
    annotate: bool = False,
    progress: bool = False,
) -> Preparer:
    """The default ``Preparer``: ``batch`` releases at a time in this process, lazily, so a
    caller that saves between batches loses at most one batch when killed."""

    def prepare(releases: Sequence[Release]) -> Iterator[PreparedRelease]:
        memo = VectorMemo()
        for lo in range(0, len(releases), batch):
            part = releases[lo : lo + batch]
            yield from prepare_releases(
                part, embedder, settings, annotate=annotate, progress=progress, memo=memo
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
