from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import (
    ChunkerSettings,
    Filters,
    HashingEmbedder,
    Index,
    QAIndexError,
    Retriever,
    read_releases,
    update_index,
)
from qa.index import writer_lock

SETTINGS = ChunkerSettings(max_tokens=24)


def _build(corpus: Path, embedder: HashingEmbedder) -> Index:
    return Index.build(read_releases([corpus]).releases, embedder, SETTINGS)


def _state(index: Index) -> tuple:
    pids = sorted(index.passages)
    pvec = index.passage_vectors.reconstruct_batch(np.array(pids, dtype=np.int64))
    sids = sorted(index.sentences)
    svec = index.sentence_vectors.reconstruct_batch(np.array(sids, dtype=np.int64))
    return (
        sorted(index.releases),
        [(i, index.passages[i]) for i in pids],
        [(i, index.sentences[i]) for i in sids],
        pvec.tobytes(),
        svec.tobytes(),
    )


def test_same_corpus_gives_same_ids(corpus_dir: Path, embedder: HashingEmbedder) -> None:
    a, b = _build(corpus_dir, embedder), _build(corpus_dir, embedder)
    assert sorted(a.passages) == sorted(b.passages)
    assert [p.id for p in a.passages.values()] == [p.id for p in b.passages.values()]


def test_offsets_round_trip(corpus_dir: Path, embedder: HashingEmbedder) -> None:
    index = _build(corpus_dir, embedder)
    for p in index.passages.values():
        text = index.releases[p.release_id].text
        assert text[p.start : p.end] == p.text
        for s in p.sentences:
            assert text[s.start : s.end] == s.text
    for s in index.sentences.values():
        assert index.releases[s.release_id].text[s.start : s.end] == s.text


def test_save_load_identical(corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path) -> None:
    index = _build(corpus_dir, embedder)
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx", embedder)
    assert _state(loaded) == _state(index)
    assert loaded.releases == index.releases
    q = ["Who chaired the meeting in Geneva?", "How much was the hospital fined?"]
    r1 = Retriever(index, embedder).search_batch(q, k=5)
    r2 = Retriever(loaded, embedder).search_batch(q, k=5)
    assert [[(h.passage, round(h.score, 6)) for h in hs] for hs in r1] == [
        [(h.passage, round(h.score, 6)) for h in hs] for hs in r2
    ]


