"""The index: FAISS vectors for passages and sentences, a SQLite store, a manifest.

On disk an index is a folder::

    <path>/current -> snapshots/<stamp>     (a symlink, swapped atomically)
    <path>/snapshots/<stamp>/manifest.json
                            /passages.faiss  (IndexIDMap2 over IndexFlatIP)
                            /sentences.faiss
                            /store.sqlite
    <path>/.lock                            (held by a writer)

A save builds a new snapshot and then swaps the symlink, so a crash leaves the
previous index whole and readers never see half an index. The manifest holds a
SHA-256 of every other file, so a damaged file is refused on load rather than read
half-way. Only FAISS, SQLite and JSON are written: nothing is pickled.
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.annotate import EMPTY, Annotation, annotate_batch
from qa.chunking import Chunker, ChunkerSettings
from qa.embedding import Embedder
from qa.store import read_annotations, read_store, write_store
from qa.types import Passage, Release, Sentence

logger = logging.getLogger(__name__)

FORMAT = "release-qa-index"
FORMAT_VERSION = 2
TITLE_WORDS = 32


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


def _flat(dimension: int) -> faiss.IndexIDMap2:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


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
    ):
        self.model = model
        self.dimension = dimension
        self.chunker = chunker
        self.releases = releases if releases is not None else {}
        self.passages = passages if passages is not None else {}
        self.sentences = sentences if sentences is not None else {}
        self.passage_vectors = passage_vectors if passage_vectors is not None else _flat(dimension)
        self.sentence_vectors = sentence_vectors if sentence_vectors is not None else _flat(dimension)
        self.sources = tuple(sources)
        self.annotations = annotations if annotations is not None else {}
        """Sentence annotations as JSON text by sentence vector id (parsed on demand)."""
        self._sentence_ids = {sentence_key(s): fid for fid, s in self.sentences.items()}
        self.version = 0
        """Bumped on every change, so caches built from the index (BM25) know to rebuild."""

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
            self._sentence_ids[sentence_key(s)] = fid
        if self.chunker.annotator is not None and sentences:
            anns = annotate_batch([s.text for s in sentences])
            for fid, a in zip(sids.tolist(), anns, strict=True):
                self.annotations[fid] = a.to_json()
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
        pids = [fid for fid, p in self.passages.items() if p.release_id in gone]
        sids = [fid for fid, s in self.sentences.items() if s.release_id in gone]
        self.passage_vectors.remove_ids(np.array(pids, dtype=np.int64))
        self.sentence_vectors.remove_ids(np.array(sids, dtype=np.int64))
        for fid in pids:
            del self.passages[fid]
        for fid in sids:
            del self._sentence_ids[sentence_key(self.sentences.pop(fid))]
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
        return self._sentence_ids[sentence_key(s)]

    def annotation(self, s: Sentence) -> Annotation:
        """Tokens and short-answer candidates of a sentence (empty without an annotator)."""
        data = self.annotations.get(self.sentence_id(s))
        return _parse_annotation(data) if data is not None else EMPTY

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
                faiss.write_index(self.passage_vectors, str(snap / "passages.faiss"))
                faiss.write_index(self.sentence_vectors, str(snap / "sentences.faiss"))
                write_store(
                    snap / "store.sqlite",
                    self.releases.values(),
                    self.passages.items(),
                    self.sentences.items(),
                    self.annotations.items(),
                )
                sums = [(f.name, _sha256(f)) for f in sorted(snap.iterdir())]
                (snap / "manifest.json").write_text(self.manifest(sums).to_json(), encoding="utf-8")
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
        logger.info("saved index to %s", final)
        return final

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
        for name, digest in manifest.files:
            try:
                ok = _sha256(snap / name) == digest
            except OSError as e:
                raise QAIndexError(
                    f"index at {root} is damaged ({name}: {e.strerror}); {rebuild_hint(root)}"
                ) from None
            if not ok:
                raise QAIndexError(
                    f"index at {root} is damaged ({name} does not match its checksum); {rebuild_hint(root)}"
                )
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
            releases, passages, sentences = read_store(snap / "store.sqlite")
            annotations = read_annotations(snap / "store.sqlite")
        except Exception as e:
            raise QAIndexError(
                f"index at {root} is damaged ({type(e).__name__}: {e}); "
                f"rebuild it with: release-qa index <folders> --index {root}"
            ) from None
        counts = (len(releases), pvec.ntotal, len(passages), svec.ntotal, len(sentences))
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
        return cls(
            model=manifest.model,
            dimension=manifest.dimension,
            chunker=chunker,
            releases=releases,
            passages=passages,
            sentences=sentences,
            passage_vectors=pvec,
            sentence_vectors=svec,
            sources=manifest.sources,
            annotations=annotations,
        )


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
