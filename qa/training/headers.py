"""What a reader trained with headers reads before each training passage: its release's title
and date (``qa.answer.span_reader.header_text``), as the answerer reads them at answering time.

The mined negatives (``qa.training.negatives``) are passage texts; their releases are in the
indexes the mining built, so the map is read from there (every passage of each index), and the
SQuAD paragraphs' from the training file's article titles. Written once as JSON (text ->
header) beside the mined rows; ``train-open-reader --headers`` reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from qa.answer.span_reader import header_text
from qa.evaluation.data import squad_json
from qa.index.snapshot import resolve_snapshot
from qa.index.store import Store


def index_headers(index_root: Path) -> dict[str, str]:
    """Every passage text of the index at ``index_root`` (a cached index's ``index`` folder) with
    its release's header."""
    store = Store(resolve_snapshot(index_root) / "store.sqlite")
    releases = store.releases()
    rows = store.passage_rows(store.fids_of_releases("passages", list(releases)))
    out: dict[str, str] = {}
    for fid in sorted(rows):  # a text two releases share: the later passage id's header, every run
        _, rid, start, end = rows[fid]
        r = releases[rid]
        out[r.text[start:end]] = header_text(r.title, r.date)
    return out


def squad_headers(path: str | os.PathLike[str]) -> dict[str, str]:
    """Each SQuAD paragraph with its article's title, as the evals title the article's release."""
    out: dict[str, str] = {}
    for art in squad_json(path)["data"]:
        head = header_text(str(art.get("title", "article")).replace("_", " "), None)
        for para in art["paragraphs"]:
            out.setdefault(para["context"], head)
    return out


def cached_index_roots(cache: str | os.PathLike[str]) -> list[Path]:
    """The index folders under a cache directory (``qa.index.cache``: one per corpus key)."""
    return sorted(p for p in Path(cache).glob("*/index") if p.is_dir())


def write_headers(maps: Iterable[dict[str, str]], out: str | os.PathLike[str]) -> int:
    """Merge ``maps`` (a later one's header wins: a text two releases share has one) and write
    them atomically; how many texts."""
    merged: dict[str, str] = {}
    for m in maps:
        merged |= m
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(merged, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, p)
    return len(merged)
