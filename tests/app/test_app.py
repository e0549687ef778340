"""The web chat: rendering and escaping, uploads, exposure rules, and the ``/ask`` API over HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import socket
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app import render
from app.chat import (
    build_app,
    check_exposure,
    example_questions,
    history_of,
    is_loopback,
    launch,
    make_filters,
    parse_auth,
)
from app.cli import main as cli_main
from app.uploads import MAX_UPLOAD_BYTES, UploadError, add_uploads, destination, safe_name
from qa import Answer, AnswererSettings, Assistant, Citation, HashingEmbedder, Index, Release, read_releases
from qa.serialize import answer_to_dict
from tests.conftest import SEED

HOSTILE = """---
title: "<img src=x onerror=alert(1)>Zorblat <script>alert(2)</script> news"
date: 2024-02-02
source: "<b onmouseover=alert(3)>Evil</b> Source"
url: "javascript:alert(4)"
---

The Zorblat Agency said its <script>alert(5)</script> new director is Quentin Flibbertigibbet <img src=x onerror=alert(6)>.
See [this](javascript:alert(7)) or <a href="javascript:alert(8)">here</a>.
"""

ALLOWED_TAGS = {"div", "span", "mark", "blockquote", "a", "b", "p", "ul", "li", "button"}
ALLOWED_ATTRS = {"class", "href", "target", "rel", "title", "type"}


class TagAudit(HTMLParser):
    """Collects every tag and attribute the browser would build from an HTML string."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_inert(html: str) -> None:
    """Only the renderer's own tags and attributes; links only http(s)."""
    audit = TagAudit()
    audit.feed(html)
    for tag, attrs in audit.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert name in ALLOWED_ATTRS or name.startswith("data-"), (tag, name, html)
            if name == "href":
                assert (value or "").startswith(("http://", "https://")), value


def release(text: str, **kw: object) -> Release:
    fields: dict[str, object] = {"id": "r1", "title": "T", "path": "p.md"} | kw
    return Release(text=text, **fields)  # type: ignore[arg-type]


def answer_at(text: str, start: int, end: int, s_start: int, s_end: int, **kw: object) -> Answer:
    """An answer quoting text[start:end] inside the sentence text[s_start:s_end]."""
    r = release(text, **kw)
    return Answer(
        question="q",
        text=text[start:end],
        sentence=text[s_start:s_end],
        score=0.8,
        citation=Citation.of(r, start, end),
        sentence_start=s_start,
        sentence_end=s_end,
    )


# ---------------------------------------------------------------- rendering


def test_highlight_escapes_and_nests() -> None:
    text = "a <b>bold</b> & c"
    out = render.highlight(text, [render.Span(0, 17, "outer", "span"), render.Span(2, 13, "qa-span")])
    assert out == '<span class="outer">a <mark class="qa-span">&lt;b&gt;bold&lt;/b&gt;</mark> &amp; c</span>'


def test_highlight_skips_crossing_spans_instead_of_breaking_markup() -> None:
    out = render.highlight("abcdef", [render.Span(0, 3, "x"), render.Span(2, 5, "y")])
    assert out == '<mark class="x">abc</mark>def'


def test_quote_is_marked_by_offsets_not_by_searching() -> None:
    text = "The fee was $5. Later the fee was $5 again."
    second = text.rindex("$5")
    a = answer_at(text, second, second + 2, 16, len(text))
    html = render.quote_html(a)
    assert html.count("<mark") == 1
    assert 'Later the fee was <mark class="qa-span">$5</mark> again.' in html


def test_inconsistent_offsets_mark_the_whole_quote() -> None:
    text = "One sentence here."
    a = answer_at(text, 0, 3, 0, len(text))
    bad = dataclasses.replace(a, sentence_start=10)
    assert 'class="qa-span">One sentence here.</mark>' in render.quote_html(bad)


