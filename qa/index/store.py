"""SQLite store of releases, passages and sentences beside the vector index.

Only offsets are stored for passages and sentences: their text is sliced from the
release text when read, so it cannot drift from the release. ``Store`` reads rows on
demand, so a loaded index holds vectors and releases in memory, not every passage,
sentence and annotation (at 100k passages those cost about 1.2 GB and 9 s to load).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from qa.types import Passage, Release, Sentence

SCHEMA = """
CREATE TABLE releases (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, date TEXT,
    source TEXT, url TEXT, metadata TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE passages (
    fid INTEGER PRIMARY KEY, id TEXT NOT NULL, release_id TEXT NOT NULL REFERENCES releases(id),
    start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE TABLE sentences (
    fid INTEGER PRIMARY KEY, release_id TEXT NOT NULL REFERENCES releases(id),
    start INTEGER NOT NULL, "end" INTEGER NOT NULL
);
CREATE TABLE annotations (fid INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE INDEX passages_release ON passages(release_id);
CREATE INDEX sentences_release ON sentences(release_id);
"""


def write_store(
    path: Path,
    releases: Iterable[Release],
    passages: Iterable[tuple[int, Passage]],
    sentences: Iterable[tuple[int, Sentence]],
    annotations: Iterable[tuple[int, str]] = (),
) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(SCHEMA)
        _insert(con, releases, passages, sentences, annotations)
        con.commit()
    finally:
        con.close()


def update_store(
    path: Path,
    *,
    gone: dict[str, Iterable[int] | Iterable[str]],
    releases: Iterable[Release],
    passages: Iterable[tuple[int, Passage]],
    sentences: Iterable[tuple[int, Sentence]],
    annotations: Iterable[tuple[int, str]] = (),
) -> None:
    """Edit a copy of a store: delete the rows in ``gone`` (ids by table), insert the rest.

    Saving one added release then costs a file copy, not rewriting every row.
    """
    con = sqlite3.connect(path)
    try:
        for table, ids in gone.items():
            if table not in ("releases", "passages", "sentences", "annotations"):
                raise ValueError(f"no table {table!r}")
            key = "id" if table == "releases" else "fid"
            con.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(i,) for i in ids])
        _insert(con, releases, passages, sentences, annotations)
        con.commit()
    finally:
        con.close()


def _insert(
    con: sqlite3.Connection,
    releases: Iterable[Release],
    passages: Iterable[tuple[int, Passage]],
    sentences: Iterable[tuple[int, Sentence]],
    annotations: Iterable[tuple[int, str]],
) -> None:
    con.executemany(
        "INSERT INTO releases VALUES (?,?,?,?,?,?,?,?)",
        [
            (
                r.id,
                r.path,
                r.title,
                r.date.isoformat() if r.date else None,
                r.source,
                r.url,
                json.dumps(dict(r.metadata), sort_keys=True),
                r.text,
            )
            for r in releases
        ],
    )
    con.executemany(
        "INSERT INTO passages VALUES (?,?,?,?,?)",
        [(fid, p.id, p.release_id, p.start, p.end) for fid, p in passages],
    )
    con.executemany(
        "INSERT INTO sentences VALUES (?,?,?,?)",
        [(fid, s.release_id, s.start, s.end) for fid, s in sentences],
    )
    con.executemany("INSERT INTO annotations VALUES (?,?)", annotations)


_CHUNK = 900  # SQLite's default limit of bound parameters is 999


def _chunks(items: Sequence[int] | Sequence[str]) -> Iterator[Sequence[int] | Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class Store:
    """Read-only, thread-safe access to one snapshot's store.

    The connection is opened at once, so the file stays readable even when a writer
    replaces the snapshot and deletes it afterwards.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        # the URI is built by pathlib so '#', '?' or '%' in a folder name cannot cut it
        # short (sqlite would then open, or even create, another file)
        self._con = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        self._con.execute("SELECT count(*) FROM releases").fetchone()  # fail now if unreadable
        self._lock = threading.Lock()

    def _all(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    def releases(self) -> dict[str, Release]:
        out: dict[str, Release] = {}
        for rid, rpath, title, date, source, url, meta, text in self._all(
            "SELECT * FROM releases ORDER BY rowid"
        ):
            out[rid] = Release(
                id=rid,
                text=text,
                title=title,
                path=rpath,
                date=dt.date.fromisoformat(date) if date else None,
                source=source,
                url=url,
                metadata=tuple(sorted(json.loads(meta).items())),
            )
        return out

    def count(self, table: str) -> int:
        if table not in ("passages", "sentences", "annotations"):
            raise ValueError(f"no table {table!r}")
        return int(self._all(f"SELECT count(*) FROM {table}")[0][0])

    def fids_of_releases(self, table: str, release_ids: Sequence[str]) -> list[int]:
        if table not in ("passages", "sentences"):
            raise ValueError(f"no table {table!r}")
        out: list[int] = []
        for part in _chunks(list(release_ids)):
            marks = ",".join("?" * len(part))
            out += [r[0] for r in self._all(f"SELECT fid FROM {table} WHERE release_id IN ({marks})", part)]
        return out

    def sentence_rows(self, fids: Sequence[int]) -> dict[int, tuple[str, int, int]]:
        out: dict[int, tuple[str, int, int]] = {}
        for part in _chunks(list(fids)):
            marks = ",".join("?" * len(part))
            for fid, rid, start, end in self._all(
                f'SELECT fid, release_id, start, "end" FROM sentences WHERE fid IN ({marks})',
                part,
            ):
                out[fid] = (rid, start, end)
        return out

    def sentences_of(self, release_id: str) -> list[tuple[int, int, int]]:
        """(fid, start, end) of a release's sentences in text order."""
        return self._all(
            'SELECT fid, start, "end" FROM sentences WHERE release_id = ? ORDER BY start', (release_id,)
        )

    def passage_rows(self, fids: Sequence[int]) -> dict[int, tuple[str, str, int, int]]:
        out: dict[int, tuple[str, str, int, int]] = {}
        for part in _chunks(list(fids)):
            marks = ",".join("?" * len(part))
            for fid, pid, rid, start, end in self._all(
                f'SELECT fid, id, release_id, start, "end" FROM passages WHERE fid IN ({marks})',
                part,
            ):
                out[fid] = (pid, rid, start, end)
        return out

    def passages_holding(self, sentence_fids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(sentence fid, passage fid, passage start) for each passage that holds one of the
        sentences: one indexed join instead of reading the sentences, then their releases' passages."""
        out: list[tuple[int, int, int]] = []
        for part in _chunks(list(sentence_fids)):
            marks = ",".join("?" * len(part))
            out += self._all(
                "SELECT s.fid, p.fid, p.start FROM sentences s JOIN passages p ON p.release_id = s.release_id"
                f' WHERE s.fid IN ({marks}) AND p.start <= s.start AND s."end" <= p."end"',
                part,
            )
        return out

    def annotations(self, fids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for part in _chunks(list(fids)):
            marks = ",".join("?" * len(part))
            out.update(self._all(f"SELECT fid, data FROM annotations WHERE fid IN ({marks})", part))
        return out

    def copy_to(self, target: Path) -> None:
        """A consistent copy of the whole file (SQLite's backup API), to edit in place."""
        dst = sqlite3.connect(target)
        try:
            with self._lock:
                self._con.backup(dst)
        finally:
            dst.close()
