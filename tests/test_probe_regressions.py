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


def test_4_a_fifo_in_the_corpus_is_skipped_not_waited_on(tmp_path: Path) -> None:
    """Probe: a named pipe in the corpus hung `index` forever while it held the writer lock."""
    import os

    from qa import read_releases

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("---\ntitle: A\n---\n\nThe summit met in Oslo.\n")
    os.mkfifo(corpus / "pipe.md")
    import threading

    got: list = []  # type: ignore[type-arg]
    reader = threading.Thread(target=lambda: got.append(read_releases([corpus])), daemon=True)
    reader.start()
    reader.join(timeout=30)  # nothing ever opens the FIFO for writing: a blocking read never returns
    assert not reader.is_alive(), "reading the corpus hangs on the FIFO"
    (report,) = got
    assert [r.path for r in report.releases] == ["corpus/a.md"]
    assert [(s.path, "regular file" in s.reason) for s in report.skipped] == [("corpus/pipe.md", True)]
    from qa.ingest.releases import ReleaseError, read_file

    with pytest.raises(ReleaseError, match="not a regular file"):
        read_file(corpus / "pipe.md")  # named directly: refused, not waited on


def test_8_a_symlink_out_of_the_corpus_is_not_followed(tmp_path: Path) -> None:
    """Probe: `passwd.md -> /etc/passwd` inside the corpus was indexed."""
    from qa import read_releases

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    secret = tmp_path / "secret.md"
    secret.write_text("The password is swordfish.\n")
    (corpus / "a.md").write_text("The summit met in Oslo.\n")
    (corpus / "passwd.md").symlink_to(secret)
    (corpus / "alias.md").symlink_to(corpus / "a.md")  # inside the folder: read (a duplicate here)
    report = read_releases([corpus])
    assert all("swordfish" not in r.text for r in report.releases)
    reasons = {s.path: s.reason for s in report.skipped}
    assert "outside the folder" in reasons["corpus/passwd.md"]
    assert "duplicate" in reasons["corpus/alias.md"]


def test_8_a_file_name_cannot_forge_report_lines(tmp_path: Path) -> None:
    """Probe: a file name holding a newline forged extra "skipped" lines in the CLI output."""
    from qa.ingest.releases import Skipped

    s = Skipped("corpus/evil\nskipped corpus/other.md: forged.md", "empty file")
    assert "\n" not in str(s) and "\\n" in str(s)


def test_5_a_manifest_without_its_integrity_fields_is_refused(tmp_path: Path) -> None:
    """Probe: a manifest without `checksum` and `files` loaded with no check at all, and edited
    store text was quoted as if true."""
    import json

    emb = HashingEmbedder(dimension=64)
    path = _saved(tmp_path, emb)
    manifest = (path / "current").resolve() / "manifest.json"
    d = json.loads(manifest.read_text())
    for drop in ("checksum", "files"):
        manifest.write_text(json.dumps({k: v for k, v in d.items() if k != drop}))
        with pytest.raises(QAIndexError, match="release-qa index"):  # the rebuild hint
            Index.load(path, emb)