@pytest.mark.parametrize("name", ["hostile.md", "hostile.txt"])
def test_hostile_release_renders_inert_everywhere(name: str) -> None:
    rel = read_releases_from_text(HOSTILE, name)
    start = rel.text.index("Quentin")
    end = start + len("Quentin Flibbertigibbet")
    s_start = rel.text.index("The Zorblat")
    s_end = rel.text.index(".", end) + 1
    a = Answer(
        question="Who is the director?",
        text=rel.text[start:end],
        sentence=rel.text[s_start:s_end],
        score=0.9,
        citation=Citation.of(rel, start, end),
        sentence_start=s_start,
        sentence_end=s_end,
    )
    for html in (
        render.reply_html(a),
        render.reply_html(a, upto=20),
        render.release_html(rel, (s_start, s_end), (start, end)),
        render.library_html([rel]),
        render.upload_report_html([rel], [("<img src=x onerror=alert(1)>.md", "<script>")]),
        render.header_html([rel]),
    ):
        assert_inert(html)
    if name.endswith(".txt"):  # plain text keeps the tags as text, shown escaped
        assert "&lt;script&gt;alert(5)&lt;/script&gt;" in render.reply_html(a)
    else:  # Markdown is read as a reader sees it: the inline script is not text at all
        assert "alert(5)" not in rel.text and "onerror" not in rel.text
    assert "Quentin Flibbertigibbet</mark>" in render.reply_html(a)


def read_releases_from_text(text: str, name: str = "hostile.md") -> Release:
    from qa import read_bytes

    (rel,) = read_bytes(text.encode(), name)
    return rel


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " data:text/html,<script>",
        'https://x.org/" onclick="alert(1)',
        "https://x.org/a b",
        "//evil.org",
        "",
        None,
    ],
)
def test_links_are_only_plain_http(url: str | None) -> None:
    assert render.safe_url(url) is None
    assert render.link(url, "x") == ""


def test_http_link_opens_safely() -> None:
    html = render.link("https://example.gov/a?b=1&c=2", "original")
    assert 'href="https://example.gov/a?b=1&amp;c=2"' in html
    assert 'rel="noopener noreferrer nofollow"' in html and 'target="_blank"' in html


def test_declined_reply_offers_closest_releases() -> None:
    a = Answer(question="q", text=None, sentence=None, score=0.1, citation=None)
    html = render.reply_html(a, total=12)
    assert render.DECLINED in html and "searched 12 releases" in html
    assert html.startswith('<div class="qa-reply qa-declined">')
    filtered = render.reply_html(a, total=12, filters=make_filters(None, None, ["X"]))
    assert "from X" in filtered and "searched" not in filtered


def test_reply_shows_follow_up_reading_filters_and_confidence() -> None:
    text = "Ministers met in Geneva on Tuesday."
    base = answer_at(text, 17, 23, 0, len(text), date=dt.date(2021, 10, 14), source="Ministry")
    a = dataclasses.replace(base, resolved_question="Where did they meet?")
    html = render.reply_html(a, filters=make_filters("2021-01-01", None, ["Ministry"]))
    assert "Read as a follow-up" in html and "Where did they meet?" in html
    assert "Only releases dated 2021-01-01 to …; from Ministry" in html
    assert "High confidence" in html and "2021-10-14" in html and "Ministry" in html


def test_sources_mark_the_answer_in_its_passage(assistant: Assistant) -> None:
    a = assistant.ask("How much was Riverside Hospital fined?")
    assert a.citation is not None
    html = render.sources_html(a)
    assert html.count('class="qa-span"') == 1 and "qa-source-answer" in html
    assert f'data-mark-start="{a.citation.start}"' in html
    assert render.sources_html(None).startswith('<div class="qa-sources qa-empty">')


def test_filters_and_dates() -> None:
    f = make_filters("2021-01-01", "2021-12-31T00:00:00", ["A"])
    assert (f.date_from, f.date_to, f.sources) == (dt.date(2021, 1, 1), dt.date(2021, 12, 31), ("A",))
    assert make_filters(None, "", []).empty
    with pytest.raises(ValueError, match="not a date"):
        make_filters("last week", None, None)
    with pytest.raises(ValueError, match="after"):
        make_filters("2022-01-01", "2021-01-01", None)


