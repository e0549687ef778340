"""The index: FAISS vectors for passages and sentences, a SQLite store, a manifest.

On disk an index is a folder::

    <path>/current -> snapshots/<stamp>     (a symlink, swapped atomically)
    <path>/snapshots/<stamp>/manifest.json
                            /passages.faiss  (IndexIDMap2 over IndexFlatIP)
                            /sentences.faiss
                            /store.sqlite    (releases, passage and sentence offsets, annotations)
                            /bm25.*          (bm25s arrays, .npy and JSON; see qa.lexical)
                            /stems.json      (passage counts of stems: the answerer's IDF)
                            /verified.json   (stat of each file when last hashed)
    <path>/.lock                            (held by a writer)

A save builds a new snapshot and then swaps the symlink, so a crash leaves the
previous index whole and readers never see half an index. The manifest holds a
SHA-256 of every other file, so a damaged file is refused on load rather than read
half-way. Only FAISS, SQLite, JSON and plain numeric .npy are written: nothing is
pickled. A loaded index holds the vectors, the releases and BM25 (memory-mapped);
passages, sentences and annotations are read from the store when asked for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import faiss
import numpy as np

from qa.annotate import EMPTY, Annotation, annotate_batch
from qa.chunking import Chunker, ChunkerSettings
from qa.embedding import Embedder
from qa.features import content_stems
from qa.lexical import BM25, lexical_text
from qa.store import Store, update_store, write_store
from qa.types import Passage, Release, Sentence

logger = logging.getLogger(__name__)

FORMAT = "release-qa-index"
FORMAT_VERSION = 2
TITLE_WORDS = 32
REBUILD_LEXICAL = 0.05
"""Rebuild BM25 at save once this share of passages changed since it was built."""
STEMS = "stems.json"


class QAIndexError(RuntimeError):
    """An index that cannot be loaded or written; the message says why and what to do."""


def vector_id(key: str) -> int:
    """A positive int64 FAISS id from a content key, stable across rebuilds."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 4


def sentence_key(s: Sentence) -> str:
    return f"{s.release_id}:s:{s.start}:{s.end}"


def passage_embedding_text(release: Release, passage: Passage) -> str:
    """What the encoder sees for a passage: its release's title, then the passage.

    Questions often name the event or the year, which the title holds and the
    passage may not.
    """
    title = " ".join(release.title.split()[:TITLE_WORDS])
    return f"{title}\n{passage.text}"


