"""HTML for the chat: replies, sources, the release viewer and the library list.

Release text, titles, sources, paths and file names are untrusted. Every one of
them goes through ``esc`` (or ``safe_url``) here, so no markup from a release ever
reaches the page; all tags in the output are written by this module.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qa import Answer, Filters, Hit, Release
from qa.text import content_words

DECLINED = "The releases I have don't answer this."

_URL = re.compile(r"^https?://[^\s\"'<>`\\]+$", re.I)
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*")


def esc(text: object) -> str:
    """Escape for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def safe_url(url: str | None) -> str | None:
    """The URL when it is a plain http(s) link, else None (no ``javascript:``, no quotes)."""
    if url and _URL.match(url.strip()):
        return url.strip()
    return None


def link(url: str | None, label: str) -> str:
    u = safe_url(url)
    if u is None:
        return ""
    return (
        f'<a class="qa-link" href="{esc(u)}" target="_blank" rel="noopener noreferrer nofollow">'
        f"{esc(label)}</a>"
    )


def meta_line(release_date: object, source: str | None, url: str | None = None) -> str:
    parts = [esc(x) for x in (release_date, source) if x]
    if url:
        parts.append(link(url, "original ↗"))
    return " · ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range of a text to wrap in ``<tag class=cls>``."""

    start: int
    end: int
    cls: str
    tag: str = "mark"


def highlight(text: str, spans: Iterable[Span]) -> str:
    """Escape ``text`` and wrap the given ranges; ranges may nest but not cross.

    Offsets come from the library (never from searching the text), so a quote that
    occurs twice is highlighted where it was actually found.
    """
    n = len(text)
    clipped = (Span(max(0, s.start), min(n, s.end), s.cls, s.tag) for s in spans)
    clean = sorted((s for s in clipped if s.start < s.end), key=lambda s: (s.start, -s.end))
    out: list[str] = []
    stack: list[Span] = []
    pos = 0
    for s in clean:
        while stack and stack[-1].end <= s.start:
            top = stack.pop()
            out.append(esc(text[pos : top.end]) + f"</{top.tag}>")
            pos = top.end
        if s.start < pos or (stack and s.end > stack[-1].end):
            continue  # crosses another span: skip rather than emit broken markup or repeat text
        out.append(esc(text[pos : s.start]) + f'<{s.tag} class="{s.cls}">')
        pos = s.start
        stack.append(s)
    while stack:
        top = stack.pop()
        out.append(esc(text[pos : top.end]) + f"</{top.tag}>")
        pos = top.end
    out.append(esc(text[pos:]))
    return "".join(out)


def term_spans(text: str, question: str, cls: str = "qa-term") -> list[Span]:
    """Words of ``text`` that the question also uses (the library's notion of content words)."""
    wanted = content_words(question)
    if not wanted:
        return []
    return [
        Span(m.start(), m.end(), cls, "span")
        for m in _WORD.finditer(text)
        if content_words(m.group()) & wanted
    ]


# ---------------------------------------------------------------- replies


def quote_html(answer: Answer, upto: int | None = None) -> str:
    """The answer's sentence with the answer span marked; ``upto`` cuts it for streaming."""
    assert answer.text is not None and answer.citation is not None
    sentence, base = answer.sentence, answer.sentence_start
    if sentence is None or base is None:
        sentence, base = answer.text, answer.citation.start
    s, e = answer.citation.start - base, answer.citation.end - base
    if not (0 <= s <= e <= len(sentence)):
        s, e = 0, len(sentence)  # inconsistent offsets: mark the whole quote, never guess
    shown = sentence if upto is None else sentence[:upto]
    body = highlight(shown, [Span(s, min(e, len(shown)), "qa-span")])
    cursor = '<span class="qa-cursor">▍</span>' if upto is not None and upto < len(sentence) else ""
    return f'<blockquote class="qa-quote">{body}{cursor}</blockquote>'