def test_history_is_plain_text() -> None:
    text = "Ministers met in Geneva."
    a = answer_at(text, 17, 23, 0, len(text))
    assert history_of([("Where?", a), ("And then?", None)]) == [
        {"role": "user", "content": "Where?"},
        {"role": "assistant", "content": "Geneva"},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": ""},
    ]


def test_example_questions_come_from_the_corpus(assistant: Assistant) -> None:
    qs = example_questions(list(assistant.index.releases.values()), n=3)
    titles = [r.title for r in assistant.index.releases.values()]
    assert len(qs) == 3 and all(any(t[:30] in q for t in titles) for q in qs)


# ---------------------------------------------------------------- uploads


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\windows\\evil.TXT", "evil.txt"),
        ("/abs/path/release.html", "release.html"),
        ("....md", "release.md"),
        (".hidden.md", "hidden.md"),
        ("a\x00b\x1f.md", "ab.md"),
        ("<img src=x onerror=alert(1)>.md", "img src_x onerror_alert_1.md"),
        ("x" * 500 + ".pdf", "x" * 116 + ".pdf"),
    ],
)
def test_safe_name_stays_inside_the_folder(name: str, expected: str) -> None:
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["evil.exe", "noext", "archive.md.zip", "../..", ""])
def test_unsupported_upload_types_are_refused(name: str) -> None:
    with pytest.raises(UploadError, match="unsupported file type"):
        safe_name(name)


def test_destination_never_overwrites_a_different_file(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("one")
    d = destination(tmp_path, "a.md", "f" * 64)
    assert d.parent == tmp_path.resolve() and d.name == "a-ffffffff.md"


def test_uploads_are_indexed_and_traversal_stays_inside(tmp_path: Path, assistant: Assistant) -> None:
    src = tmp_path / "incoming"
    src.mkdir()
    good = src / "upload.md"
    good.write_text(
        "---\ntitle: Zorblat news\n---\n\nThe Zorblat Agency named Quentin Flibbertigibbet director.\n"
    )
    bad = src / "bad.md"
    bad.write_bytes(b"")
    exe = src / "x.exe"
    exe.write_bytes(b"MZ")
    folder = tmp_path / "uploads"
    n = len(assistant.index.releases)
    result = add_uploads(
        assistant, [(str(good), "../../../../outside.md"), (str(bad), "bad.md"), (str(exe), "x.exe")], folder
    )
    assert [r.title for r in result.added] == ["Zorblat news"]
    assert len(assistant.index.releases) == n + 1
    assert sorted(p.name for p in folder.iterdir()) == ["outside.md"]
    assert not (tmp_path / "outside.md").exists()
    reasons = dict(result.problems)
    assert reasons["bad.md"] == "empty file" and "unsupported file type" in reasons["x.exe"]
    again = add_uploads(assistant, [(str(good), "outside.md")], folder)
    assert not again.added and "already indexed" in again.problems[0][1]
    assert sorted(p.name for p in folder.iterdir()) == ["outside.md"]


def test_oversized_upload_is_refused(tmp_path: Path, assistant: Assistant) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    result = add_uploads(assistant, [(str(big), "big.txt")], tmp_path / "uploads")
    assert not result.added and "over the 20 MB limit" in result.problems[0][1]


# ---------------------------------------------------------------- exposure


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "::", "example.org"))


def test_exposure_needs_a_password_or_an_explicit_override() -> None:
    check_exposure("127.0.0.1", None, False)
    check_exposure("0.0.0.0", ("u", "p"), False)
    check_exposure("0.0.0.0", None, True)
    with pytest.raises(ValueError, match="--auth"):
        check_exposure("0.0.0.0", None, False)


def test_parse_auth() -> None:
    assert parse_auth("alice:s3:cret") == ("alice", "s3:cret")
    assert parse_auth(None) is None and parse_auth("") is None
    for bad in ("alice", ":pw", "alice:"):
        with pytest.raises(ValueError, match="user:password"):
            parse_auth(bad)