def corpus_fingerprint(release_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(release_ids)).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Manifest:
    model: str
    dimension: int
    chunker: dict[str, Any]
    fingerprint: str
    releases: int
    passages: int
    sentences: int
    sources: tuple[str, ...]
    created_at: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    files: tuple[tuple[str, str], ...] = ()
    """(file name, SHA-256) of each file of the snapshot but the manifest."""

    def to_json(self) -> str:
        d = {
            "format": self.format,
            "format_version": self.format_version,
            "model": {"name": self.model, "dimension": self.dimension},
            "chunker": self.chunker,
            "corpus": {
                "fingerprint": self.fingerprint,
                "releases": self.releases,
                "passages": self.passages,
                "sentences": self.sentences,
                "sources": list(self.sources),
            },
            "created_at": self.created_at,
        }
        if self.files:
            d["files"] = dict(self.files)
            d["checksum"] = _manifest_checksum(d)
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: Path, root: Path | None = None) -> Manifest:
        """Parse a manifest; ``root`` (the index folder) goes into the rebuild hint."""
        hint = rebuild_hint(root if root is not None else where.parent)
        try:
            d = json.loads(text)
            if not isinstance(d, dict) or d.get("format") != FORMAT:
                raise QAIndexError(f"{where} is not a release-qa index manifest; {hint}")
            if d.get("format_version") != FORMAT_VERSION:
                raise QAIndexError(
                    f"index at {root or where.parent} has format version {d.get('format_version')!r}; "
                    f"this release-qa reads version {FORMAT_VERSION}; {hint}"
                )
            if "checksum" in d and d.pop("checksum") != _manifest_checksum(d):
                raise QAIndexError(f"manifest {where} is damaged (it does not match its checksum); {hint}")
            c = d["corpus"]
            return cls(
                model=d["model"]["name"],
                dimension=int(d["model"]["dimension"]),
                chunker=dict(d["chunker"]),
                fingerprint=c["fingerprint"],
                releases=int(c["releases"]),
                passages=int(c["passages"]),
                sentences=int(c["sentences"]),
                sources=tuple(c.get("sources", ())),
                created_at=d["created_at"],
                files=tuple(sorted((str(k), str(v)) for k, v in d.get("files", {}).items())),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise QAIndexError(f"manifest {where} is damaged ({type(e).__name__}: {e}); {hint}") from None


def _manifest_checksum(d: dict[str, Any]) -> str:
    """SHA-256 of the manifest's other fields, so no edit or bit flip in it goes unseen."""
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def rebuild_hint(root: Path) -> str:
    return f"rebuild it with: release-qa index <folders> --index {root}"


T = TypeVar("T")


class Table(MutableMapping[int, T], Generic[T]):
    """Rows by vector id: those in the snapshot's store read on demand, those added since
    held in memory (``added``). Deleting a stored row only records its id (``removed``).

    Stored ids are one sorted int64 array (8 bytes an id, not the ~90 of a dict entry:
    at 100k passages, 70 MB less for sentences and annotations)."""

    def __init__(self, fetch: Callable[[Sequence[int]], dict[int, T]], stored: Iterable[int] = ()):
        self._fetch = fetch
        ids = stored if isinstance(stored, np.ndarray) else np.fromiter(stored, dtype=np.int64)
        ids = ids.astype(np.int64, copy=False)
        self._stored = ids if bool((ids[1:] > ids[:-1]).all()) else np.unique(ids)
        self.added: dict[int, T] = {}
        self.removed: set[int] = set()

    def stored(self, fid: int) -> bool:
        """Whether ``fid`` is a row of the store not removed since."""
        return bool(self.stored_mask(np.array([fid], dtype=np.int64))[0])

    def stored_mask(self, fids: np.ndarray) -> np.ndarray:
        """``stored`` for many ids at once."""
        fids = np.asarray(fids, dtype=np.int64)
        i = np.minimum(np.searchsorted(self._stored, fids), max(len(self._stored) - 1, 0))
        ok = (self._stored[i] == fids) if len(self._stored) else np.zeros(len(fids), dtype=bool)
        if self.removed:
            ok &= ~np.isin(fids, np.fromiter(self.removed, dtype=np.int64, count=len(self.removed)))
        return ok

    def __getitem__(self, fid: int) -> T:
        if fid in self.added:
            return self.added[fid]
        got = self._fetch([fid]) if self.stored(fid) else {}
        if fid not in got:
            raise KeyError(fid)
        return got[fid]

    def get_many(self, fids: Iterable[int]) -> dict[int, T]:
        """The rows of those ids that exist (one store query, not one per row)."""
        out: dict[int, T] = {}
        rest: list[int] = []
        for fid in fids:
            if fid in self.added:
                out[fid] = self.added[fid]
            else:
                rest.append(fid)
        alive = self.stored_mask(np.array(rest, dtype=np.int64)).tolist()
        stored = [f for f, ok in zip(rest, alive, strict=True) if ok]
        if stored:
            out.update(self._fetch(stored))
        return out

    def __setitem__(self, fid: int, value: T) -> None:
        if self.stored(fid):
            raise KeyError(f"id {fid} is already stored")
        self.added[fid] = value

    def __delitem__(self, fid: int) -> None:
        if fid in self.added:
            del self.added[fid]
        elif self.stored(fid):
            self.removed.add(fid)
        else:
            raise KeyError(fid)

    def __contains__(self, fid: object) -> bool:
        return fid in self.added or (isinstance(fid, int | np.integer) and self.stored(int(fid)))

    def _stored_ids(self) -> list[int]:
        ids = self._stored.tolist()
        return [f for f in ids if f not in self.removed] if self.removed else ids

    def __iter__(self) -> Iterator[int]:
        yield from self._stored_ids()
        yield from list(self.added)

    def __len__(self) -> int:
        return len(self._stored) - len(self.removed) + len(self.added)

    def items(self, batch: int = 2000) -> Iterator[tuple[int, T]]:  # type: ignore[override]
        """Every row, read from the store in batches (slow on a large index: not for queries)."""
        ids = self._stored_ids()
        for i in range(0, len(ids), batch):
            got = self._fetch(ids[i : i + batch])
            yield from ((fid, got[fid]) for fid in ids[i : i + batch])
        yield from list(self.added.items())

    def values(self) -> Iterator[T]:  # type: ignore[override]
        return (v for _, v in self.items())


def _flat(dimension: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


IVF_FROM = 50_000
"""From this many vectors, search scans a few inverted lists (IVF), not every vector: at
100k passages the 357k sentence vectors took 71 ms a question to scan exactly on 2 cores.
Smaller indexes stay exact. Recall@10 against exact search is measured by ``make bench``."""
IVF_PROBE = 1 / 16
"""Share of the inverted lists a search visits (at least 16 lists)."""


def sized(vectors: faiss.Index) -> faiss.Index:
    """The vector index fit for its size: exact below ``IVF_FROM``, else an IVF trained on
    (a sample of) its own vectors. IVF keeps ids, reconstruct and remove (hash-table map)."""
    if not _wants_ivf(vectors):
        return vectors
    n, d = vectors.ntotal, vectors.d
    ids = faiss.vector_to_array(vectors.id_map).astype(np.int64)
    x = vectors.index.reconstruct_n(0, n)
    nlist = int(4 * np.sqrt(n))
    sample = np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)
    logger.info("training an IVF index of %d lists on %d of %d vectors", nlist, len(sample), n)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = 0
    ivf.train(np.ascontiguousarray(x[np.sort(sample)]))
    ivf.add_with_ids(x, ids)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.nprobe = max(16, int(nlist * IVF_PROBE))
    return ivf


def vector_ids(vectors: faiss.Index) -> np.ndarray:
    """Every id a vector index (flat or IVF) holds, sorted."""
    if isinstance(vectors, faiss.IndexIVF):
        lists = vectors.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(vectors.nlist)
            if lists.list_size(i)
        ]
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    else:
        ids = faiss.vector_to_array(vectors.id_map)
    return np.sort(ids.astype(np.int64))