def test_5_an_edit_that_restores_the_modification_time_is_caught(tmp_path: Path) -> None:
    """Probe: a same-size edit of the store with its modification time set back went unseen."""
    import os

    emb = HashingEmbedder(dimension=64)
    path = _saved(tmp_path, emb)
    Index.load(path, emb)  # verified once: later loads trust unchanged files
    store = (path / "current").resolve() / "store.sqlite"
    st = store.stat()
    data = bytearray(store.read_bytes())
    i = data.find(b"Oslo") if b"Oslo" in data else data.find(b"city 1")
    data[i : i + 4] = b"Rome"
    store.write_bytes(bytes(data))
    os.utime(store, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.stat().st_size == st.st_size and store.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(QAIndexError, match="does not match its checksum"):
        Index.load(path, emb)


def test_7_uploads_are_not_embedded_again_by_the_next_make_chat(tmp_path: Path) -> None:
    """Probe: the chat named uploads `x.md`, the re-index of `<index>/uploads` named them
    `uploads/x.md`, so `make chat` dropped and embedded every upload again (53 files: 683 s)."""
    from qa import update_index

    emb = HashingEmbedder(dimension=64)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("The summit met in Oslo.\n")
    idx = tmp_path / "idx"
    settings = ChunkerSettings(annotator=None)
    update_index(idx, [corpus], embedder=emb, chunker=settings)
    chat = Assistant.load(idx, emb, reader="features")
    upload = tmp_path / "x.md"
    upload.write_text("---\ntitle: X\n---\n\nThe upload says the fund holds $5 million.\n")
    folder = idx / "uploads"
    folder.mkdir()
    result = add_uploads(chat, [(str(upload), "x.md")], folder)
    assert [r.path for r in result.added] == ["uploads/x.md"]
    again = update_index(idx, [corpus, folder], embedder=emb, chunker=settings)  # what `make chat` runs
    assert (again.added, again.removed) == (0, 0)


def test_8_html_nested_too_deep_is_refused_with_the_right_reason() -> None:
    """Probe: HTML nested 100k deep was skipped as having "no readable text"."""
    from qa import ReleaseError, read_bytes

    deep = ("<div>" * 100_000 + "The summit met in Oslo." + "</div>" * 100_000).encode()
    with pytest.raises(ReleaseError, match="nested too deeply"):
        read_bytes(deep, "deep.html")
    ok = b"<html><body><div><p>The summit met in Oslo on Tuesday, ministers said.</p><br><img src=x></div></body></html>"
    assert "Oslo" in read_bytes(ok, "ok.html")[0].text


def test_6_an_upload_too_costly_to_index_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """Probe: 1 MB of text with no sentence breaks took ~9 minutes of server CPU; the 20 MB limit
    allowed twenty times that."""
    emb = HashingEmbedder(dimension=64)
    chat = Assistant.load(_saved(tmp_path, emb), emb, reader="features")
    big = tmp_path / "big.txt"
    big.write_text("word " * 200_000)  # 1 MB, one endless sentence
    small = tmp_path / "small.md"
    small.write_text("The small release says the summit met in Oslo.\n")
    folder = tmp_path / "uploads"
    folder.mkdir()
    result = add_uploads(chat, [(str(big), "big.txt"), (str(small), "small.md")], folder)
    assert [r.path for r in result.added] == ["uploads/small.md"]  # the rest of the upload still goes in
    ((name, why),) = result.problems
    assert name == "uploads/big.txt" and "200,000 words" in why and "release-qa index" in why
    assert sorted(p.name for p in folder.iterdir()) == ["small.md"]


def test_8_the_loopback_chat_answers_only_requests_that_name_this_machine(tmp_path: Path) -> None:
    """Probe: the server answered any Host header and accepted cross-origin POSTs to /ask
    (DNS rebinding against a local server)."""
    import urllib.error
    import urllib.request

    from app.chat import build_app, launch
    from tests.app.test_app import free_port

    emb = HashingEmbedder(dimension=64)
    demo = build_app(Assistant.load(_saved(tmp_path, emb), emb, reader="features"))
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)

    def status(method: str, headers: dict[str, str]) -> int:
        req = urllib.request.Request(
            url + "gradio_api/info", method=method, headers=headers, data=b"{}" if method == "POST" else None
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert status("GET", {}) == 200
        assert status("GET", {"Host": f"localhost:{port}"}) == 200
        assert status("GET", {"Host": f"evil.example:{port}"}) == 403  # a rebound name
        assert status("POST", {"Origin": "http://evil.example"}) == 403  # a cross-site write
        assert status("POST", {"Origin": "null"}) == 403
        assert status("POST", {"Origin": f"http://127.0.0.1:{port}"}) != 403
    finally:
        demo.close()


def test_1_a_panic_while_answering_is_an_error_to_the_caller_not_a_hang(tmp_path: Path) -> None:
    """Probe: the tokenizer's panic (a BaseException) left /ask and the chat waiting forever."""
    from gradio_client import Client

    from app.chat import build_app, launch
    from tests.app.test_app import free_port

    class Panic(BaseException):  # what pyo3 raises: not an Exception
        pass

    emb = HashingEmbedder(dimension=64)
    assistant = Assistant.load(_saved(tmp_path, emb), emb, reader="features")

    def ask(*a, **k):  # type: ignore[no-untyped-def]
        raise Panic("the tokenizer panicked")

    assistant.ask = ask  # type: ignore[method-assign]
    demo = build_app(assistant)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    import threading

    outcome: list[BaseException | str] = []

    def call() -> None:
        try:
            outcome.append(
                Client(url, verbose=False).predict("Where did summit number 1 meet?", api_name="/ask")
            )
        except Exception as e:  # the error the caller should get
            outcome.append(e)

    try:
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(timeout=60)
        assert not caller.is_alive(), "the request hangs"
        (got,) = outcome
        assert isinstance(got, Exception) and "Something went wrong while answering" in str(got)
    finally:
        demo.close()