def test_serve_refuses_other_hosts_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RELEASE_QA_AUTH", raising=False)
    rc = cli_main(["serve", "--index", str(tmp_path / "none"), "--host", "0.0.0.0"])
    assert rc == 2 and "refusing to serve on 0.0.0.0 without a password" in capsys.readouterr().err
    monkeypatch.setenv("RELEASE_QA_AUTH", "nocolon")
    rc = cli_main(["serve", "--index", str(tmp_path / "none"), "--host", "0.0.0.0"])
    assert rc == 2 and "user:password" in capsys.readouterr().err


def test_export_reader_names_a_missing_card_note_before_touching_anything(tmp_path: Path) -> None:
    out = tmp_path / "reader"
    with pytest.raises(SystemExit, match="no-such-note.md"):
        cli_main(
            ["export-reader", str(tmp_path / "ckpt"), "--out", str(out), "--card-note", "no-such-note.md"]
        )
    assert not out.exists()


# ---------------------------------------------------------------- the running app


# The hashing embedder is no real model, so the answerer's calibrated score means little here:
# these assistants answer every question (threshold 0), which is what rendering tests need.
ALWAYS = AnswererSettings(threshold=0.0)


@pytest.fixture
def assistant(corpus_dir: Path, embedder: HashingEmbedder) -> Assistant:
    return Assistant(
        Index.build(read_releases([corpus_dir, SEED]).releases, embedder), embedder, answerer=ALWAYS
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    from tests.conftest import RELEASES

    d = tmp_path_factory.mktemp("served")
    for name, text in RELEASES.items():
        (d / name).write_text(text, encoding="utf-8")
    emb = HashingEmbedder(dimension=256)
    a = Assistant(Index.build(read_releases([d, SEED]).releases, emb), emb, answerer=ALWAYS)
    demo = build_app(a, upload_dir=d / "uploads")
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url, a
    finally:
        demo.close()


def test_api_ask_returns_the_cli_json(served: tuple[str, Assistant]) -> None:
    from gradio_client import Client

    url, a = served
    assert url.startswith("http://127.0.0.1:")
    client = Client(url, verbose=False)
    q = "How much was Riverside Hospital fined?"
    text = client.predict(q, api_name="/ask")
    assert text == json.dumps(answer_to_dict(a.ask(q)), ensure_ascii=False, indent=2)
    got = json.loads(text)
    assert "$3 million" in got["answer"]["sentence"]


def test_api_ask_takes_a_history_for_follow_ups(served: tuple[str, Assistant]) -> None:
    from gradio_client import Client

    url, _ = served
    history = [
        {"role": "user", "content": "Who chaired the meeting in Geneva?"},
        {"role": "assistant", "content": "Dr. Jane Smith"},
    ]
    text = Client(url, verbose=False).predict(
        "And where will the next one be held?", history, api_name="/ask"
    )
    got = json.loads(text)
    assert got["resolved_question"].startswith("Who chaired the meeting in Geneva?")


def test_api_bad_questions_get_a_clear_error(served: tuple[str, Assistant]) -> None:
    from gradio_client import Client

    client = Client(served[0], verbose=False)
    for q, msg in (("   ", "empty"), ("x" * 100_000, "limit is")):
        with pytest.raises(Exception, match=msg):
            client.predict(q, api_name="/ask")


def test_only_ask_is_public(served: tuple[str, Assistant]) -> None:
    from gradio_client import Client

    api = Client(served[0], verbose=False).view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/ask"]
    assert not api["unnamed_endpoints"]


def test_password_protects_the_chat_and_the_api(assistant: Assistant) -> None:
    from gradio_client import Client

    demo = build_app(assistant)
    _, url, _ = launch(demo, port=free_port(), auth=("alice", "s3cret"), prevent_thread_lock=True, quiet=True)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the client raises its own error kinds
            Client(url, verbose=False).predict("Who chaired the meeting?", api_name="/ask")
        got = Client(url, auth=("alice", "s3cret"), verbose=False).predict(
            "Who chaired the meeting?", api_name="/ask"
        )
        assert json.loads(got)["question"] == "Who chaired the meeting?"
    finally:
        demo.close()


def test_replies_stream_from_searching_to_the_full_answer(assistant: Assistant) -> None:
    demo = build_app(assistant)
    respond = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "respond")
    frames = list(respond("How much was Riverside Hospital fined?", [], [], None, None, []))
    assert "Searching 4 releases" in frames[0][1][-1]["content"]
    assert any("qa-cursor" in f[1][-1]["content"] for f in frames[1:-1])
    box, chat, turns, sources, viewer = frames[-1]
    assert box == "" and [m["role"] for m in chat] == ["user", "assistant"]
    assert "qa-cite" in chat[-1]["content"] and "qa-source-answer" in sources and "qa-target" in viewer
    ((question, answer),) = turns
    assert question == "How much was Riverside Hospital fined?" and answer.citation is not None
    follow = list(respond("And what did it agree to?", chat, turns, "2019-01-01", None, ["Health Agency"]))
    assert "Only releases dated 2019-01-01" in follow[-1][1][-1]["content"]
    bad = list(respond("Who?", [], [], "yesterday", None, []))
    assert "not a date" in bad[-1][1][-1]["content"]