def confidence_html(answer: Answer) -> str:
    c = answer.confidence
    words = {
        "high": "High confidence",
        "medium": "Medium confidence",
        "low": "Low confidence: check the release",
    }.get(c, c)
    return f'<span class="qa-conf qa-conf-{esc(c)}" title="score {answer.score:.2f}">{esc(words)}</span>'


def filters_note(filters: Filters | None) -> str:
    if filters is None or filters.empty:
        return ""
    parts = []
    if filters.date_from or filters.date_to:
        lo = filters.date_from.isoformat() if filters.date_from else "…"
        hi = filters.date_to.isoformat() if filters.date_to else "…"
        parts.append(f"dated {lo} to {hi}")
    if filters.sources:
        parts.append("from " + ", ".join(filters.sources))
    return "Only releases " + "; ".join(parts)


def reply_html(
    answer: Answer, *, filters: Filters | None = None, upto: int | None = None, total: int | None = None
) -> str:
    """One assistant message: the quote in its sentence, the citation card, confidence."""
    head = []
    if answer.resolved_question:
        head.append(f'<div class="qa-note">Read as a follow-up: “{esc(answer.resolved_question)}”</div>')
    note = filters_note(filters)
    if note:
        head.append(f'<div class="qa-note qa-filter-note">{esc(note)}</div>')
    if answer.text is None or answer.citation is None:
        where = total if filters is None or filters.empty else None
        return f'<div class="qa-reply qa-declined">{"".join(head)}{declined_html(answer, where)}</div>'
    c = answer.citation
    card = (
        '<div class="qa-cite">'
        f'<div class="qa-cite-title">{esc(c.title)}</div>'
        f'<div class="qa-cite-meta">{meta_line(c.date, c.source, c.url)}</div>'
        f'<div class="qa-cite-path">{esc(c.path)} · characters {c.start}–{c.end}</div>'
        "</div>"
    )
    if upto is not None:
        return f'<div class="qa-reply">{"".join(head)}{quote_html(answer, upto)}</div>'
    foot = (
        f'<div class="qa-foot">{confidence_html(answer)}'
        '<span class="qa-hint">Click this reply to read it in its release</span></div>'
    )
    alts = alternatives_html(answer)
    return f'<div class="qa-reply">{"".join(head)}{quote_html(answer)}{card}{alts}{foot}</div>'


def alternatives_html(answer: Answer) -> str:
    """The other spans worth a look: the next best ones beside a low-confidence answer, or the
    other releases (each year's edition of an event) that answer nearly as well."""
    if not answer.alternatives:
        return ""
    texts = {h.release.id: h.release.text for h in answer.hits}
    items = []
    for c in answer.alternatives:
        quote = texts.get(c.release_id, "")[c.start : c.end]
        said = f"“{esc(quote)}” — " if quote else ""
        items.append(
            f'<li>{said}<span class="qa-cite-title">{esc(c.title)}</span> '
            f'<span class="qa-cite-meta">{meta_line(c.date, c.source)}</span></li>'
        )
    label = "Other candidates to check" if answer.confidence == "low" else "Also answered by"
    return f'<div class="qa-note">{label}:</div><ul class="qa-alternatives">{"".join(items)}</ul>'


def declined_html(answer: Answer, total: int | None = None) -> str:
    """The refusal and the closest releases (inside a reply's ``qa-reply`` div)."""
    closest = []
    seen: set[str] = set()
    for h in answer.hits:
        if h.release.id in seen:
            continue
        seen.add(h.release.id)
        closest.append(
            f'<li><span class="qa-cite-title">{esc(h.release.title)}</span> '
            f'<span class="qa-cite-meta">{meta_line(h.release.date, h.release.source)}</span></li>'
        )
        if len(closest) == 3:
            break
    more = (
        '<div class="qa-note">Closest releases (their passages are in Sources):</div>'
        f'<ul class="qa-closest">{"".join(closest)}</ul>'
        if closest
        else ""
    )
    where = f" (searched {total} releases)" if total else ""
    return f'<p class="qa-declined-msg">{DECLINED}{esc(where)}</p>{more}'


def pending_html(total: int) -> str:
    return f'<div class="qa-reply qa-pending">Searching {total} releases…</div>'


