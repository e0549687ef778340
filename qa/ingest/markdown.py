"""Markdown bodies read as the text a reader sees.

A real archive delivers releases as Markdown: hard-wrapped lines, ``[text](url)`` links,
``**emphasis**``, backslash escapes, lists, tables and stray HTML. The library quotes and
cites ``Release.text``, so that text must be what a reader sees, not the syntax: a parser
(markdown-it-py, CommonMark with tables) reads the body and this module walks its tokens.

What comes out: one line per paragraph (hard-wrapped lines joined by a space), heading or
list item; a blank line between blocks (list items of one list are kept on adjacent lines);
link text without its URL (the links are returned beside the text); no emphasis markers or
escapes; table rows as lines with their cells joined by "; "; HTML reduced to its text.
Ordered lists keep their numbers ("1. "), since a reader sees them; bullets are dropped.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

_SPACES = re.compile(r"[ \t\u00a0]+")
_HIDDEN_OPEN = re.compile(r"<(script|style)\b", re.I)
_HIDDEN_CLOSE = re.compile(r"</(script|style)\s*>", re.I)
_UNPAIRED = re.compile(r"\*+|\]\((?:https?|mailto):[^)\s]*\)")
"""Emphasis runs the parser left as text: sloppy archives write "**Heading. **", whose closing
run follows a space and so cannot close; a reader's browser would show the asterisks. Likewise
the "](url)" tail of a link whose text a blank line broke. Literal asterisks in a Markdown
archive are escaped ("\\*"), and escapes are kept."""


@dataclass(frozen=True, slots=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    links: tuple[Link, ...]


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # text_join would merge backslash escapes into the text around them; kept apart, an escaped
    # "\\*\\*" stays literal while an unmatched "**" (emphasis CommonMark could not pair) is dropped.
    # Indented code blocks are off: in a press archive indentation is layout (an exported
    # executive order indents whole sections), never code. Fenced code stays code.
    return MarkdownIt("commonmark", {"html": True}).enable("table").disable(["text_join", "code"])


class _HTMLText(HTMLParser):
    """Text of an HTML fragment; block tags end a line, scripts and styles are dropped."""

    BLOCK = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "ul",
            "ol",
            "table",
            "blockquote",
            "section",
            "article",
            "header",
            "footer",
        ]
    )
    SKIP = frozenset(("script", "style", "head", "title"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":  # a row's last cell needs no separator
            while self.parts and not self.parts[-1].strip():
                self.parts.pop()
            if self.parts and self.parts[-1] == "; ":
                self.parts.pop()
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK or tag in ("td", "th"):
            self.parts.append("\n" if tag in self.BLOCK else "; ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # the source's line breaks between tags are layout; only block tags end a line
            self.parts.append(data if data.strip() else " ")


def html_text(fragment: str) -> str:
    """The visible text of an HTML fragment, one line per block."""
    p = _HTMLText()
    p.feed(fragment)
    p.close()
    return "".join(p.parts)


def _clean_line(s: str) -> str:
    return _SPACES.sub(" ", s).strip()


def _inline(children: list[Any], links: list[Link]) -> str:
    """The text of an inline token stream: softbreaks join lines, links keep their text."""
    out: list[str] = []
    link_stack: list[tuple[str, int]] = []  # (href, where its text starts in out)
    hidden = 0  # inside an inline <script> or <style>: nothing a reader sees
    for t in children:
        kind = t.type
        if kind == "html_inline" and _HIDDEN_OPEN.match(t.content):
            hidden += 1
            continue
        if kind == "html_inline" and _HIDDEN_CLOSE.match(t.content):
            hidden = max(0, hidden - 1)
            continue
        if hidden:
            continue
        if kind == "text":
            out.append(_UNPAIRED.sub("", t.content))
        elif kind in ("text_special", "code_inline"):  # an escape or code: literal
            out.append(t.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            out.append(t.content)  # the alt text
        elif kind == "html_inline":
            out.append(html_text(t.content))
        elif kind == "link_open":
            link_stack.append((str(t.attrGet("href") or ""), len(out)))
        elif kind == "link_close" and link_stack:
            href, at = link_stack.pop()
            text = _clean_line("".join(out[at:]))
            if href and text:
                links.append(Link(text, href))
        # em/strong/s open and close: markers only, nothing to keep
    return "".join(out)


def render_markdown(source: str) -> Rendered:
    """The text a reader sees of a Markdown body, and the links it holds (in order)."""
    # A no-break space counts as white space to CommonMark, so "end.\u00a0**" would leave the
    # "**" as literal text; the output turns it into a plain space anyway.
    tokens = _parser().parse(source.replace("\u00a0", " "))
    links: list[Link] = []
    blocks: list[tuple[str, int]] = []  # (text, list group: 0 outside lists)
    list_depth = 0
    group = 0
    html_group = -1  # negative: never a list's group (those count up from 1), never 0 (no group)
    ordered: list[int | None] = []  # per open list: the next item number, None for bullets
    prefix = ""
    row: list[str] = []
    in_cell = False
    for t in tokens:
        kind = t.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            if list_depth == 0:
                group += 1
            list_depth += 1
            start = t.attrGet("start")
            ordered.append(int(start) if start is not None else 1 if kind == "ordered_list_open" else None)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
            ordered.pop()
        elif kind == "list_item_open":
            n = ordered[-1] if ordered else None
            if n is not None:
                prefix = f"{n}{t.markup or '.'} "
                ordered[-1] = n + 1
        elif kind == "tr_open":
            row = []
        elif kind in ("th_open", "td_open"):
            in_cell = True
        elif kind in ("th_close", "td_close"):
            in_cell = False
        elif kind == "tr_close":
            line = "; ".join(c for c in row if c)
            if line:
                blocks.append((line, -1))
        elif kind == "inline":
            text = _inline(t.children or [], links)
            if in_cell:
                row.append(_clean_line(text))
                continue
            for line in text.split("\n"):
                line = _clean_line(line)
                if line:
                    blocks.append((prefix + line, group if list_depth else 0))
                    prefix = ""
        elif kind in ("code_block", "fence"):
            lines = [ln.rstrip() for ln in t.content.split("\n")]
            body = "\n".join(ln for ln in lines if ln.strip())
            if body:
                blocks.append((body, 0))
        elif kind == "html_block":
            html_group -= 1  # lines of one HTML block (a table's rows) stay on adjacent lines
            for line in html_text(t.content).split("\n"):
                line = _clean_line(line)
                if line:
                    blocks.append((line, html_group))
    return Rendered(_join(blocks), tuple(links))


def _join(blocks: list[tuple[str, int]]) -> str:
    """Blocks on their own lines: a blank line between them, none inside one list or table."""
    out: list[str] = []
    prev: int | None = None
    for text, grp in blocks:
        if out:
            same = grp != 0 and grp == prev
            out.append("\n" if same else "\n\n")
        out.append(text)
        prev = grp
    return "".join(out)