def test_uploads_persist_in_the_index(tmp_path: Path, corpus_dir: Path, embedder: HashingEmbedder) -> None:
    idx = tmp_path / "index"
    Index.build(read_releases([corpus_dir]).releases, embedder).save(idx)
    a = Assistant.load(idx, embedder)
    f = tmp_path / "new.md"
    f.write_text("---\ntitle: Kestrel Bay port news\n---\n\nThe port of Kestrel Bay trained 450 workers.\n")
    result = add_uploads(a, [(str(f), "new.md")], idx / "uploads")
    assert [r.title for r in result.added] == ["Kestrel Bay port news"]
    reloaded = Assistant.load(idx, embedder)
    assert "Kestrel Bay port news" in {r.title for r in reloaded.index.releases.values()}
    assert (idx / "uploads" / "new.md").read_text() == f.read_text()


def visible_text(html: str) -> str:
    """What the browser shows as text: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.parametrize(
    "spans",
    [
        [render.Span(-20, -10, "a"), render.Span(50, 80, "b"), render.Span(3, 3, "c")],
        [render.Span(0, 4, "a"), render.Span(2, 6, "b"), render.Span(5, 9, "c")],
        [render.Span(0, 9, "a"), render.Span(0, 9, "b"), render.Span(1, 2, "c", "span")],
    ],
)
def test_highlight_never_loses_or_repeats_text(spans: list[render.Span]) -> None:
    text = "a<b>&c'd\"e"
    assert visible_text(render.highlight(text, spans)) == text


def test_every_panel_shows_the_text_exactly_once(assistant: Assistant) -> None:
    for q in ("How much was Riverside Hospital fined?", "Where will the next meeting be held?"):
        a = assistant.ask(q)
        html = render.sources_html(a)
        for h in a.hits:
            assert visible_text(render.highlight(h.passage.text, render.term_spans(h.passage.text, q))) == (
                h.passage.text
            )
            assert h.passage.text in visible_text(html)
        assert a.citation is not None
        rel = assistant.index.releases[a.citation.release_id]
        view = render.release_html(
            rel, (a.sentence_start, a.sentence_end), (a.citation.start, a.citation.end)
        )
        assert rel.text in visible_text(view)


def test_the_library_pages_and_filters_by_category() -> None:
    """A 10,000-release archive: the Library shows one page at a time, newest first, and the
    front matter's category narrows it."""
    import datetime as dt

    from qa import make_release

    rels = [
        make_release(
            f"Release {i} says something.",
            path=f"r{i}.md",
            title=f"Release {i}",
            date=dt.date(2024, 1, 1) + dt.timedelta(days=i),
            metadata={"category": "fact-sheets" if i % 3 == 0 else "statements-releases"},
        )
        for i in range(250)
    ]
    assert render.library_categories(rels) == ["fact-sheets", "statements-releases"]
    first = render.library_html(rels)
    assert "250 of 250 releases · page 1 of 3" in first and first.count("qa-lib-item") == render.LIBRARY_PAGE
    assert first.index(">Release 249<") < first.index(">Release 248<")  # newest first
    last = render.library_html(rels, page=3)
    assert last.count("qa-lib-item") == 50 and ">Release 0<" in last
    assert render.library_html(rels, page=99).count("qa-lib-item") == 50  # past the end: the last page
    facts = render.library_html(rels, category="fact-sheets")
    assert "84 of 250 releases" in facts and ">Release 1<" not in facts
    assert "1 of 250 releases" in render.library_html(rels, "release 249")


