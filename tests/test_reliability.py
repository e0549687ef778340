"""Reliability (issue 8), library half: bad inputs cost one file and never the index,
damaged indexes are refused whole, hostile questions get a clear reply, nothing is
pickled, and reading/chunking keep their offsets for any input (hypothesis).

Crashes, concurrent writers and readers are in tests/index/test_crash.py.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import pickle
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from qa import (
    Assistant,
    Chunker,
    ChunkerSettings,
    HashingEmbedder,
    Index,
    QAIndexError,
    ReleaseError,
    make_release,
    read_bytes,
    update_index,
)
from qa.ingest.chunking import word_count
from qa.ingest.releases import MAX_BYTES

ROOT = Path(__file__).resolve().parents[1]
# what `release-qa index --embedder hashing` builds with: no model, no spaCy
HASHING = ChunkerSettings(annotator=None)


def index_state(index: Index) -> tuple:
    """Everything an index holds, vectors included, in a comparable form."""
    pids, sids = sorted(index.passages), sorted(index.sentences)
    pvec = index.passage_vectors.reconstruct_batch(np.array(pids, dtype=np.int64))
    svec = index.sentence_vectors.reconstruct_batch(np.array(sids, dtype=np.int64))
    return (
        sorted(index.releases.items()),
        [(i, index.passages[i]) for i in pids],
        [(i, index.sentences[i]) for i in sids],
        pvec.tobytes(),
        svec.tobytes(),
    )


def cli_index(capsys: pytest.CaptureFixture[str], idx: Path, *paths: Path, strict: bool = False) -> tuple:
    """Run `release-qa index ... --embedder hashing` in-process: (exit code, stdout, stderr lines)."""
    argv = ["index", *map(str, paths), "--index", str(idx), "--embedder", "hashing", "-q"]
    rc = main([*argv, "--strict"] if strict else argv)
    out, err = capsys.readouterr()
    return rc, out, err.splitlines()


def _pdf_encrypted() -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt("secret")  # RC4: needs no crypto library
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _pdf_image_only() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (200, 30, 30)).save(buf, "PDF")  # a "scan": one image, no text
    return buf.getvalue()


def _sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that costs no disk (like `truncate -s`)."""
    with path.open("wb") as f:
        f.truncate(size)


BOMB = b"---\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n---\nBody."

# file name -> (bytes, the reason printed for it)
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty.txt": (b"", "empty file"),
    "blank.md": (b"  \n\n ", "empty file"),
    "binary.txt": (bytes(range(256)) * 8, "binary file (contains NUL bytes), not text"),
    "controls.txt": (bytes(range(1, 32)) * 64, "binary file (mostly control characters), not text"),
    "not-yaml.md": (b"---\ntitle: [unclosed\n---\nBody text.", "front matter is not valid YAML"),
    "date-words.md": (b"---\ndate: next tuesday\n---\nBody.", "date 'next tuesday' is not a date"),
    "date-impossible.md": (b"---\ndate: 2021-13-45\n---\nBody.", "front matter has an invalid value"),
    "yaml-bomb.md": (BOMB, "front matter uses YAML aliases"),
    "scripts.html": (
        b"<html><script>var a=1;</script><style>p{}</style></html>",
        "HTML holds no readable text",
    ),
    "encrypted.pdf": (_pdf_encrypted(), "PDF is encrypted with a password"),
    "scan.pdf": (_pdf_image_only(), "PDF has no extractable text (image-only or scanned?)"),
    "broken.pdf": (b"%PDF-1.4 garbage", "not a readable PDF"),
    "deep.json": (b"[" * 50_000 + b"]" * 50_000, "JSON is nested too deeply"),
}


