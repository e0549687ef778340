"""SQLite store of releases, passages and sentences beside the vector index.

Only offsets are stored for passages and sentences: their text is sliced from the
release text on load, so it cannot drift from the release.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
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


def _connect_ro(path: Path) -> sqlite3.Connection:
    """Open read-only. The URI is built by pathlib so '#', '?' or '%' in a folder name
    cannot cut it short (sqlite would then open, or even create, another file)."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


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
        con.commit()
    finally:
        con.close()


def read_store(
    path: Path,
) -> tuple[dict[str, Release], dict[int, Passage], dict[int, Sentence]]:
    """Releases by id, passages and sentences by their vector id (sentences in text order)."""
    con = _connect_ro(path)
    try:
        releases: dict[str, Release] = {}
        for rid, rpath, title, date, source, url, meta, text in con.execute(
            "SELECT * FROM releases ORDER BY rowid"
        ):
            releases[rid] = Release(
                id=rid,
                text=text,
                title=title,
                path=rpath,
                date=dt.date.fromisoformat(date) if date else None,
                source=source,
                url=url,
                metadata=tuple(sorted(json.loads(meta).items())),
            )
        sentences: dict[int, Sentence] = {}
        by_release: dict[str, list[Sentence]] = defaultdict(list)
        for fid, rid, start, end in con.execute(
            'SELECT fid, release_id, start, "end" FROM sentences ORDER BY release_id, start'
        ):
            s = Sentence(rid, start, end, releases[rid].text[start:end])
            sentences[fid] = s
            by_release[rid].append(s)
        passages: dict[int, Passage] = {}
        for fid, pid, rid, start, end in con.execute(
            'SELECT fid, id, release_id, start, "end" FROM passages ORDER BY rowid'
        ):
            text = releases[rid].text
            inner = _within(by_release[rid], start, end)
            passages[fid] = Passage(pid, rid, start, end, text[start:end], inner)
        return releases, passages, sentences
    finally:
        con.close()


def _within(sentences: Sequence[Sentence], start: int, end: int) -> tuple[Sentence, ...]:
    return tuple(s for s in sentences if s.start >= start and s.end <= end)


def read_annotations(path: Path) -> dict[int, str]:
    """Sentence annotations (JSON text) by sentence vector id."""
    con = _connect_ro(path)
    try:
        return dict(con.execute("SELECT fid, data FROM annotations"))
    finally:
        con.close()