def test_incremental_equals_full_rebuild(corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    first = update_index(idx, [corpus_dir], embedder=embedder, chunker=SETTINGS)
    assert (first.added, first.removed, first.releases) == (3, 0, 3)
    again = update_index(idx, [corpus_dir], embedder=embedder, chunker=SETTINGS)
    assert again.up_to_date

    # change one, delete one, add one
    alpha = corpus_dir / "alpha.md"
    alpha.write_text(alpha.read_text().replace("thirty", "forty"))
    (corpus_dir / "gamma.txt").unlink()
    (corpus_dir / "delta.txt").write_text("New release\n\nThe agency opened a new office in Denver.")
    calls: list[int] = []

    class Counting(HashingEmbedder):
        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().encode(texts, **kw)

    counting = Counting(dimension=256)
    rep = update_index(idx, [corpus_dir], embedder=counting, chunker=SETTINGS)
    assert (rep.added, rep.removed) == (2, 2)  # changed alpha counts as removed + added
    fresh = _build(corpus_dir, embedder)
    # only the two new releases were embedded: their passages, and their sentences as each
    # passage reads them (the fake embedder encodes a late-read sentence's own text)
    new = [p for p in fresh.passages.values() if p.release_id in _new_ids(fresh, first)]
    assert sum(calls) == len(new) + sum(len(p.sentences) for p in new)
    assert _state(Index.load(idx, embedder)) == _state(fresh)


def _new_ids(fresh: Index, first: object) -> set[str]:
    return {rid for rid, r in fresh.releases.items() if r.path.endswith(("alpha.md", "delta.txt"))}


def test_model_mismatch_is_refused(corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path) -> None:
    _build(corpus_dir, embedder).save(tmp_path / "idx")
    other = HashingEmbedder(dimension=128)
    with pytest.raises(QAIndexError, match=r"built with model 'hashing-bow-256' \(dimension 256\).*rebuild"):
        Index.load(tmp_path / "idx", other)


def test_missing_damaged_and_foreign_indexes(
    corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(QAIndexError, match="no index at"):
        Index.load(tmp_path / "nothing")
    snap = _build(corpus_dir, embedder).save(tmp_path / "idx")
    faiss_file = snap / "passages.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with pytest.raises(QAIndexError, match="damaged.*rebuild it with"):
        Index.load(tmp_path / "idx")
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["format_version"] = 99
    (snap / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(QAIndexError, match="format version 99"):
        Index.load(tmp_path / "idx")


def test_truncated_store_is_refused(corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path) -> None:
    snap = _build(corpus_dir, embedder).save(tmp_path / "idx")
    (snap / "store.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)
    with pytest.raises(QAIndexError, match="damaged"):
        Index.load(tmp_path / "idx")


def test_save_swaps_snapshots_and_keeps_one(
    corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    index = _build(corpus_dir, embedder)
    s1 = index.save(tmp_path / "idx")
    s2 = index.save(tmp_path / "idx")
    assert s1 != s2 and not s1.exists() and s2.exists()
    assert (tmp_path / "idx" / "current").resolve() == s2


def test_second_writer_is_refused(tmp_path: Path, corpus_dir: Path, embedder: HashingEmbedder) -> None:
    with writer_lock(tmp_path / "idx"), pytest.raises(QAIndexError, match="another process .* is writing"):
        update_index(tmp_path / "idx", [corpus_dir], embedder=embedder)


def test_filters(corpus_dir: Path, embedder: HashingEmbedder) -> None:
    index = _build(corpus_dir, embedder)
    r = Retriever(index, embedder)
    q = "ministers hospital summit"
    only_health = r.search(q, k=10, filters=Filters(sources=("health agency",)))
    assert only_health and {h.release.source for h in only_health} == {"Health Agency"}
    recent = r.search(q, k=10, filters=Filters(date_from=dt.date(2020, 1, 1)))
    assert recent and all(h.release.date and h.release.date.year >= 2020 for h in recent)
    assert r.search(q, filters=Filters(date_from=dt.date(2030, 1, 1))) == []
    with pytest.raises(ValueError, match="after date_to"):
        Filters(date_from=dt.date(2022, 1, 1), date_to=dt.date(2021, 1, 1))
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        r.search(q, k=0)


def test_failed_save_keeps_previous(
    corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    index = _build(corpus_dir, embedder)
    index.save(tmp_path / "idx")
    before = _state(Index.load(tmp_path / "idx"))
    import qa.index.model as qi

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    # a saved index edits a copy of its store; a fresh one writes it whole
    monkeypatch.setattr(qi, "write_store", boom)
    monkeypatch.setattr(qi, "update_store", boom)
    index.remove([next(iter(index.releases))])
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "idx")
    assert _state(Index.load(tmp_path / "idx")) == before
    assert [p.name for p in (tmp_path / "idx" / "snapshots").iterdir()] == [
        (tmp_path / "idx" / "current").resolve().name
    ]
    shutil.rmtree(tmp_path / "idx")


def test_a_killed_build_resumes_from_its_last_save(tmp_path: Path) -> None:
    """A long build saves as it goes: killed, it keeps what it saved, and the next run embeds only
    the rest (issue 15: a 45-minute build gets interrupted)."""
    from qa import HashingEmbedder, update_index
    from qa.index.model import SYNC_BATCH

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    n = 3 * SYNC_BATCH
    for i in range(n):
        (corpus / f"r{i:03d}.md").write_text(f"Release {i} says the summit number {i} met in city {i}.\n")

    class Dies(HashingEmbedder):
        """Embeds, then dies in the middle of the build (as a SIGKILL or a crash would)."""

        calls = 0

        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            type(self).calls += 1
            if type(self).calls > 4:  # passages and sentences of two batches
                raise KeyboardInterrupt
            return super().encode(texts, **kw)

    class Counts(HashingEmbedder):
        texts = 0

        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            type(self).texts += len(texts)
            return super().encode(texts, **kw)

    idx = tmp_path / "idx"
    settings = ChunkerSettings(annotator=None)
    with pytest.raises(KeyboardInterrupt):
        update_index(idx, [corpus], embedder=Dies(dimension=64), chunker=settings, checkpoint_seconds=0.0)
    saved = Index.load(idx)  # the last save: loadable, and holding the batches done
    assert 0 < len(saved.releases) < n and len(saved.releases) % SYNC_BATCH == 0
    report = update_index(idx, [corpus], embedder=Counts(dimension=64), chunker=settings)
    assert report.added == n - len(saved.releases) and report.removed == 0
    assert len(Index.load(idx).releases) == n
    # only the releases the killed build had not saved were embedded again (a passage and a sentence each)
    assert Counts.texts == 2 * (n - len(saved.releases))


def test_a_long_build_saves_less_often_as_its_saves_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saves wait at least SAVE_SHARE_INVERSE times the last save's duration (a clock that
    advances 0.1 s a save and 0.1 s a batch: with 0 s asked, a save every ~20 batches, not every one)."""
    import qa.index.model as model
    from qa import HashingEmbedder, make_release

    class Clock:
        now = 0.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(model, "time", clock)
    monkeypatch.setattr(model, "SYNC_BATCH", 1)
    emb = HashingEmbedder(32)
    index = Index.empty(emb, ChunkerSettings(annotator=None))
    saves: list[int] = []

    def save() -> None:
        saves.append(len(index.releases))
        clock.now += 0.1

    def prepare(releases):  # type: ignore[no-untyped-def]
        for p in model.prepare_locally(emb, index.chunker, batch=1)(releases):
            clock.now += 0.1
            yield p

    rels = [make_release(f"Release {i} met in city {i}.", path=f"r{i}.md") for i in range(60)]
    index.sync(rels, emb, checkpoint=save, checkpoint_seconds=0.0, prepare=prepare)
    assert len(index.releases) == 60
    assert saves[0] == 1 and 2 <= len(saves) <= 4  # after the first batch, then ~every 20
    assert all(b - a >= 19 for a, b in itertools.pairwise(saves))