def test_a_calibrations_command_keeps_its_settings_and_drops_this_machines_paths() -> None:
    from app.cli import CALIBRATION_PLACES, build_parser, settings_command

    argv = (
        "calibrate-reader --archive /data/wh --collected /tmp/c.npz --precision int8 --limit 400 "
        "--select-features margin,retrieval"
    )
    args = vars(build_parser().parse_args(argv.split()))
    defaults = vars(build_parser().parse_args(["calibrate-reader"]))
    command = settings_command("release-qa calibrate-reader", args, defaults, CALIBRATION_PLACES)
    assert command == (
        "release-qa calibrate-reader --limit 400 --precision int8 --select-features margin,retrieval"
    )
    # what it records parses back to the same settings
    again = vars(build_parser().parse_args(command.split()[1:]))
    keys = ("limit", "precision", "features", "select_features")
    assert {k: again[k] for k in keys} == {k: args[k] for k in keys}


def test_a_recalibration_keeps_the_shipped_recipe_or_the_projects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After export-reader (no calibration beside the reader) a bare calibrate-reader fits the
    project's recipe, 4 passages and the selection model, not 3 passages and none; otherwise the
    shipped calibration's; flags win; what it fits is what the recorded command says."""
    import argparse

    from app.cli import build_parser, calibration_recipe
    from qa.answer.neural import READ_PASSAGES, RECIPE, SELECT_RECIPE, Calibration

    def parsed(extra: str = "") -> argparse.Namespace:
        return build_parser().parse_args(["calibrate-reader", *extra.split()])

    args = parsed()
    assert calibration_recipe(args, tmp_path / "none.json") == (RECIPE, SELECT_RECIPE)
    assert args.passages == READ_PASSAGES == 4 and args.select_features == ",".join(SELECT_RECIPE)
    Calibration((1.0,), 0.0, 0.3, ("margin",), passages=3).save(tmp_path / "c.json")
    args = parsed()
    assert calibration_recipe(args, tmp_path / "c.json") == (("margin",), ())
    assert args.passages == 3 and args.select_features == ""
    args = parsed("--passages 5 --select-features margin,retrieval_top --features margin,gap")
    assert calibration_recipe(args, tmp_path / "c.json") == (("margin", "gap"), ("margin", "retrieval_top"))
    assert args.passages == 5
    with pytest.raises(SystemExit, match="--passages must be >= 1, got 0"):
        calibration_recipe(parsed("--passages 0"), tmp_path / "c.json")


def test_train_open_reader_options_reach_the_runs_config() -> None:
    from app.cli import build_parser, open_reader_config

    argv = "train-open-reader --max-minutes 6.5 --decay-by-time --press-answer any --press-every 2"
    cfg = open_reader_config(build_parser().parse_args(argv.split()))
    assert (cfg.max_minutes, cfg.decay_by_time, cfg.press_answer, cfg.press_every) == (6.5, True, "any", 2)
    plain = open_reader_config(build_parser().parse_args(["train-open-reader"]))
    assert (plain.decay_by_time, plain.press_answer) == (False, "first")
    with pytest.raises(ValueError, match="needs max_minutes"):
        open_reader_config(build_parser().parse_args(["train-open-reader", "--decay-by-time"]))
