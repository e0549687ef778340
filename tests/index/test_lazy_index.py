"""The saved index read on demand: BM25 and stem counts saved with it and grown without a
rebuild, rows read from the store, saves that edit a copy, checksums not redone for
files unchanged since they were verified."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import ChunkerSettings, HashingEmbedder, Index, QAIndexError, Retriever, make_release, read_releases
from qa.index.lexical import BM25
from qa.index.lexical import tokenize as bm25_tokens

SETTINGS = ChunkerSettings(max_tokens=24)


def _state(index: Index) -> tuple:
    pids, sids = sorted(index.passages), sorted(index.sentences)
    return (
        sorted(index.releases.items()),
        [(i, index.passages[i]) for i in pids],
        [(i, index.sentences[i]) for i in sids],
        sorted(index.annotations.items()),
        index.passage_vectors.reconstruct_batch(np.array(pids, dtype=np.int64)).tobytes(),
        index.sentence_vectors.reconstruct_batch(np.array(sids, dtype=np.int64)).tobytes(),
    )


def _searches(index: Index, embedder: HashingEmbedder, questions: list[str]) -> list:
    r = Retriever(index, embedder)
    return [
        [(h.passage.id, round(h.score, 6)) for h in hits]
        for mode in ("bm25", "hybrid")
        for hits in r.search_batch(questions, mode=mode)
    ]


QUESTIONS = ["Who chaired the meeting in Geneva?", "How much was the hospital fined?", "cyber jobs Chicago"]
EXTRA = make_release(
    "The Widget Council met in Oslo on 3 May 2026. Ingrid Solberg chaired it.\n\nIt agreed on a widget standard.",
    title="Widget Council statement",
    path="extra/widgets.md",
)


@pytest.fixture
def saved(corpus_dir: Path, embedder: HashingEmbedder, tmp_path: Path) -> Path:
    Index.build(read_releases([corpus_dir]).releases, embedder, SETTINGS).save(tmp_path / "idx")
    return tmp_path / "idx"


def test_a_loaded_index_reads_rows_on_demand_and_answers_as_built(
    corpus_dir: Path, embedder: HashingEmbedder, saved: Path
) -> None:
    built = Index.build(read_releases([corpus_dir]).releases, embedder, SETTINGS)
    loaded = Index.load(saved)
    assert not loaded.passages.added and len(loaded.passages) == len(built.passages)
    assert all(loaded.passages.stored(fid) for fid in built.passages)
    assert _state(loaded) == _state(built)
    assert _searches(loaded, embedder, QUESTIONS) == _searches(built, embedder, QUESTIONS)
    assert loaded.stem_counts() == built.stem_counts()
    for fid, p in loaded.passages.items():  # offsets round-trip through the store
        assert loaded.releases[p.release_id].text[p.start : p.end] == p.text
        assert all(p.start <= s.start and s.end <= p.end for s in p.sentences)
        assert fid in loaded.passages


def _holders_by_hand(index: Index) -> dict[int, list[int]]:
    """Every sentence's holders from the rows themselves: passages of its release covering it."""
    passages = list(index.passages.items())
    return {
        sid: [
            f
            for _, f in sorted(
                (p.start, f)
                for f, p in passages
                if p.release_id == s.release_id and p.start <= s.start and s.end <= p.end
            )
        ]
        for sid, s in index.sentences.items()
    }


def test_passages_holding_agrees_with_the_rows_loaded_built_and_edited(
    corpus_dir: Path, embedder: HashingEmbedder, saved: Path
) -> None:
    built = Index.build(read_releases([corpus_dir]).releases, embedder, SETTINGS)
    loaded = Index.load(saved)
    want = _holders_by_hand(built)
    assert any(len(v) == 2 for v in want.values())  # passages overlap: some sentences have two holders
    sids = sorted(want)
    assert built.passages_holding(sids) == want  # all in memory
    assert loaded.passages_holding(sids) == want  # all from the store
    gone = next(r for r in loaded.releases.values() if r.path.endswith("beta.md"))
    loaded.remove([gone.id])
    loaded.add([EXTRA], embedder)
    edited = _holders_by_hand(loaded)
    assert any(loaded.sentences[s].release_id == EXTRA.id for s in edited)
    assert loaded.passages_holding([*sorted(edited), *sids]) == edited  # removed ones hold nothing


