"""Markdown bodies are read as the text a reader sees (issue 15, part 1)."""

from __future__ import annotations

import json
import random
import re

from qa import Chunker, read_bytes, read_file
from qa.ingest.markdown import html_text, render_markdown
from tests.conftest import ROOT, SHARED, need_shared

SYNTAX = re.compile(
    r"\]\(https?:"  # a link's URL part
    r"|\\[\\`*_{}\[\]()#+\-.!]"  # a backslash escape
    r"|</?[a-zA-Z][^>]*>"  # an HTML tag
    r"|\*\*\w|\w\*\*|(?<![\w*])\*\w[^*\n]*\w\*(?![\w*])"  # emphasis markers around words
    r"|(?<!\w)__\w|\w__(?!\w)"
    r"|^#{1,6} \w"  # an ATX heading marker
    r"|^[-+*] \w",  # a bullet
    re.M,
)
"""What Markdown syntax looks like in text; literal characters that an archive escaped (a lone
"*" footnote mark, "***" as a separator, "# # #") are text, not syntax."""


def test_wrapped_lines_of_a_paragraph_are_joined() -> None:
    r = render_markdown("President Biden is scheduled to travel\nto the United Kingdom,\nLithuania.\n")
    assert r.text == "President Biden is scheduled to travel to the United Kingdom, Lithuania."


def test_paragraphs_headings_and_lists_are_lines() -> None:
    src = "# Fact sheet\n\nFirst para\nwrapped.\n\n-   one item\n    wrapped\n-   two\n\nAfter.\n"
    assert render_markdown(src).text == "Fact sheet\n\nFirst para wrapped.\n\none item wrapped\ntwo\n\nAfter."


def test_ordered_lists_keep_their_numbers() -> None:
    assert render_markdown("3. first\n4. second\n").text == "3. first\n4. second"


def test_a_body_that_is_only_a_list() -> None:
    r = render_markdown("* alpha\n* beta\n  * nested gamma\n")
    assert r.text == "alpha\nbeta\nnested gamma"


def test_nested_emphasis_and_escapes() -> None:
    r = render_markdown(r"**Bold with *italic* inside** and \*literal\* and \[bracket\] \#1" + "\n")
    assert r.text == "Bold with italic inside and *literal* and [bracket] #1"


def test_unpaired_emphasis_is_dropped() -> None:
    # the closing run follows a space, so CommonMark cannot pair it
    r = render_markdown("**Create more vaccination sites. **Getting people vaccinated.\n")
    assert r.text == "Create more vaccination sites. Getting people vaccinated."
    # a no-break space before the closing run
    assert render_markdown("**Stand up centers.\u00a0**Getting shots.\n").text == (
        "Stand up centers. Getting shots."
    )


def test_links_keep_their_text_and_are_returned() -> None:
    r = render_markdown("See [the [2023] plan](https://example.gov/plan?a=1) and [x](<https://e.gov/a b>).\n")
    assert r.text == "See the [2023] plan and x."
    assert [(lk.text, lk.url) for lk in r.links] == [
        ("the [2023] plan", "https://example.gov/plan?a=1"),
        ("x", "https://e.gov/a%20b"),
    ]


def test_tables_become_rows() -> None:
    src = "| Program | Amount |\n|---|---|\n| Child care | $39 billion |\n| Head Start | $1 billion |\n"
    assert render_markdown(src).text == "Program; Amount\nChild care; $39 billion\nHead Start; $1 billion"


def test_html_inside_markdown_is_text() -> None:
    src = 'Before.\n\n<div class="x"><p>Inside <b>bold</b></p><script>evil()</script></div>\n\nA <u>Sec</u>. 2.\n'
    assert render_markdown(src).text == "Before.\n\nInside bold\n\nA Sec. 2."
    assert html_text("<table><tr><td>a</td><td>b</td></tr></table>").split() == ["a;", "b"]


def test_an_html_table_keeps_each_row_on_one_line() -> None:
    """Exported archives put every cell on its own source line; a row is still one line of text."""
    src = "Before.\n\n<table>\n<tr>\n<td>Florida</td>\n<td>272</td>\n</tr>\n<tr>\n<td>Georgia</td>\n<td>10</td>\n</tr>\n</table>\n"
    assert render_markdown(src).text == "Before.\n\nFlorida; 272\nGeorgia; 10"


def test_indented_text_is_not_code() -> None:
    src = "    Sec. 2.  **Policy**.  It is the policy\n    of my Administration.\n"
    assert render_markdown(src).text == "Sec. 2. Policy. It is the policy of my Administration."


def test_release_text_is_the_rendered_text_and_links_are_metadata() -> None:
    data = b'---\ntitle: "T"\n---\n\nThe **Secretary** met\n[Dr. Jane Roe](https://e.gov/roe) today.\n'
    (rel,) = read_bytes(data, "a.md")
    assert rel.text == "The Secretary met Dr. Jane Roe today."
    assert json.loads(dict(rel.metadata)["links"]) == [["Dr. Jane Roe", "https://e.gov/roe"]]
    i = rel.text.index("Dr. Jane Roe")
    assert rel.text[i : i + len("Dr. Jane Roe")] == "Dr. Jane Roe"


def test_real_markdown_releases_quote_clean_text() -> None:
    """A seeded sample of the real archive: no sentence or passage shows Markdown syntax, and
    hard wraps no longer split sentences (one line per paragraph)."""
    folder = need_shared(SHARED / "corpus" / "wh-briefings")
    files = sorted(folder.glob("*.md"))
    sample = random.Random(7).sample(files, 150)
    chunker = Chunker()
    sentences = wrapped = 0
    for f in sample:
        (rel,) = read_file(f)
        raw = f.read_text(encoding="utf-8")
        wrapped += raw.count("\n")
        for p in chunker.chunk(rel):
            assert rel.text[p.start : p.end] == p.text
            assert not SYNTAX.search(p.text), (f.name, SYNTAX.search(p.text), p.text[:300])
            sentences += len(p.sentences)
    # the raw files have ~4x more lines than the text has sentences
    assert sentences < wrapped / 2


def test_shared_clean_markdown_keeps_press_dev_answers() -> None:
    """us-gov-cyber is clean text in .md files: reading it as Markdown keeps every gold span."""
    folder = need_shared(SHARED / "corpus" / "us-gov-cyber")
    root = ROOT
    rows = [json.loads(x) for x in (root / "evals" / "datasets" / "press-dev.jsonl").read_text().splitlines()]
    texts: dict[str, str] = {}
    for r in rows:
        if r["release"] is None:
            continue
        name = r["release"]
        if name not in texts:
            path = root / "corpus" / name if (root / "corpus" / name).exists() else folder / name
            texts[name] = read_file(path)[0].text
        assert any(a in texts[name] for a in r["answers"]), (r["id"], r["answers"])