def _wants_ivf(vectors: faiss.Index) -> bool:
    return not isinstance(vectors, faiss.IndexIVF) and vectors.ntotal >= IVF_FROM


def search_params(vectors: faiss.Index, selector: faiss.IDSelector | None = None) -> Any:
    """Search parameters restricting a search to ``selector`` (None: everything)."""
    if isinstance(vectors, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=vectors.nprobe) if selector else None
    return faiss.SearchParameters(sel=selector) if selector else None


class Index:
    """Releases, their passages and sentences, and the vectors of both.

    ``snapshot`` is the folder it was loaded from or last saved to (None before).

    Built with ``Index.build`` (or grown with ``add``), persisted with ``save`` and
    read back with ``Index.load``; searching lives in ``qa.retrieval``.
    """

    snapshot: Path | None = None

    def __init__(
        self,
        *,
        model: str,
        dimension: int,
        chunker: ChunkerSettings,
        releases: dict[str, Release] | None = None,
        passages: dict[int, Passage] | None = None,
        sentences: dict[int, Sentence] | None = None,
        passage_vectors: faiss.IndexIDMap2 | None = None,
        sentence_vectors: faiss.IndexIDMap2 | None = None,
        sources: Sequence[str] = (),
        annotations: dict[int, str] | None = None,
        store: Store | None = None,
    ):
        self.model = model
        self.dimension = dimension
        self.chunker = chunker
        self.releases = releases if releases is not None else {}
        self.passage_vectors = passage_vectors if passage_vectors is not None else _flat(dimension)
        self.sentence_vectors = sentence_vectors if sentence_vectors is not None else _flat(dimension)
        self.sources = tuple(sources)
        self._attach(store)
        self._lock = threading.RLock()
        self._lexical: BM25 | None = None
        self._stems: tuple[Counter[str], int] | None = None
        self.outdated = False
        """Loaded from a snapshot written before BM25 was saved with it: saving it again
        spares every later start building BM25 (about 30 s at 100k passages)."""
        self.passages.added.update(passages or {})
        self.sentences.added.update(sentences or {})
        self.annotations.added.update(annotations or {})
        self.version = 0
        """Bumped on every change, so caches built from the index (BM25) know to rebuild."""

    def _attach(self, store: Store | None) -> None:
        """Read passages, sentences and annotations from ``store`` (None: none stored)."""
        self._store = store
        self._stored_releases = dict(self.releases) if store is not None else {}
        none = np.zeros(0, dtype=np.int64)
        # the vectors hold exactly the stored rows' ids (counts checked at load): reading
        # them from FAISS takes milliseconds, from SQLite 1.5 s at 100k passages
        pids = vector_ids(self.passage_vectors) if store is not None else none
        sids = vector_ids(self.sentence_vectors) if store is not None else none
        annotated = sids if self.chunker.annotator is not None else none
        self.passages: Table[Passage] = Table(self._fetch_passages, pids)
        self.sentences: Table[Sentence] = Table(self._fetch_sentences, sids)
        self.annotations: Table[str] = Table(store.annotations if store is not None else dict, annotated)
        """Sentence annotations as JSON text by sentence vector id (parsed on demand)."""

    def _fetch_sentences(self, fids: Sequence[int]) -> dict[int, Sentence]:
        assert self._store is not None
        return {
            fid: Sentence(rid, a, b, self.releases[rid].text[a:b])
            for fid, (rid, a, b) in self._store.sentence_rows(fids).items()
        }

    def _fetch_passages(self, fids: Sequence[int]) -> dict[int, Passage]:
        assert self._store is not None
        rows = self._store.passage_rows(fids)
        sents: dict[str, list[Sentence]] = {}
        for rid in {r[1] for r in rows.values()}:
            text = self.releases[rid].text
            sents[rid] = [Sentence(rid, a, b, text[a:b]) for _, a, b in self._store.sentences_of(rid)]
        out: dict[int, Passage] = {}
        for fid, (pid, rid, a, b) in rows.items():
            inner = tuple(x for x in sents[rid] if x.start >= a and x.end <= b)
            out[fid] = Passage(pid, rid, a, b, self.releases[rid].text[a:b], inner)
        return out

    def ids_of_releases(self, table: str, release_ids: Iterable[str]) -> list[int]:
        """Vector ids of the passages (``table="passages"``) or sentences of some releases."""
        rids = set(release_ids)
        rows: Table[Any] = self.passages if table == "passages" else self.sentences
        out = [fid for fid, x in list(rows.added.items()) if x.release_id in rids]
        if self._store is not None:
            found = np.array(self._store.fids_of_releases(table, sorted(rids)), dtype=np.int64)
            out += found[rows.stored_mask(found)].tolist()
        return out

    def sentences_of(self, release_id: str, start: int = 0, end: int | None = None) -> list[Sentence]:
        """The sentences of a release lying within ``start:end``, in text order."""
        hi = len(self.releases[release_id].text) if end is None else end
        fids = self.ids_of_releases("sentences", [release_id])
        found = self.sentences.get_many(fids).values()
        return sorted((s for s in found if s.start >= start and s.end <= hi), key=lambda s: s.start)

    def passages_holding(self, sentence_ids: Sequence[int]) -> dict[int, list[int]]:
        """Sentence vector id -> ids of the passages holding it (two, where passages
        overlap), the earliest passage first."""
        ids = np.asarray(sentence_ids, dtype=np.int64)
        in_store = self.sentences.stored_mask(ids)
        held: dict[int, list[tuple[int, int]]] = {}
        if self._store is not None and in_store.any():
            rows = self._store.passages_holding(ids[in_store].tolist())
            if rows:
                pfids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
                alive = self.passages.stored_mask(pfids).tolist()
                for (sid, pfid, start), ok in zip(rows, alive, strict=True):
                    if ok:
                        held.setdefault(sid, []).append((start, pfid))
        # Sentences and passages added since the snapshot was saved live in memory only.
        fresh = [sid for sid in ids[~in_store].tolist() if sid in self.sentences.added]
        if fresh:
            sents = self.sentences.get_many(fresh)
            by_release: dict[str, list[tuple[int, int, int]]] = {}
            for fid, p in self.passages.added.items():
                by_release.setdefault(p.release_id, []).append((p.start, fid, p.end))
            for sid, s in sents.items():
                for a, fid, b in by_release.get(s.release_id, ()):
                    if a <= s.start and s.end <= b:
                        held.setdefault(sid, []).append((a, fid))
        return {sid: [fid for _, fid in sorted(pairs)] for sid, pairs in held.items()}

    def lexical(self) -> BM25:
        """The BM25 index over passages (loaded with the index, else built once)."""
        with self._lock:
            if self._lexical is None:
                fids: list[int] = []
                docs: list[str] = []
                for fid, p in self.passages.items():
                    fids.append(fid)
                    docs.append(lexical_text(self.releases[p.release_id], p))
                self._lexical = BM25(docs, fids)
            return self._lexical

    def stem_counts(self) -> tuple[Counter[str], int]:
        """In how many passages each content stem occurs, and the number of passages
        (the feature answerer's IDF); kept up to date as releases come and go."""
        with self._lock:
            if self._stems is None:
                self._stems = (Counter(), 0)
                self._count_stems(self.passages.values(), +1)
            assert self._stems is not None
            return self._stems

    def _count_stems(self, passages: Iterable[Passage], sign: int) -> None:
        if self._stems is None:
            return
        df, n = self._stems
        for p in passages:
            for w in set(content_stems(p.text)):
                df[w] += sign
            n += sign
        self._stems = (df, n)

    # ------------------------------------------------------------ building

    @classmethod
    def empty(cls, embedder: Embedder, chunker: ChunkerSettings | None = None) -> Index:
        return cls(
            model=embedder.name,
            dimension=embedder.dimension,
            chunker=chunker if chunker is not None else ChunkerSettings(),
        )

    @classmethod
    def build(
        cls,
        releases: Sequence[Release],
        embedder: Embedder,
        chunker: ChunkerSettings | None = None,
        *,
        sources: Sequence[str] = (),
        progress: bool = False,
    ) -> Index:
        index = cls.empty(embedder, chunker)
        index.sources = tuple(sources)
        index.add(releases, embedder, progress=progress)
        return index

    def check_embedder(self, embedder: Embedder) -> None:
        if embedder.name != self.model or embedder.dimension != self.dimension:
            raise QAIndexError(
                f"index was built with model {self.model!r} (dimension {self.dimension}) but the "
                f"embedder is {embedder.name!r} (dimension {embedder.dimension}); rebuild the index"
            )

    def add(
        self, releases: Sequence[Release], embedder: Embedder, *, progress: bool = False
    ) -> list[Release]:
        """Chunk, embed and add releases not yet indexed; returns those added."""
        self.check_embedder(embedder)
        new: dict[str, Release] = {}
        for r in releases:
            if r.id not in self.releases and r.id not in new:
                new[r.id] = r
        if not new:
            return []
        chunker = Chunker(self.chunker, embedder.count_tokens)
        passages: list[Passage] = []
        sentences: list[Sentence] = []
        items: Iterable[Release] = new.values()
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(list(items), desc="chunking", unit="release")
        for r in items:
            sents = chunker.sentences(r)
            sentences.extend(sents)
            passages.extend(chunker.chunk(r, sents))
        texts = [passage_embedding_text(new[p.release_id], p) for p in passages]
        if progress:
            logger.info("embedding %d passages and %d sentences", len(passages), len(sentences))
        pvec = embedder.encode(texts, progress=progress)
        svec = embedder.encode([s.text for s in sentences], progress=progress)
        pids = np.array([vector_id(p.id) for p in passages], dtype=np.int64)
        sids = np.array([vector_id(sentence_key(s)) for s in sentences], dtype=np.int64)
        self._check_ids(pids, self.passages, "passage")
        self._check_ids(sids, self.sentences, "sentence")
        self.releases.update(new)
        if len(pids):
            self.passage_vectors.add_with_ids(pvec, pids)
        if len(sids):
            self.sentence_vectors.add_with_ids(svec, sids)
        for fid, p in zip(pids.tolist(), passages, strict=True):
            self.passages[fid] = p
        for fid, s in zip(sids.tolist(), sentences, strict=True):
            self.sentences[fid] = s
        if self.chunker.annotator is not None and sentences:
            anns = annotate_batch([s.text for s in sentences])
            for fid, a in zip(sids.tolist(), anns, strict=True):
                self.annotations[fid] = a.to_json()
        with self._lock:
            if self._lexical is not None:
                self._lexical.add(pids.tolist(), [lexical_text(new[p.release_id], p) for p in passages])
            self._count_stems(passages, +1)
        self.version += 1
        return list(new.values())

    @staticmethod
    def _check_ids(ids: np.ndarray, existing: dict[int, Any], what: str) -> None:
        if len(set(ids.tolist())) != len(ids) or any(int(i) in existing for i in ids):
            raise QAIndexError(f"{what} id collision while adding; this is a bug, please report it")

    def remove(self, release_ids: Iterable[str]) -> int:
        """Drop releases with their passages, sentences and vectors; returns how many."""
        gone = {rid for rid in release_ids if rid in self.releases}
        if not gone:
            return 0
        pids = self.ids_of_releases("passages", gone)
        sids = self.ids_of_releases("sentences", gone)
        with self._lock:
            if self._lexical is not None:
                self._lexical.remove(pids)
            if self._stems is not None:
                self._count_stems(list(self.passages.get_many(pids).values()), -1)
        self.passage_vectors.remove_ids(np.array(pids, dtype=np.int64))
        self.sentence_vectors.remove_ids(np.array(sids, dtype=np.int64))
        for fid in pids:
            del self.passages[fid]
        for fid in sids:
            del self.sentences[fid]
            self.annotations.pop(fid, None)
        for rid in gone:
            del self.releases[rid]
        self.version += 1
        return len(gone)

    def sync(
        self,
        releases: Sequence[Release],
        embedder: Embedder,
        *,
        progress: bool = False,
        keep_paths: Iterable[str] = (),
    ) -> tuple[int, int]:
        """Make the index hold exactly ``releases``: embed only new ones, drop missing ones.

        A release whose text is indexed but whose title, date, source, url or file name
        changed is re-added, so citations never show stale metadata. Releases read from
        ``keep_paths`` (files that exist but could not be read this time) are kept as
        indexed: a file damaged since the last run costs nothing.
        """
        keep = {r.id for r in releases if self.releases.get(r.id, r) == r}
        kept = tuple(keep_paths)
        for rid, r in self.releases.items():
            if rid not in keep and any(r.path == k or r.path.startswith(f"{k}#") for k in kept):
                logger.warning("%s could not be read; keeping its indexed version", r.path)
                keep.add(rid)
        removed = self.remove([rid for rid in self.releases if rid not in keep])
        added = self.add(releases, embedder, progress=progress)
        return len(added), removed

    # ------------------------------------------------------------ reading

    @property
    def fingerprint(self) -> str:
        return corpus_fingerprint(self.releases)

    def sentence_id(self, s: Sentence) -> int:
        return vector_id(sentence_key(s))

    def annotation(self, s: Sentence) -> Annotation:
        """Tokens and short-answer candidates of a sentence (empty without an annotator)."""
        return self.annotations_of([s])[0]

    def annotations_of(self, sentences: Sequence[Sentence]) -> list[Annotation]:
        ids = [self.sentence_id(s) for s in sentences]
        found = self.annotations.get_many(ids)
        return [_parse_annotation(found[i]) if i in found else EMPTY for i in ids]

    def sentence_vectors_of(self, sentences: Sequence[Sentence]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = np.array([self.sentence_id(s) for s in sentences], dtype=np.int64)
        return self.sentence_vectors.reconstruct_batch(ids)

    def manifest(self, files: Sequence[tuple[str, str]] = ()) -> Manifest:
        return Manifest(
            model=self.model,
            dimension=self.dimension,
            chunker=self.chunker.to_dict(),
            fingerprint=self.fingerprint,
            releases=len(self.releases),
            passages=len(self.passages),
            sentences=len(self.sentences),
            sources=self.sources,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            files=tuple(sorted(files)),
        )

    def is_stale(self, path: str | os.PathLike[str]) -> bool:
        """True when another snapshot has been swapped in at ``path`` since this index was
        loaded or saved: a reader (the chat) can then load the new one and switch."""
        try:
            return resolve_snapshot(Path(path)) != self.snapshot
        except QAIndexError:
            return False

    # ------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str], *, locked: bool = False) -> Path:
        """Write a new snapshot and swap it in atomically; returns the snapshot folder.

        ``locked=True`` means the caller already holds ``writer_lock(path)``.
        """
        root = Path(path)
        (root / "snapshots").mkdir(parents=True, exist_ok=True)
        with contextlib.nullcontext() if locked else writer_lock(root):
            snap = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root / "snapshots"))
            snap.chmod(0o755)  # mkdtemp makes it private; readers may run as another user
            try:
                self.passage_vectors = sized(self.passage_vectors)
                self.sentence_vectors = sized(self.sentence_vectors)
                faiss.write_index(self.passage_vectors, str(snap / "passages.faiss"))
                faiss.write_index(self.sentence_vectors, str(snap / "sentences.faiss"))
                self._write_store(snap / "store.sqlite")
                self._write_lexical(snap)
                sums = [(f.name, _sha256(f)) for f in sorted(snap.iterdir())]
                (snap / "manifest.json").write_text(self.manifest(sums).to_json(), encoding="utf-8")
                _remember_verified(snap, sums, private=True)
                for f in snap.iterdir():
                    _fsync(f)
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
                final = root / "snapshots" / stamp
                os.rename(snap, final)
                _fsync(root / "snapshots")
            except BaseException:
                shutil.rmtree(snap, ignore_errors=True)
                raise
            link_tmp = root / f".current-{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                link_tmp.unlink()
            os.symlink(Path("snapshots") / stamp, link_tmp)
            os.replace(link_tmp, root / "current")
            _fsync(root)
            _clean_stale(root)
        self.snapshot = final.resolve()
        self._attach(Store(self.snapshot / "store.sqlite"))
        self.outdated = False
        logger.info("saved index to %s", final)
        return final

    def _write_lexical(self, snap: Path) -> None:
        with self._lock:
            if self._lexical is not None and self._lexical.stale > REBUILD_LEXICAL:
                logger.info("rebuilding BM25 (%.0f%% changed since built)", 100 * self._lexical.stale)
                self._lexical = None
            self.lexical().save(snap)
            df, n = self.stem_counts()
            stems = {"passages": n, "df": {w: c for w, c in sorted(df.items()) if c > 0}}
            (snap / STEMS).write_text(json.dumps(stems), encoding="utf-8")

    def _read_lexical(self, snap: Path) -> None:
        """BM25 and stem counts saved with the snapshot (older snapshots build them on use)."""
        self.outdated = not (BM25.saved_in(snap) and (snap / STEMS).is_file()) or any(
            _wants_ivf(v) for v in (self.passage_vectors, self.sentence_vectors)
        )
        if BM25.saved_in(snap):
            lex, added, removed = BM25.load(snap)
            lex.remove(removed)
            found = self.passages.get_many(added)
            lex.add(list(found), [lexical_text(self.releases[p.release_id], p) for p in found.values()])
            self._lexical = lex
        if (snap / STEMS).is_file():
            data = json.loads((snap / STEMS).read_text(encoding="utf-8"))
            self._stems = (Counter({str(w): int(c) for w, c in data["df"].items()}), int(data["passages"]))

    def _write_store(self, path: Path) -> None:
        if self._store is None:
            write_store(
                path,
                self.releases.values(),
                self.passages.added.items(),
                self.sentences.added.items(),
                self.annotations.added.items(),
            )
            return
        self._store.copy_to(path)
        update_store(
            path,
            gone={
                "releases": sorted(
                    rid for rid, r in self._stored_releases.items() if self.releases.get(rid) != r
                ),
                "passages": sorted(self.passages.removed),
                "sentences": sorted(self.sentences.removed),
                "annotations": sorted(self.annotations.removed),
            },
            releases=[r for rid, r in self.releases.items() if self._stored_releases.get(rid) != r],
            passages=self.passages.added.items(),
            sentences=self.sentences.added.items(),
            annotations=self.annotations.added.items(),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedder: Embedder | None = None) -> Index:
        """Load an index; refuses (with the reason) a missing, damaged or mismatched one.

        A writer may swap in a new snapshot and delete this one while it is read; the
        load then starts over from the new one.
        """
        root = Path(path)
        for _ in range(3):
            snap = resolve_snapshot(root)
            try:
                index = cls._load_snapshot(root, snap, embedder)
            except QAIndexError:
                if _is_current(root, snap):
                    raise
                logger.info("%s was replaced while loading; loading the new snapshot", snap)
                continue
            index.snapshot = snap
            return index
        raise QAIndexError(f"index at {root} kept changing while loading; try again")

    @classmethod
    def _load_snapshot(cls, root: Path, snap: Path, embedder: Embedder | None) -> Index:
        manifest = _read_manifest(root, snap)
        known = _verified(snap)
        checked: list[tuple[str, str]] = []
        for name, digest in manifest.files:
            try:
                if known.get(name) == _stat_key(snap / name, digest):
                    continue
                ok = _sha256(snap / name) == digest
                checked.append((name, digest))
            except OSError as e:
                raise QAIndexError(
                    f"index at {root} is damaged ({name}: {e.strerror}); {rebuild_hint(root)}"
                ) from None
            if not ok:
                raise QAIndexError(
                    f"index at {root} is damaged ({name} does not match its checksum); {rebuild_hint(root)}"
                )
        if checked:
            _remember_verified(snap, manifest.files)
        if embedder is not None and (embedder.name, embedder.dimension) != (
            manifest.model,
            manifest.dimension,
        ):
            raise QAIndexError(
                f"index at {root} was built with model {manifest.model!r} (dimension "
                f"{manifest.dimension}), not {embedder.name!r} (dimension {embedder.dimension}); "
                f"rebuild it with: release-qa index <folders> --index {root}"
            )
        try:
            pvec = faiss.read_index(str(snap / "passages.faiss"))
            svec = faiss.read_index(str(snap / "sentences.faiss"))
            store = Store(snap / "store.sqlite")
            releases = store.releases()
            n_passages, n_sentences = store.count("passages"), store.count("sentences")
        except Exception as e:
            raise QAIndexError(
                f"index at {root} is damaged ({type(e).__name__}: {e}); "
                f"rebuild it with: release-qa index <folders> --index {root}"
            ) from None
        counts = (len(releases), pvec.ntotal, n_passages, svec.ntotal, n_sentences)
        want = (
            manifest.releases,
            manifest.passages,
            manifest.passages,
            manifest.sentences,
            manifest.sentences,
        )
        if counts != want or pvec.d != manifest.dimension or svec.d != manifest.dimension:
            raise QAIndexError(
                f"index at {root} does not match its manifest (counts {counts}, expected {want}); "
                f"rebuild it with: release-qa index <folders> --index {root}"
            )
        try:
            chunker = ChunkerSettings(
                max_tokens=int(manifest.chunker["max_tokens"]),
                overlap_sentences=int(manifest.chunker["overlap_sentences"]),
                annotator=manifest.chunker.get("annotator"),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise QAIndexError(
                f"index at {root} has bad chunker settings in its manifest ({e}); {rebuild_hint(root)}"
            ) from None
        index = cls(
            model=manifest.model,
            dimension=manifest.dimension,
            chunker=chunker,
            releases=releases,
            passage_vectors=pvec,
            sentence_vectors=svec,
            sources=manifest.sources,
            store=store,
        )
        try:
            index._read_lexical(snap)
        except Exception as e:
            raise QAIndexError(
                f"index at {root} is damaged (BM25: {type(e).__name__}: {e}); {rebuild_hint(root)}"
            ) from None
        return index


@functools.lru_cache(maxsize=8192)
def _parse_annotation(data: str) -> Annotation:
    """Parsed annotations of recently read sentences: answering reads the same ones often."""
    return Annotation.from_json(data)


def resolve_snapshot(root: Path) -> Path:
    current = root / "current"
    if not current.exists():
        if root.exists():
            raise QAIndexError(
                f"no index at {root} (no 'current' snapshot); build one with: "
                f"release-qa index <folders> --index {root}"
            )
        raise QAIndexError(f"no index at {root}; build one with: release-qa index <folders> --index {root}")
    return current.resolve()


def read_manifest(root: Path) -> Manifest:
    return _read_manifest(root, resolve_snapshot(root))


def _read_manifest(root: Path, snap: Path) -> Manifest:
    mpath = snap / "manifest.json"
    try:
        text = mpath.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8"
        raise QAIndexError(
            f"index at {root} has no readable manifest ({reason}); {rebuild_hint(root)}"
        ) from None
    return Manifest.from_json(text, mpath, root)


def _is_current(root: Path, snap: Path) -> bool:
    try:
        return resolve_snapshot(root) == snap
    except QAIndexError:
        return True


def _clean_stale(root: Path) -> None:
    """Remove what earlier writers left: snapshots other than the current one (including
    '.tmp-*' ones a killed writer never finished) and '.current-*' links never swapped in.
    Called only under the writer lock."""
    try:
        live = Path(os.readlink(root / "current")).name
    except OSError:
        live = None
    snapshots = root / "snapshots"
    for old in snapshots.iterdir() if snapshots.is_dir() else ():
        if old.name != live:
            logger.info("removing stale snapshot %s", old)
            shutil.rmtree(old, ignore_errors=True)
    for link in root.glob(".current-*"):
        with contextlib.suppress(FileNotFoundError):
            link.unlink()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


VERIFIED = "verified.json"
"""Size, mtime and digest of each file when its SHA-256 was last checked: like git's
index, a file whose size and mtime are unchanged is not hashed again on load (hashing
1.7 GB took 5 s of a 100k-passage index's cold start). Not listed in the manifest."""


def _stat_key(path: Path, digest: str) -> list[object]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, digest]


def _verified(snap: Path) -> dict[str, list[object]]:
    try:
        data = json.loads((snap / VERIFIED).read_text(encoding="utf-8"))
        return {str(k): list(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _remember_verified(snap: Path, sums: Iterable[tuple[str, str]], *, private: bool = False) -> None:
    """Best effort: a reader without write access to the snapshot just hashes again.

    ``private``: the snapshot is still being written (no reader sees it), so no temp file.
    """
    try:
        data = json.dumps({name: _stat_key(snap / name, digest) for name, digest in sums})
        if private:
            (snap / VERIFIED).write_text(data, encoding="utf-8")
            return
        tmp = snap / f".{VERIFIED}.{os.getpid()}"
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, snap / VERIFIED)
    except OSError as e:
        logger.debug("could not record verified checksums in %s: %s", snap, e)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder; a second one is refused, not queued.

    The lock dies with its process, so a killed writer never blocks the next one, and
    the next one first removes what the killed one left (see ``_clean_stale``).
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise QAIndexError(
                    f"another process (pid {holder}) is writing the index at {root}; "
                    "wait for it to finish and try again"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _clean_stale(root)
        yield
    finally:
        os.close(fd)