def test_add_and_remove_after_load_then_save_equals_a_fresh_build(
    corpus_dir: Path, embedder: HashingEmbedder, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qa.index.model.REBUILD_LEXICAL", 1.0)  # BM25 saved as base + changes: exact
    loaded = Index.load(saved)
    gone = next(r for r in loaded.releases.values() if r.path.endswith("beta.md"))
    loaded.remove([gone.id])
    loaded.add([EXTRA], embedder)
    assert EXTRA.id in loaded.releases and gone.id not in loaded.releases
    in_memory = (_state(loaded), _searches(loaded, embedder, QUESTIONS), loaded.stem_counts())
    loaded.save(saved)
    again = Index.load(saved)
    assert (_state(again), _searches(again, embedder, QUESTIONS), again.stem_counts()) == in_memory
    kept = [r for r in read_releases([corpus_dir]).releases if r.id != gone.id]
    fresh = Index.build([*kept, EXTRA], embedder, SETTINGS)
    assert _state(again) == _state(fresh)
    # BM25 kept its base and scored the new passages by hand: the same passages as a rebuild
    grown, rebuilt = Retriever(again, embedder), Retriever(fresh, embedder)
    for q in [*QUESTIONS, "Who chaired the Widget Council in Oslo?"]:
        assert {h.passage.id for h in grown.search(q, mode="bm25")} == {
            h.passage.id for h in rebuilt.search(q, mode="bm25")
        }
    rb = Retriever(again, embedder)
    hit = rb.search("Who chaired the Widget Council in Oslo?", mode="bm25")[0]
    assert hit.release.id == EXTRA.id
    assert all(h.release.id != gone.id for h in rb.search("hospital fined data breach", mode="bm25"))


def test_bm25_grown_by_hand_ranks_like_a_rebuild() -> None:
    docs = [
        "ransomware ministers met in Geneva",
        "the hospital was fined three million dollars",
        "cyber jobs summit in Chicago",
        "ministers agreed to share threat intelligence",
        "apprentices trained by employers",
        "a breach exposed patient records",
    ]
    grown = BM25(docs[:4], [10, 11, 12, 13])
    grown.add([14, 15], docs[4:])
    grown.remove([11])
    rebuilt = BM25([d for i, d in enumerate(docs) if i != 1], [10, 12, 13, 14, 15])
    for q in ["ministers Geneva", "patient records breach", "hospital fined", "employers apprentices"]:
        g, r = grown.search([q], 5)[0], rebuilt.search([q], 5)[0]
        assert [i for i, _ in g] == [i for i, _ in r], q
        assert all(i != 11 for i, _ in g)
    assert grown.search(["patient records"], 5, allowed={10, 12})[0] == []
    with pytest.raises(ValueError, match="already in the BM25 index"):
        grown.add([14], ["again"])
    assert bm25_tokens(["Ministers"]) == [["minist"]]


def test_bm25_is_saved_with_the_snapshot_and_rebuilt_when_stale(
    embedder: HashingEmbedder, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = Index.load(saved)
    assert not loaded.outdated and loaded._lexical is not None  # read from the snapshot, not built
    assert loaded._lexical.stale == 0
    loaded.add([EXTRA], embedder)
    assert loaded._lexical.stale > 0
    monkeypatch.setattr("qa.index.model.REBUILD_LEXICAL", 1.0)  # small change: saved as base + additions
    loaded.save(saved)
    again = Index.load(saved)
    assert again._lexical is not None and set(again._lexical.added) == set(
        again.ids_of_releases("passages", [EXTRA.id])
    )
    monkeypatch.setattr("qa.index.model.REBUILD_LEXICAL", 0.0)  # any change: rebuilt at save
    again.save(saved)
    third = Index.load(saved)
    assert third._lexical is not None and not third._lexical.added and third._lexical.stale == 0

    def ids(index: Index) -> list[list[str]]:
        return [[h.passage.id for h in Retriever(index, embedder).search(q, mode="bm25")] for q in QUESTIONS]

    assert ids(third) == ids(again)


def test_an_index_saved_before_bm25_was_kept_is_upgraded_by_update_index(
    corpus_dir: Path, embedder: HashingEmbedder, saved: Path
) -> None:
    from qa import update_index
    from qa.index import STEMS, manifest_checksum

    snap = (saved / "current").resolve()
    import json

    for f in [*snap.glob("bm25.*"), snap / STEMS]:
        f.unlink()
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if (snap / k).exists()}
    manifest.pop("checksum")
    manifest["checksum"] = manifest_checksum(manifest)
    (snap / "manifest.json").write_text(json.dumps(manifest))
    old = Index.load(saved)
    assert old.outdated and old._lexical is None
    before = _searches(old, embedder, QUESTIONS)  # builds BM25 from the store
    report = update_index(saved, [corpus_dir], embedder=embedder, chunker=SETTINGS)
    assert report.added == report.removed == 0
    new = Index.load(saved)
    assert not new.outdated and new._lexical is not None
    assert _searches(new, embedder, QUESTIONS) == before


def test_checksums_are_redone_only_for_changed_files(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.index.model as qi

    hashed: list[str] = []
    real = qi.sha256_file
    monkeypatch.setattr(qi, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    Index.load(saved)
    assert hashed == []  # verified when written, unchanged since
    store = (saved / "current").resolve() / "store.sqlite"
    data = bytearray(store.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, new mtime: hashed again and refused
    store.write_bytes(bytes(data))
    st = store.stat()
    os.utime(store, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(QAIndexError, match="store.sqlite does not match its checksum"):
        Index.load(saved)
    assert hashed == ["store.sqlite"]


def test_a_saved_index_survives_its_snapshot_being_replaced(
    embedder: HashingEmbedder, saved: Path, tmp_path: Path
) -> None:
    """A reader keeps answering from its snapshot after a writer swaps in a new one and
    deletes the old folder: the store stays open, BM25 stays mapped."""
    reader = Index.load(saved)
    expected = _searches(reader, embedder, QUESTIONS)
    writer = Index.load(saved)
    writer.add([EXTRA], embedder)
    writer.save(saved)
    assert not reader.snapshot.exists()  # removed by the writer
    reader._lexical = None  # force reading every passage from the (deleted) store
    assert _searches(reader, embedder, QUESTIONS) == expected
    shutil.rmtree(tmp_path / "idx")


def test_a_large_index_switches_to_ivf_and_keeps_every_operation(
    embedder: HashingEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From IVF_FROM vectors a save trains an IVF index: search finds what exact search
    finds, filters, add, remove and reconstruct still work, and it loads back as IVF."""
    import faiss

    from qa import Filters
    from qa.index import vector_ids

    monkeypatch.setattr("qa.index.vectors.IVF_FROM", 150)
    releases = [
        make_release(
            f"Statement {i} on topic {i % 7}. The {['port', 'grid', 'bank', 'school'][i % 4]} "
            f"office number {i} reported {i * 3} incidents in district {i % 11}.",
            title=f"Statement {i}",
            path=f"s/{i}.md",
            source="Agency A" if i % 2 else "Agency B",
        )
        for i in range(160)
    ]
    index = Index.build(releases, embedder, SETTINGS)
    exact = Retriever(index, embedder)
    questions = ["incidents in district 3 at the grid office", "Statement 42 on topic 0", "bank office 17"]
    want = [[h.passage.id for h in hits] for hits in exact.search_batch(questions, mode="dense")]
    ids_before = vector_ids(index.passage_vectors)
    index.save(tmp_path / "idx")
    assert isinstance(index.passage_vectors, faiss.IndexIVF)
    assert (vector_ids(index.passage_vectors) == ids_before).all()
    loaded = Index.load(tmp_path / "idx")
    assert isinstance(loaded.passage_vectors, faiss.IndexIVF) and not loaded.outdated
    ivf = Retriever(loaded, embedder)
    got = [[h.passage.id for h in hits] for hits in ivf.search_batch(questions, mode="dense")]
    top1 = sum(g[0] == w[0] for g, w in zip(got, want, strict=True))
    assert top1 == len(questions)
    only_b = Filters(sources=("Agency B",))
    assert all(h.release.source == "Agency B" for h in ivf.search("office incidents", filters=only_b))
    gone = releases[42]
    loaded.remove([gone.id])
    loaded.add([EXTRA], embedder)
    hits = ivf.search("Who chaired the Widget Council in Oslo?", mode="dense")
    assert hits[0].release.id == EXTRA.id
    assert all(h.release.id != gone.id for h in ivf.search("Statement 42 on topic 0", mode="hybrid"))
    sents = loaded.sentences_of(EXTRA.id)
    assert [s.text for s in sents] == [EXTRA.text[s.start : s.end] for s in sents] and len(sents) == 3
    assert np.allclose(loaded.sentence_vectors_of(sents), embedder.encode([s.text for s in sents]), atol=1e-6)


def test_questions_asked_while_releases_are_added_all_get_answers(
    embedder: HashingEmbedder, saved: Path
) -> None:
    """The chat answers from worker threads while an upload adds releases: searches must
    never see the index half-changed (a dict changing size under an iteration)."""
    import threading

    from qa import Assistant

    assistant = Assistant.load(saved, embedder, reader="features")
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                for q in QUESTIONS:
                    assistant.ask(q)
            except BaseException as e:
                errors.append(e)
                return

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for t in askers:
        t.start()
    try:
        for i in range(30):
            rel = make_release(
                f"Bulletin {i}: the Widget Council met {i} times in Oslo.",
                title=f"Bulletin {i}",
                path=f"b/{i}.md",
            )
            assistant.add_releases([rel], save=False)
    finally:
        stop.set()
        for t in askers:
            t.join()
    assert errors == []
    assert len(assistant.index.lexical().added) == 30
    assert assistant.retriever.search("Bulletin 29", mode="bm25")[0].release.title == "Bulletin 29"


def test_a_sparse_table_iterates_only_the_ids_that_have_rows() -> None:
    """Annotations are stored for some sentences only: ``dict(index.annotations)`` (the bench's
    replicated corpora) raised KeyError on the first id without a row."""
    from qa.index.table import Table

    table: Table[str] = Table(
        lambda ids: {i: f"row {i}" for i in ids if i % 2 == 0}, [1, 2, 3, 4], sparse=True
    )
    table[7] = "added"
    assert list(table) == [2, 4, 7] and len(table) == 3
    assert dict(table) == {2: "row 2", 4: "row 4", 7: "added"}


def test_an_index_from_before_late_sentence_vectors_is_rebuilt_by_update_index(
    corpus_dir: Path, embedder: HashingEmbedder, saved: Path
) -> None:
    """Its manifest names no ``sentence_vectors``: it encoded every sentence on its own, so it
    loads as "separate", and ``update_index`` (``make chat``) rebuilds it with today's setting."""
    import dataclasses
    import json

    from qa import update_index
    from qa.index import manifest_checksum

    snap = (saved / "current").resolve()
    manifest = json.loads((snap / "manifest.json").read_text())
    assert manifest["chunker"].pop("sentence_vectors") == SETTINGS.sentence_vectors == "late"
    manifest.pop("checksum")
    manifest["checksum"] = manifest_checksum(manifest)
    (snap / "manifest.json").write_text(json.dumps(manifest))
    old = Index.load(saved)
    assert old.chunker == dataclasses.replace(SETTINGS, sentence_vectors="separate")
    report = update_index(saved, [corpus_dir], embedder=embedder, chunker=SETTINGS)
    assert report.added == len(old.releases) and Index.load(saved).chunker == SETTINGS
