"""Regression tests for what the hostile probe of 2026-12-02 broke (issue 17), one per item.
Item 1 (a long question) is in tests/answer/test_reader.py, beside the reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.uploads import add_uploads
from qa import Assistant, ChunkerSettings, HashingEmbedder, Index, QAIndexError, make_release
from qa.index import writer_lock


def _release(i: int):  # type: ignore[no-untyped-def]
    return make_release(
        f"Release {i} says the summit number {i} met in city {i}.", path=f"r{i}.md", title=f"R{i}"
    )


def _saved(tmp_path: Path, emb: HashingEmbedder, n: int = 3) -> Path:
    path = tmp_path / "idx"
    Index.build([_release(i) for i in range(n)], emb, ChunkerSettings(annotator=None)).save(path)
    return path


def test_2_an_upload_never_overwrites_a_newer_index(tmp_path: Path) -> None:
    """Probe: serve an index, add releases with `release-qa index`, upload in the chat: the chat
    saved its old copy over the new snapshot (78 releases -> 60)."""
    emb = HashingEmbedder(dimension=64)
    path = _saved(tmp_path, emb)
    chat = Assistant.load(path, emb, reader="features")  # the served copy
    cli = Index.load(path, emb)  # `release-qa index` adds two releases and saves
    cli.add([_release(10), _release(11)], emb)
    cli.save(path)
    added = chat.add_releases([_release(20)])  # then an upload in the chat
    assert [r.path for r in added] == ["r20.md"]
    on_disk = {r.path for r in Index.load(path, emb).releases.values()}
    assert on_disk == {"r0.md", "r1.md", "r2.md", "r10.md", "r11.md", "r20.md"}
    assert {r.path for r in chat.index.releases.values()} == on_disk  # the chat answers from it too
    assert chat.ask("Where did summit number 11 meet?").hits


def test_2_a_stale_copy_is_refused_not_saved(tmp_path: Path) -> None:
    emb = HashingEmbedder(dimension=64)
    path = _saved(tmp_path, emb)
    old, new = Index.load(path, emb), Index.load(path, emb)
    new.add([_release(5)], emb)
    new.save(path)
    old.add([_release(6)], emb)
    with pytest.raises(QAIndexError, match="changed by another writer"):
        old.save(path)
    assert {r.path for r in Index.load(path, emb).releases.values()} >= {"r5.md"}


def test_3_an_upload_refused_by_the_lock_says_so_and_adds_nothing(tmp_path: Path) -> None:
    """Probe: an upload while `release-qa index` held the lock showed a blank "Error", and the
    release looked added (it answered from memory) but was not saved."""
    emb = HashingEmbedder(dimension=64)
    path = _saved(tmp_path, emb)
    chat = Assistant.load(path, emb, reader="features")
    upload = tmp_path / "new.md"
    upload.write_text("---\ntitle: New\n---\n\nThe new release says the summit met in Oslo.\n")
    folder = tmp_path / "uploads"
    folder.mkdir()
    with writer_lock(path):  # another writer holds the index
        with pytest.raises(QAIndexError, match="is writing the index"):
            chat.add_releases([_release(7)])
        result = add_uploads(chat, [(str(upload), "new.md")], folder)
    assert not result.added
    assert any("not added" in why and "is writing the index" in why for _, why in result.problems)
    assert len(chat.index.releases) == 3  # nothing half-added in memory
    assert not list(folder.iterdir())  # nor left in the uploads folder
    assert len(Index.load(path, emb).releases) == 3