def _add_bad_inputs(d: Path) -> dict[str, str]:
    """Write every bad input into ``d``; returns {printed path: reason}."""
    for name, (data, _) in BAD_FILES.items():
        (d / name).write_bytes(data)
    expected = {f"releases/{name}": reason for name, (_, reason) in BAD_FILES.items()}
    for name in ("huge.txt", "huge.jsonl"):
        _sparse(d / name, 200 * 2**20)
        expected[f"releases/{name}"] = f"file is 200 MB, over the {MAX_BYTES // 2**20} MB limit"
    (d / "copy-of-alpha.md").write_bytes((d / "alpha.md").read_bytes())  # read after alpha.md
    expected["releases/copy-of-alpha.md"] = "duplicate of releases/alpha.md (same text)"
    (d / "sub").mkdir()
    (d / "sub" / "loop").symlink_to(d, target_is_directory=True)
    expected["releases/sub/loop"] = "symlinked folder, not followed (it could loop)"
    (d / "loop-a.txt").symlink_to("loop-b.txt")
    (d / "loop-b.txt").symlink_to("loop-a.txt")
    expected["releases/loop-a.txt"] = expected["releases/loop-b.txt"] = (
        "cannot read (Too many levels of symbolic links)"
    )
    (d / "dangling.txt").symlink_to("nowhere.txt")
    expected["releases/dangling.txt"] = "cannot read (No such file or directory)"
    lines = [
        json.dumps(
            {"title": "Grant round opens", "text": "The agency opened a grant round for rural towns."}
        ),
        '{"title": "Broken", "text": "no closing brace"',
        json.dumps({"title": "Port reopens", "text": "The harbour authority reopened the port on Friday."}),
    ]
    (d / "records.jsonl").write_text("\n".join(lines))
    expected["releases/records.jsonl#L2"] = "line 2 is not valid JSON"
    return expected


def _skips(err: list[str]) -> dict[str, str]:
    out = {}
    for line in err:
        assert line.startswith("skipped "), line  # nothing else on stderr: no traceback
        path, reason = line.removeprefix("skipped ").split(": ", 1)
        out[path] = reason
    return out