def error_html(message: str) -> str:
    return f'<div class="qa-reply qa-error">{esc(message)}</div>'


def user_html(question: str) -> str:
    return f'<div class="qa-user">{esc(question)}</div>'


def plain_reply(answer: Answer) -> str:
    """What the chat history remembers of a reply (the library reads plain text)."""
    return answer.text if answer.text is not None else DECLINED


# ---------------------------------------------------------------- sources


def open_button(
    release_id: str, start: int, end: int, mark: tuple[int, int] | None = None, label: str = "Open in release"
) -> str:
    ms, me = mark if mark is not None else (-1, -1)
    return (
        f'<button type="button" class="qa-open" data-release="{esc(release_id)}" '
        f'data-start="{int(start)}" data-end="{int(end)}" data-mark-start="{int(ms)}" '
        f'data-mark-end="{int(me)}">{esc(label)}</button>'
    )


def sources_html(answer: Answer | None) -> str:
    """The top passages for an answer: answer span marked, shared words tinted."""
    if answer is None:
        return (
            '<div class="qa-sources qa-empty">Ask a question: the passages the answer was drawn '
            "from appear here, each with a link to the whole release.</div>"
        )
    if not answer.hits:
        return '<div class="qa-sources qa-empty">No passages matched (check the filters).</div>'
    q = answer.resolved_question or answer.question
    cards = [f'<div class="qa-sources-h">{len(answer.hits)} passages for “{esc(q)}”</div>']
    c = answer.citation
    marked = False
    for rank, h in enumerate(answer.hits, 1):
        p = h.passage
        holds = c is not None and c.release_id == p.release_id and p.start <= c.start and c.end <= p.end
        cards.append(source_card(h, rank, answer, q, is_answer=holds and not marked))
        marked = marked or holds
    return f'<div class="qa-sources">{"".join(cards)}</div>'


def source_card(h: Hit, rank: int, answer: Answer, question: str, *, is_answer: bool) -> str:
    """One passage; ``is_answer`` (the first passage holding the quote) marks the quote in it."""
    p = h.passage
    spans = term_spans(p.text, question)
    c = answer.citation
    if is_answer and c is not None:
        lo, hi = c.start - p.start, c.end - p.start
        spans = [s for s in spans if s.end <= lo or s.start >= hi]  # terms never cross the answer
        spans.append(Span(lo, hi, "qa-span"))
    badge = '<span class="qa-badge">answer</span>' if is_answer else ""
    return (
        f'<div class="qa-source{" qa-source-answer" if is_answer else ""}">'
        f'<div class="qa-source-head"><span class="qa-rank">{rank}</span>'
        f'<span class="qa-cite-title">{esc(h.release.title)}</span>{badge}'
        "</div>"
        f'<div class="qa-cite-meta">{meta_line(h.release.date, h.release.source, h.release.url)}</div>'
        f'<div class="qa-source-text">{highlight(p.text, spans)}</div>'
        f"{open_button(p.release_id, p.start, p.end, (c.start, c.end) if is_answer and c else None)}"
        "</div>"
    )


# ---------------------------------------------------------------- release viewer


def release_html(
    release: Release | None, region: tuple[int, int] | None = None, mark: tuple[int, int] | None = None
) -> str:
    """The whole release, ``region`` (sentence or passage) tinted and ``mark`` highlighted.

    The element with class ``qa-target`` is what the viewer scrolls to.
    """
    if release is None:
        return (
            '<div class="qa-release qa-empty">Open a source, a library entry or a reply '
            "to read its release here.</div>"
        )
    spans = []
    if region is not None:
        spans.append(Span(region[0], region[1], "qa-region qa-target", "span"))
    if mark is not None:
        spans.append(Span(mark[0], mark[1], "qa-span" if region else "qa-span qa-target"))
    return (
        '<div class="qa-release">'
        f'<div class="qa-release-head"><div class="qa-release-title">{esc(release.title)}</div>'
        f'<div class="qa-cite-meta">{meta_line(release.date, release.source, release.url)}</div>'
        f'<div class="qa-cite-path">{esc(release.path)} · {len(release.text)} characters</div></div>'
        f'<div class="qa-release-text">{highlight(release.text, spans)}</div>'
        "</div>"
    )


