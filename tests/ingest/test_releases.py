from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from qa import ReleaseError, read_bytes, read_file, read_releases
from tests.conftest import SEED


def test_markdown_front_matter(corpus_dir: Path) -> None:
    (rel,) = read_file(corpus_dir / "alpha.md")
    assert rel.title == "Ministers agree on ransomware cooperation"
    assert rel.date == dt.date(2021, 10, 14)
    assert rel.source == "Ministry of Examples"
    assert rel.url == "https://example.gov/alpha"
    assert dict(rel.metadata)["tags"] == json.dumps(["ransomware", "cooperation"])
    assert rel.text.startswith("Ministers from thirty countries")
    assert "---" not in rel.text


def test_text_title_is_first_line(corpus_dir: Path) -> None:
    (rel,) = read_file(corpus_dir / "gamma.txt")
    assert rel.title == "Cyber workforce summit announced"
    assert rel.date is None


def test_seed_corpus_reads() -> None:
    report = read_releases([SEED])
    assert not report.skipped
    (rel,) = report.releases
    assert rel.source == "Cyber Security Agency of Singapore"
    assert rel.title.startswith("ASEAN Member States Affirm")
    assert rel.path == "corpus/csa-asean-ministerial-conference-on-cybersecurity-2017.md"
    assert "Dr Yaacob Ibrahim" in rel.text
    # the scrape residue (title repeated at the end) is gone
    assert not rel.text.endswith(rel.title)


def test_ids_are_content_hashes_and_stable(corpus_dir: Path, tmp_path: Path) -> None:
    a = read_releases([corpus_dir]).releases
    b = read_releases([corpus_dir]).releases
    assert [r.id for r in a] == [r.id for r in b]
    assert len({r.id for r in a}) == 3
    # the same text under two names is indexed once
    (corpus_dir / "alpha-copy.md").write_bytes((corpus_dir / "alpha.md").read_bytes())
    report = read_releases([corpus_dir])
    assert len(report.releases) == 3
    assert any("duplicate of" in s.reason for s in report.skipped)


def test_html_main_text_without_scripts() -> None:
    page = b"""<html><head><title>Agency announces grants</title><script>alert('x')</script>
    <style>body{color:red}</style></head><body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
    <article><h1>Agency announces grants</h1><p>The agency announced 12 grants worth $5 million for
    rural broadband security on Monday, officials said in a statement.</p>
    <p>Applications open in June and close in September of next year.</p></article></body></html>"""
    (rel,) = read_bytes(page, "grants.html")
    assert "12 grants worth $5 million" in rel.text
    assert "alert" not in rel.text and "color:red" not in rel.text
    assert rel.title == "Agency announces grants"


def test_json_and_jsonl_records(tmp_path: Path) -> None:
    recs = [
        {"title": "One", "date": "2020-01-02", "source": "S", "text": "First release text here."},
        {"title": "Two", "text": "Second release text here."},
    ]
    (tmp_path / "r.json").write_text(json.dumps(recs))
    lines = [json.dumps(recs[0]), "{not json", json.dumps({"title": "Three", "text": "Third text."})]
    (tmp_path / "r.jsonl").write_text("\n".join(lines))
    report = read_releases([tmp_path])
    titles = sorted(r.title for r in report.releases)
    assert titles == ["One", "Three", "Two"]  # the duplicate "One" is kept once
    broken = [s for s in report.skipped if "not valid JSON" in s.reason]
    assert len(broken) == 1 and broken[0].path.endswith("#L2")


def test_pdf(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(200, 200)
    buf = tmp_path / "blank.pdf"
    with buf.open("wb") as f:
        w.write(f)
    with pytest.raises(ReleaseError, match="no extractable text"):
        read_file(buf)
    with pytest.raises(ReleaseError, match="not a readable PDF"):
        read_bytes(b"%PDF-1.4 garbage", "broken.pdf")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"   \n\n  ", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary file"),
        ("bad-yaml.md", b"---\ntitle: [unclosed\n---\nBody text.", "front matter is not valid YAML"),
        ("list-yaml.md", b"---\n- a\n- b\n---\nBody text.", "not a YAML mapping"),
        ("bad-date.md", b"---\ntitle: T\ndate: next tuesday\n---\nBody.", "is not a date"),
        ("scripts.html", b"<html><script>var a=1;</script><style>p{}</style></html>", "no readable text"),
        ("image.png", b"\x89PNG....", "unsupported file type"),
    ],
)
def test_bad_inputs_are_refused_with_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(ReleaseError, match=reason):
        read_bytes(data, name)


def test_non_utf8_text_is_decoded() -> None:
    text = "Café résumé: the Ministère announced new rules for naïve users today."
    (rel,) = read_bytes(text.encode("cp1252"), "latin.txt")
    assert rel.text == text


def test_bad_files_are_skipped_and_the_rest_read(corpus_dir: Path) -> None:
    (corpus_dir / "empty.txt").write_bytes(b"")
    (corpus_dir / "bin.txt").write_bytes(bytes(range(256)))
    (corpus_dir / "sub").mkdir()
    (corpus_dir / "sub" / "loop").symlink_to(corpus_dir, target_is_directory=True)
    report = read_releases([corpus_dir])
    assert len(report.releases) == 3
    reasons = {s.path.split("/")[-1]: s.reason for s in report.skipped}
    assert reasons == {
        "empty.txt": "empty file",
        "bin.txt": "binary file (contains NUL bytes), not text",
        "loop": "symlinked folder, not followed (it could loop)",
    }
    with pytest.raises(ReleaseError, match="bin.txt: binary file"):
        read_releases([corpus_dir], strict=True)


def test_missing_path() -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_releases([os.path.join("no", "such", "dir")])