def test_bad_inputs_cost_one_file_each_and_never_the_index(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    rc, out, err = cli_index(capsys, idx, corpus_dir)
    assert (rc, err) == (0, []) and "3 releases read, 0 skipped, 3 added" in out
    before, snap = index_state(Index.load(idx)), (idx / "current").resolve()

    expected = _add_bad_inputs(corpus_dir)
    rc, out, err = cli_index(capsys, idx, corpus_dir)
    assert rc == 0
    skips = _skips(err)
    assert skips.keys() == expected.keys()
    for path, reason in expected.items():
        assert skips[path].startswith(reason), (path, skips[path])
    # the two good lines of the JSONL file are the only change; the old releases are untouched
    assert f"{len(expected)} skipped, 2 added, 0 removed" in out
    after = Index.load(idx)
    assert {r.path for r in after.releases.values()} == {
        "releases/alpha.md",
        "releases/beta.md",
        "releases/gamma.txt",
        "releases/records.jsonl#L1",
        "releases/records.jsonl#L3",
    }
    old = {rid for rid, _ in before[0]}
    assert [x for x in index_state(after)[0] if x[0] in old] == before[0]
    old_passages = [(i, p) for i, p in index_state(after)[1] if p.release_id in old]
    assert old_passages == before[1]

    # with only bad files changing, the index is not even rewritten
    (corpus_dir / "records.jsonl").unlink()
    cli_index(capsys, idx, corpus_dir)
    snap = (idx / "current").resolve()
    state = index_state(Index.load(idx))
    (corpus_dir / "empty2.txt").write_bytes(b"")
    rc, out, err = cli_index(capsys, idx, corpus_dir)
    assert rc == 0 and "up to date" in out and _skips(err)["releases/empty2.txt"] == "empty file"
    assert (idx / "current").resolve() == snap and index_state(Index.load(idx)) == state
    assert state[:3] == before[:3] and state[3:] == before[3:]


def test_a_release_damaged_since_the_last_run_keeps_its_indexed_version(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    cli_index(capsys, idx, corpus_dir)
    before = index_state(Index.load(idx))
    (corpus_dir / "alpha.md").write_bytes(bytes(range(256)))  # overwritten by garbage
    (corpus_dir / "beta.md").unlink()  # really gone
    rc, _out, err = cli_index(capsys, idx, corpus_dir)
    assert rc == 0 and _skips(err) == {"releases/alpha.md": "binary file (contains NUL bytes), not text"}
    after = Index.load(idx)
    assert sorted(r.path for r in after.releases.values()) == ["releases/alpha.md", "releases/gamma.txt"]
    kept = [x for x in before[0] if x[1].path == "releases/alpha.md"]
    assert [x for x in index_state(after)[0] if x[1].path == "releases/alpha.md"] == kept


def test_changed_metadata_or_file_name_is_reindexed(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    cli_index(capsys, idx, corpus_dir)
    alpha = corpus_dir / "alpha.md"
    alpha.write_text(alpha.read_text().replace("date: 2021-10-14", "date: 2021-10-15"))
    (corpus_dir / "gamma.txt").rename(corpus_dir / "gamma-renamed.txt")
    rc, out, _ = cli_index(capsys, idx, corpus_dir)
    assert rc == 0 and "2 added, 2 removed" in out
    by_path = {r.path: r for r in Index.load(idx).releases.values()}
    assert by_path["releases/alpha.md"].date.isoformat() == "2021-10-15"
    assert "releases/gamma-renamed.txt" in by_path and "releases/gamma.txt" not in by_path
    rc, out, _ = cli_index(capsys, idx, corpus_dir)
    assert "up to date" in out


def test_strict_refuses_the_batch_and_leaves_the_index(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    cli_index(capsys, idx, corpus_dir)
    before = index_state(Index.load(idx))
    (corpus_dir / "zeta.txt").write_text("A new release. It would be added.")
    (corpus_dir / "bad.md").write_bytes(b"---\ndate: soon\n---\nBody.")
    rc, _, err = cli_index(capsys, idx, corpus_dir, strict=True)
    assert rc == 2
    assert err == ["release-qa: error: releases/bad.md: date 'soon' is not a date (expected YYYY-MM-DD)"]
    assert index_state(Index.load(idx)) == before


def test_non_utf8_and_deeply_nested_releases_are_read(
    corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin = "Le ministère a annoncé à Genève une réunion des délégués."
    utf16 = "The café reopened after the ministry’s review, officials said."
    (corpus_dir / "latin.txt").write_bytes(latin.encode("cp1252"))
    (corpus_dir / "utf16.txt").write_bytes(utf16.encode("utf-16"))
    levels = [corpus_dir]
    for _ in range(1100):  # deeper than Python's recursion limit (os.walk in 3.11 recurses)
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    (levels[-1] / "deep.txt").write_text("A release at the bottom of many folders. It is read.")
    try:
        idx = tmp_path / "idx"
        rc, _out, err = cli_index(capsys, idx, corpus_dir)
        assert (rc, err) == (0, [])
        texts = {r.path: r.text for r in Index.load(idx).releases.values()}
        assert texts["releases/latin.txt"] == latin and texts["releases/utf16.txt"] == utf16
        assert texts["releases/" + "d/" * 1100 + "deep.txt"].startswith("A release at the bottom")
    finally:  # bottom up: shutil.rmtree (and so pytest's clean-up) recurses too
        (levels[-1] / "deep.txt").unlink()
        for level in reversed(levels[1:]):
            level.rmdir()


def test_limit_is_checked_before_reading(tmp_path: Path) -> None:
    from qa import read_file

    big = tmp_path / "big.md"
    _sparse(big, MAX_BYTES + 1)
    with pytest.raises(ReleaseError, match=r"over the 50 MB limit"):
        read_file(big)
    _sparse(big, MAX_BYTES)  # at the limit: read (and refused for what it holds, not its size)
    with pytest.raises(ReleaseError, match="binary file"):
        read_file(big)


# ---------------------------------------------------------------- damaged indexes


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index of the test releases, copied by the tests that damage it."""
    from tests.conftest import RELEASES

    d = tmp_path_factory.mktemp("built") / "releases"
    d.mkdir()
    for name, text in RELEASES.items():
        (d / name).write_text(text, encoding="utf-8")
    update_index(d.parent / "idx", [d], embedder=HashingEmbedder(dimension=256), chunker=HASHING)
    return d.parent / "idx"


def _save(built: Path, idx: Path) -> Path:
    shutil.copytree(built, idx, symlinks=True)
    return (idx / "current").resolve()


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _empty(p: Path) -> None:
    p.write_bytes(b"")


@pytest.mark.parametrize("damage", [_truncate, _flip, _empty])
@pytest.mark.parametrize("name", ["manifest.json", "passages.faiss", "sentences.faiss", "store.sqlite"])
def test_a_damaged_index_file_is_refused_with_how_to_rebuild(
    built: Path, tmp_path: Path, name: str, damage
) -> None:  # type: ignore[no-untyped-def]
    idx = tmp_path / "idx"
    snap = _save(built, idx)
    damage(snap / name)
    with pytest.raises(
        QAIndexError, match=re.escape(f"rebuild it with: release-qa index <folders> --index {idx}")
    ):
        Index.load(idx)


def test_a_damaged_index_is_rebuilt_by_the_next_run(
    corpus_dir: Path, tmp_path: Path, embedder: HashingEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = tmp_path / "idx"
    cli_index(capsys, idx, corpus_dir)
    good = index_state(Index.load(idx))
    _flip((idx / "current").resolve() / "store.sqlite")
    rc, out, _ = cli_index(capsys, idx, corpus_dir)
    assert rc == 0 and "rebuilt" in out
    assert index_state(Index.load(idx)) == good
    # `ask` refuses a damaged index with the same hint and no traceback
    _truncate((idx / "current").resolve() / "passages.faiss")
    assert main(["ask", "Who chaired the meeting?", "--index", str(idx)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"release-qa: error: index at {idx} is damaged (passages.faiss does not match")
    assert "rebuild it with" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("edit", "checksum", "message"),
    [
        (
            lambda m: m.update(format_version=99),
            False,
            "has format version 99; this release-qa reads version",
        ),
        (lambda m: m.update(format="something-else"), False, "is not a release-qa index manifest"),
        (lambda m: m.update(created_at="yesterday"), False, "is damaged (it does not match its checksum)"),
        (
            lambda m: m["corpus"].update(passages=m["corpus"]["passages"] + 1),
            True,
            "does not match its manifest",
        ),
        (lambda m: m["chunker"].update(max_tokens="many"), True, "bad chunker settings"),
        (
            lambda m: m["files"].update({"store.sqlite": "0" * 64}),
            True,
            "store.sqlite does not match its checksum",
        ),
        (lambda m: m.pop("corpus"), True, "is damaged"),
    ],
)
def test_a_foreign_or_inconsistent_manifest_is_refused(
    built: Path, tmp_path: Path, edit, checksum: bool, message: str
) -> None:  # type: ignore[no-untyped-def]
    """``checksum``: the edit also fixes the manifest's own checksum, reaching the later checks."""
    from qa.index import manifest_checksum

    idx = tmp_path / "idx"
    snap = _save(built, idx)
    manifest = json.loads((snap / "manifest.json").read_text())
    edit(manifest)
    if checksum:
        manifest.pop("checksum")
        manifest["checksum"] = manifest_checksum(manifest)
    (snap / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(QAIndexError, match=re.escape(message)) as e:
        Index.load(idx)
    assert "rebuild it with: release-qa index" in str(e.value)


def test_another_models_index_is_refused(built: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    _save(built, idx)
    with pytest.raises(QAIndexError, match=r"built with model 'hashing-bow-256'.*rebuild it with"):
        Index.load(idx, HashingEmbedder(dimension=64))


def test_index_path_with_uri_characters(corpus_dir: Path, tmp_path: Path, embedder: HashingEmbedder) -> None:
    """sqlite's URI once read 'a#b' as 'a' (and created it)."""
    idx = tmp_path / "odd #1 ?x=%41" / "idx"
    update_index(idx, [corpus_dir], embedder=embedder, chunker=HASHING)
    assert len(Index.load(idx).releases) == 3
    assert not (tmp_path / "odd ").exists()


# ---------------------------------------------------------------- no pickle

_PICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def test_no_pickle_in_the_library() -> None:
    for py in sorted((ROOT / "qa").rglob("*.py")):
        tree = ast.parse(py.read_text(encoding="utf-8"), str(py))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                names = {"allow_pickle"}
            elif (
                isinstance(node, ast.Attribute) and node.attr == "load" and ast.unparse(node.value) == "torch"
            ):
                names = {"torch.load"}
            else:
                continue
            bad = names & (_PICKLERS | {"allow_pickle", "torch.load"})
            assert not bad, (
                f"{py.relative_to(ROOT)}:{node.lineno} uses {bad}: persist with JSON, SQLite or FAISS"
            )


def test_only_faiss_sqlite_json_and_plain_npy_are_written(
    corpus_dir: Path, tmp_path: Path, embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("pickle used in persistence")

    for fn in ("dump", "dumps", "load", "loads"):
        monkeypatch.setattr(pickle, fn, refuse)
    idx = tmp_path / "idx"
    update_index(idx, [corpus_dir], embedder=embedder, chunker=HASHING)
    snap = (idx / "current").resolve()
    Index.load(idx, embedder)
    assert sorted(p.name for p in idx.iterdir()) == [".lock", "current", "snapshots"]
    assert sorted(p.name for p in snap.iterdir()) == [
        "bm25.data.npy",
        "bm25.ids.npy",
        "bm25.indices.npy",
        "bm25.indptr.npy",
        "bm25.json",
        "bm25.params.json",
        "bm25.vocab.json",
        "manifest.json",
        "passages.faiss",
        "sentences.faiss",
        "stems.json",
        "store.sqlite",
        "verified.json",
    ]
    for name in ("manifest.json", "bm25.json", "bm25.params.json", "bm25.vocab.json", "stems.json"):
        json.loads((snap / name).read_text(encoding="utf-8"))
    for npy in snap.glob("*.npy"):  # numeric arrays that load without pickle
        assert np.load(npy, allow_pickle=False).dtype.kind in "iuf"
    with sqlite3.connect(snap / "store.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    import faiss

    for name in ("passages.faiss", "sentences.faiss"):
        assert faiss.read_index(str(snap / name)).ntotal > 0
    for f in snap.iterdir():
        assert not f.read_bytes().startswith(b"\x80"), f"{f.name} looks pickled"


# ---------------------------------------------------------------- hostile questions


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    from tests.conftest import RELEASES

    d = tmp_path_factory.mktemp("releases")
    for name, text in RELEASES.items():
        (d / name).write_text(text, encoding="utf-8")
    emb = HashingEmbedder(dimension=256)
    update_index(d / "idx", [d], embedder=emb, chunker=HASHING)
    return Assistant.load(d / "idx", emb)


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "the question is empty"),
        ("  \n\t ", "the question is empty"),
        ("\x00\x01\x02\x1b", "the question is empty"),
        ("why " * 25_600, "the question is 102399 characters long; the limit is"),
    ],
)
def test_empty_and_huge_questions_get_a_clear_error(
    assistant: Assistant, question: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assistant.ask(question)


@pytest.mark.parametrize(
    "question",
    [
        "Who\x00 chaired\x1b[31m the\x07 meeting?\r\n",
        "the of and to a in is it that",
        "?!?!...",
        "\u202eWho chaired the meeting?\u202c",
        "x" * 2000,
        "🙂🙂🙂 ransomware 🙂",
    ],
)
def test_hostile_questions_get_an_answer_or_a_refusal_never_an_exception(
    assistant: Assistant, question: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = assistant.ask(question)
    if a.text is not None:
        assert a.citation is not None
        assert (
            assistant.index.releases[a.citation.release_id].text[a.citation.start : a.citation.end] == a.text
        )
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]


# ---------------------------------------------------------------- properties

_pieces = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
    st.sampled_from(
        ["Dr. Smith", "U.S.", ". ", "\n", "\n\n", "  ", "e.g. ", "?!", "$3.5 million.", "\t", "---"]
    ),
    st.text(alphabet="abc.:/-_", min_size=30, max_size=400),  # an unbroken "word" (a URL, a hash)
)
_text = st.lists(_pieces, max_size=30).map("".join)
_counters = {"words": word_count, "hashing": HashingEmbedder().count_tokens}


def _check_release(rel, budget: int, counter: str) -> None:  # type: ignore[no-untyped-def]
    count = _counters[counter]
    chunker = Chunker(ChunkerSettings(max_tokens=budget, overlap_sentences=1, annotator=None), count)
    sents = chunker.sentences(rel)
    passages = chunker.chunk(rel, sents)
    # sentences: in order, disjoint, exact, and together every non-space character
    for a, b in itertools.pairwise(sents):
        assert a.end <= b.start
    assert all(rel.text[s.start : s.end] == s.text and s.text.strip() == s.text for s in sents)
    covered = "".join(s.text for s in sents)
    assert "".join(covered.split()) == "".join(rel.text.split())
    # passages: exact, in order, within the budget, and together all sentences
    for p in passages:
        assert rel.text[p.start : p.end] == p.text
        assert count([p.text])[0] <= budget
        assert p.sentences and p.start == p.sentences[0].start and p.end == p.sentences[-1].end
    assert [p.start for p in passages] == sorted(p.start for p in passages)
    assert sorted({s for p in passages for s in p.sentences}, key=lambda s: s.start) == sents


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(_text, st.integers(min_value=8, max_value=40), st.sampled_from(sorted(_counters)))
def test_property_passages_cover_any_text_within_budget(text: str, budget: int, counter: str) -> None:
    if not text.strip() or not text.replace("\x00", "").strip():
        return
    _check_release(make_release(text, path="x.txt", title="T"), budget, counter)


_suffix = st.sampled_from([".txt", ".md", ".json", ".jsonl", ".html", ".pdf"])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=600), _text.map(lambda t: t.encode("utf-8"))), _suffix)
def test_property_any_bytes_are_read_or_refused_with_a_reason(data: bytes, suffix: str) -> None:
    try:
        releases = read_bytes(data, f"doc{suffix}")
    except ReleaseError as e:
        assert str(e) and "\n" not in str(e)
        return
    for rel in releases:
        assert rel.text and rel.text == rel.text.strip()
        _check_release(rel, 24, "hashing")


_front = st.dictionaries(
    st.sampled_from(["title", "date", "source", "url", "tags", "lang"]),
    st.one_of(
        st.none(), st.integers(), st.text(max_size=20), st.dates().map(str), st.lists(st.text(max_size=5))
    ),
    max_size=5,
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(_front, _text)
def test_property_front_matter_is_read_or_refused_with_a_reason(front: dict, body: str) -> None:
    data = ("---\n" + json.dumps(front) + "\n---\n" + body).encode("utf-8")  # JSON is YAML
    try:
        (rel,) = read_bytes(data, "doc.md")
    except ReleaseError as e:
        assert str(e) and "\n" not in str(e)
        return
    # the body, and only the body, read as Markdown
    from qa.ingest.markdown import render_markdown

    clean = body.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    assert rel.text == render_markdown(clean).text.strip()
    _check_release(rel, 24, "hashing")


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_text.filter(lambda t: t.replace("\x00", "").strip()), min_size=1, max_size=3))
def test_property_offsets_survive_save_and_load(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str]
) -> None:
    emb = HashingEmbedder(dimension=32)
    releases = [make_release(t, path=f"r{i}.txt") for i, t in enumerate(texts)]
    index = Index.build(releases, emb, ChunkerSettings(max_tokens=16, annotator=None))
    idx = tmp_path_factory.mktemp("idx")
    index.save(idx)
    loaded = Index.load(idx, emb)
    assert index_state(loaded) == index_state(index)
    for p in loaded.passages.values():
        assert loaded.releases[p.release_id].text[p.start : p.end] == p.text


def test_property_strategies_are_not_vacuous() -> None:
    """The text strategy reaches over-long words (cut between characters) and dropped text."""
    rel = make_release("See " + "a/" * 300 + " now. ?!", path="x.txt", title="T")
    _check_release(rel, 8, "hashing")
    chunker = Chunker(ChunkerSettings(max_tokens=8, annotator=None), HashingEmbedder().count_tokens)
    assert len(chunker.sentences(rel)) > 30