# ---------------------------------------------------------------- library and uploads


LIBRARY_PAGE = 100
"""Releases a page of the Library shows: a 10,000-release archive stays a light page."""


def release_category(r: Release) -> str | None:
    """The front matter's ``category`` (an archive's section: fact sheets, statements, ...)."""
    value = dict(r.metadata).get("category")
    return (value.strip() or None) if isinstance(value, str) else None


def library_categories(releases: Sequence[Release]) -> list[str]:
    return sorted({c for r in releases if (c := release_category(r))})


def library_pages(n: int, page_size: int = LIBRARY_PAGE) -> int:
    return max(1, -(-n // page_size))


def library_rows(
    releases: Sequence[Release], query: str | None = "", category: str | None = None
) -> list[Release]:
    """The releases a Library view lists: matching the query (title, source, path) and the
    category, newest first."""
    q = (query or "").strip().casefold()
    rows = [
        r
        for r in releases
        if (not q or q in f"{r.title} {r.source or ''} {r.path}".casefold())
        and (not category or release_category(r) == category)
    ]
    rows.sort(key=lambda r: (r.date is None, -(r.date.toordinal() if r.date else 0), r.title.casefold()))
    return rows


def library_html(
    releases: Sequence[Release],
    query: str | None = "",
    category: str | None = None,
    page: int = 1,
    page_size: int = LIBRARY_PAGE,
) -> str:
    """One page of the indexed releases, newest first, filtered by a case-insensitive
    title/source/path match and a category."""
    rows = library_rows(releases, query, category)
    pages = library_pages(len(rows), page_size)
    page = min(max(1, int(page or 1)), pages)
    shown = rows[(page - 1) * page_size : page * page_size]
    where = f" · page {page} of {pages}" if pages > 1 else ""
    head = f'<div class="qa-sources-h">{len(rows)} of {len(releases)} releases{esc(where)}</div>'
    items = [
        f'<li class="qa-lib-item"><button type="button" class="qa-open qa-lib-open" '
        f'data-release="{esc(r.id)}" data-start="-1" data-end="-1" data-mark-start="-1" '
        f'data-mark-end="-1">{esc(r.title)}</button>'
        f'<div class="qa-cite-meta">{meta_line(r.date, r.source)}</div>'
        f'<div class="qa-cite-path">{esc(r.path)}</div></li>'
        for r in shown
    ]
    return f'<div class="qa-library">{head}<ul class="qa-lib">{"".join(items)}</ul></div>'


def upload_report_html(added: Sequence[Release], problems: Sequence[tuple[str, str]]) -> str:
    parts = []
    if added:
        items = "".join(
            f'<li>{esc(r.title)} <span class="qa-cite-path">{esc(r.path)}</span></li>' for r in added
        )
        plural = "s" if len(added) != 1 else ""
        parts.append(
            f'<div class="qa-ok">Added {len(added)} release{plural}; ask about them now.</div>'
            f"<ul>{items}</ul>"
        )
    if problems:
        items = "".join(f"<li><b>{esc(name)}</b>: {esc(reason)}</li>" for name, reason in problems)
        parts.append(f'<div class="qa-bad">Not added:</div><ul>{items}</ul>')
    if not parts:
        parts.append('<div class="qa-note">Nothing to add.</div>')
    return f'<div class="qa-upload-report">{"".join(parts)}</div>'


def header_html(releases: Sequence[Release]) -> str:
    sources = {r.source for r in releases if r.source}
    dates = sorted(r.date for r in releases if r.date)
    span = f", {dates[0].year}–{dates[-1].year}" if dates else ""
    return (
        '<div class="qa-header"><span class="qa-brand">release-qa</span>'
        f'<span class="qa-tagline">Answers quoted word for word from {len(releases)} press releases '
        f"({len(sources)} source{'s' if len(sources) != 1 else ''}{esc(span)}), each with its citation."
        "</span></div>"
    )
