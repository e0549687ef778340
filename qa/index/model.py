"""The index: FAISS vectors for passages and sentences, a SQLite store, a manifest.

On disk an index is a folder::

    <path>/current -> snapshots/<stamp>     (a symlink, swapped atomically)
    <path>/snapshots/<stamp>/manifest.json
                            /passages.faiss  (IndexIDMap2 over IndexFlatIP)
                            /sentences.faiss
                            /store.sqlite    (releases, passage and sentence offsets, annotations)
                            /bm25.*          (bm25s arrays, .npy and JSON; see qa.index.lexical)
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
import functools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.embedding import Embedder
from qa.index.lexical import BM25
from qa.index.manifest import Manifest, QAIndexError, StaleIndexError, corpus_fingerprint, rebuild_hint
from qa.index.prepare import PreparedRelease, Preparer, prepare_locally, prepare_releases
from qa.index.snapshot import (
    clean_stale,
    fsync_path,
    is_current,
    read_snapshot_manifest,
    remember_verified,
    resolve_snapshot,
    sha256_file,
    stat_key,
    verified_sums,
    writer_lock,
)
from qa.index.store import Store, update_store, write_store
from qa.index.table import Table
from qa.index.vectors import (
    PQ_MIN,
    flat_index,
    sentence_key,
    sized,
    to_ivfpq,
    vector_id,
    vector_ids,
    wants_ivf,
    wants_pq,
)
from qa.ingest.annotate import EMPTY, Annotation, annotate_cached
from qa.ingest.chunking import ChunkerSettings
from qa.text import content_stems, lexical_text
from qa.types import Passage, Release, Sentence

logger = logging.getLogger(__name__)


SYNC_BATCH = 64
"""Releases a checkpointed sync adds between two looks at the clock."""
SAVE_SHARE_INVERSE = 20
"""A checkpointed sync waits at least this many times its last save's duration before the next
save (a save of the whole archive's index took ~25 s: every 8 minutes, not every 5)."""
REBUILD_LEXICAL = 0.05


"""Rebuild BM25 at save once this share of passages changed since it was built."""


STEMS = "stems.json"


class Index:
    """Releases, their passages and sentences, and the vectors of both.

    ``snapshot`` is the folder it was loaded from or last saved to (None before).

    Built with ``Index.build`` (or grown with ``add``), persisted with ``save`` and
    read back with ``Index.load``; searching lives in ``qa.retrieval.retriever``.
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
        compress: bool = False,
    ):
        self.model = model
        self.dimension = dimension
        self.chunker = chunker
        self.releases = releases if releases is not None else {}
        self.passage_vectors = passage_vectors if passage_vectors is not None else flat_index(dimension)
        self.sentence_vectors = sentence_vectors if sentence_vectors is not None else flat_index(dimension)
        self.sources = tuple(sources)
        self.compress = compress or any(
            isinstance(v, faiss.IndexIVFPQ) for v in (self.passage_vectors, self.sentence_vectors)
        )
        """Vectors kept as IVF-PQ codes (``to_ivfpq``) from ``PQ_MIN`` of them on: for archives
        whose float vectors do not fit in RAM; a build then holds at most ``PQ_TRAIN`` floats."""
        self.annotate = False
        """Annotate new sentences while building (spaCy: about half the encoder's time) instead of
        when an answerer first reads them (``annotations_of``); either gives the same annotations."""
        self.recall: dict[str, float] = {}
        """Recall@10 against exact search of each table compressed so far ("passages", ...)."""
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
        self.annotations: Table[str] = Table(
            store.annotations if store is not None else dict, annotated, sparse=True
        )
        """Sentence annotations stored at build, as JSON text by sentence vector id (parsed on
        demand). Its stored ids are those that may have one: a build without ``annotate`` stores
        none, and ``annotations_of`` annotates what is missing."""

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
        self,
        releases: Sequence[Release],
        embedder: Embedder,
        *,
        progress: bool = False,
        prepare: Preparer | None = None,
    ) -> list[Release]:
        """Chunk, embed and add releases not yet indexed; returns those added.

        ``prepare`` does the per-release work (default: here, with ``embedder``; a Ray build
        passes its workers')."""
        self.check_embedder(embedder)
        new: dict[str, Release] = {}
        for r in releases:
            if r.id not in self.releases and r.id not in new:
                new[r.id] = r
        if not new:
            return []
        if prepare is None:
            prepared = prepare_releases(
                list(new.values()), embedder, self.chunker, annotate=self.annotate, progress=progress
            )
            return self.add_prepared(prepared)
        return self.add_prepared(list(prepare(list(new.values()))))

    def add_prepared(self, prepared: Sequence[PreparedRelease]) -> list[Release]:
        """Insert prepared releases, in order, skipping any already indexed; returns those added."""
        items: list[PreparedRelease] = []
        seen: set[str] = set()
        for x in prepared:
            if x.release.id not in self.releases and x.release.id not in seen:
                seen.add(x.release.id)
                items.append(x)
        if not items:
            return []
        passages = [p for x in items for p in x.passages]
        sentences = [s for x in items for s in x.sentences]
        empty = np.zeros((0, self.dimension), dtype=np.float32)
        pvec = np.concatenate([empty, *(x.passage_vectors for x in items)]).astype(np.float32, copy=False)
        svec = np.concatenate([empty, *(x.sentence_vectors for x in items)]).astype(np.float32, copy=False)
        if pvec.shape != (len(passages), self.dimension) or svec.shape != (len(sentences), self.dimension):
            raise QAIndexError(
                f"prepared vectors {pvec.shape} and {svec.shape} do not match {len(passages)} passages and "
                f"{len(sentences)} sentences of dimension {self.dimension}"
            )
        pids = np.array([vector_id(p.id) for p in passages], dtype=np.int64)
        sids = np.array([vector_id(sentence_key(s)) for s in sentences], dtype=np.int64)
        self._check_ids(pids, self.passages, "passage")
        self._check_ids(sids, self.sentences, "sentence")
        for x in items:
            self.releases[x.release.id] = x.release
        if len(pids):
            self.passage_vectors.add_with_ids(np.ascontiguousarray(pvec), pids)
        if len(sids):
            self.sentence_vectors.add_with_ids(np.ascontiguousarray(svec), sids)
        for fid, p in zip(pids.tolist(), passages, strict=True):
            self.passages[fid] = p
        for fid, s in zip(sids.tolist(), sentences, strict=True):
            self.sentences[fid] = s
        if self.compress:  # a long compressed build: floats in RAM only until the quantizer is trained
            self._compress(wants_pq)
        if self.chunker.annotator is not None:
            fids = iter(sids.tolist())
            for x in items:
                if x.annotations is not None and len(x.annotations) != len(x.sentences):
                    raise QAIndexError(f"{x.release.path}: prepared without one annotation per sentence")
                if x.annotations is None:  # annotated when first read
                    for _ in x.sentences:
                        next(fids)
                    continue
                for a in x.annotations:
                    self.annotations[next(fids)] = a
        with self._lock:
            if self._lexical is not None:
                self._lexical.add(
                    pids.tolist(), [lexical_text(self.releases[p.release_id], p) for p in passages]
                )
            self._count_stems(passages, +1)
        self.version += 1
        return [x.release for x in items]

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
        checkpoint: Callable[[], object] | None = None,
        checkpoint_seconds: float = 300.0,
        prepare: Preparer | None = None,
    ) -> tuple[int, int]:
        """Make the index hold exactly ``releases``: embed only new ones, drop missing ones.

        A release whose text is indexed but whose title, date, source, url or file name
        changed is re-added, so citations never show stale metadata. Releases read from
        ``keep_paths`` (files that exist but could not be read this time) are kept as
        indexed: a file damaged since the last run costs nothing. With ``checkpoint`` (a save), new
        releases are added ``SYNC_BATCH`` at a time and saved every ``checkpoint_seconds``.
        ``prepare`` does the per-release work of new releases (default: here, ``SYNC_BATCH`` at a
        time); whatever does it, the releases are inserted in the order of ``releases``.
        """
        keep = {r.id for r in releases if self.releases.get(r.id, r) == r}
        kept = tuple(keep_paths)
        for rid, r in self.releases.items():
            if rid not in keep and any(r.path == k or r.path.startswith(f"{k}#") for k in kept):
                logger.warning("%s could not be read; keeping its indexed version", r.path)
                keep.add(rid)
        removed = self.remove([rid for rid in self.releases if rid not in keep])
        new = [r for r in releases if r.id not in self.releases]
        if checkpoint is None:
            return len(self.add(new, embedder, progress=progress, prepare=prepare)), removed
        # a long build in batches, saved at least every ``checkpoint_seconds``: a killed build
        # resumes from its last save, embedding only what it had not
        self.check_embedder(embedder)
        here = prepare_locally(embedder, self.chunker, batch=SYNC_BATCH, annotate=self.annotate)
        stream = (prepare or here)(new)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(new), desc="indexing", unit="release")
        added, done, last = 0, 0, time.monotonic()
        interval = checkpoint_seconds
        part: list[PreparedRelease] = []
        for item in stream:
            part.append(item)
            if len(part) < SYNC_BATCH and done + len(part) < len(new):
                continue
            added += len(self.add_prepared(part))
            done += len(part)
            if bar is not None:
                bar.update(len(part))
            part = []
            if done < len(new) and time.monotonic() - last >= interval:
                t = time.monotonic()
                checkpoint()
                last = time.monotonic()
                # a save grows with the index (BM25 is rebuilt in it): keep saves to ~5% of the build
                interval = max(checkpoint_seconds, SAVE_SHARE_INVERSE * (last - t))
        if part:  # a preparer that yielded more than asked: inserted all the same
            added += len(self.add_prepared(part))
        if bar is not None:
            bar.close()
        return added, removed

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
        """Stored annotations, and for sentences the build did not annotate, the annotator's
        (run now on the few sentences an answerer reads, and cached by text)."""
        ids = [self.sentence_id(s) for s in sentences]
        found = self.annotations.get_many(ids)
        missing = [s.text for i, s in zip(ids, sentences, strict=True) if i not in found]
        if not missing or self.chunker.annotator is None:
            return [_parse_annotation(found[i]) if i in found else EMPTY for i in ids]
        fresh = iter(annotate_cached(missing))
        return [_parse_annotation(found[i]) if i in found else next(fresh) for i in ids]

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

        ``locked=True`` means the caller already holds ``writer_lock(path)``. A save over the
        folder this index was loaded from (or last saved to) is refused with ``StaleIndexError``
        when another writer swapped in a snapshot since: it would drop that writer's releases.
        """
        root = Path(path)
        (root / "snapshots").mkdir(parents=True, exist_ok=True)
        with contextlib.nullcontext() if locked else writer_lock(root):
            self._check_current(root)
            snap = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root / "snapshots"))
            snap.chmod(0o755)  # mkdtemp makes it private; readers may run as another user
            try:
                if self.compress:
                    self._compress(lambda v: v.ntotal >= PQ_MIN)
                self.passage_vectors = sized(self.passage_vectors)
                self.sentence_vectors = sized(self.sentence_vectors)
                faiss.write_index(self.passage_vectors, str(snap / "passages.faiss"))
                faiss.write_index(self.sentence_vectors, str(snap / "sentences.faiss"))
                self._write_store(snap / "store.sqlite")
                self._write_lexical(snap)
                sums = [(f.name, sha256_file(f)) for f in sorted(snap.iterdir())]
                (snap / "manifest.json").write_text(self.manifest(sums).to_json(), encoding="utf-8")
                remember_verified(snap, sums, private=True)
                for f in snap.iterdir():
                    fsync_path(f)
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
                final = root / "snapshots" / stamp
                os.rename(snap, final)
                fsync_path(root / "snapshots")
            except BaseException:
                shutil.rmtree(snap, ignore_errors=True)
                raise
            link_tmp = root / f".current-{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                link_tmp.unlink()
            os.symlink(Path("snapshots") / stamp, link_tmp)
            os.replace(link_tmp, root / "current")
            fsync_path(root)
            clean_stale(root)
        self.snapshot = final.resolve()
        self._attach(Store(self.snapshot / "store.sqlite"))
        self.outdated = False
        logger.info("saved index to %s", final)
        return final

    def _compress(self, due: Callable[[faiss.Index], bool]) -> None:
        """Turn the float vectors of each table that is ``due`` into IVF-PQ codes."""
        for table in ("passages", "sentences"):
            attr = f"{table[:-1]}_vectors"
            vectors = getattr(self, attr)
            if not isinstance(vectors, faiss.IndexIVFPQ) and due(vectors):
                codes, self.recall[table] = to_ivfpq(vectors)
                setattr(self, attr, codes)

    def _check_current(self, root: Path) -> None:
        if self.snapshot is None or self.snapshot.parent.parent != root.resolve():
            return  # a new index, or one saved to another folder: nothing of this folder to lose
        try:
            current = resolve_snapshot(root)
        except QAIndexError:
            return
        if current != self.snapshot:
            raise StaleIndexError(
                f"the index at {root} was changed by another writer (snapshot {current.name}) since this "
                f"copy was loaded ({self.snapshot.name}); load it again and repeat the change"
            )

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
            wants_ivf(v) for v in (self.passage_vectors, self.sentence_vectors)
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
                if is_current(root, snap):
                    raise
                logger.info("%s was replaced while loading; loading the new snapshot", snap)
                continue
            index.snapshot = snap
            return index
        raise QAIndexError(f"index at {root} kept changing while loading; try again")

    @classmethod
    def _load_snapshot(cls, root: Path, snap: Path, embedder: Embedder | None) -> Index:
        manifest = read_snapshot_manifest(root, snap)
        known = verified_sums(snap)
        checked: list[tuple[str, str]] = []
        for name, digest in manifest.files:
            try:
                if known.get(name) == stat_key(snap / name, digest):
                    continue
                ok = sha256_file(snap / name) == digest
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
            remember_verified(snap, manifest.files)
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
                # indexes built before the setting existed encoded every sentence on its own
                sentence_vectors=manifest.chunker.get("sentence_vectors", "separate"),
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
