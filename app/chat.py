"""The web chat: a Gradio Blocks app over ``qa.Assistant``.

Layout: filters and uploads in a sidebar; the chat in the middle; on the right,
tabs for the answer's Sources, the Release viewer (scrolled to the quote) and the
Library of indexed releases. Everything shown is HTML written by ``app.render``,
which escapes all release text. ``/ask`` is the API endpoint other tools call.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from app import render
from app.style import CSS
from app.uploads import MAX_UPLOAD_BYTES, add_uploads
from qa import Answer, Assistant, Filters, Release
from qa.assistant import MAX_QUESTION_CHARS
from qa.ingest.releases import SUFFIXES
from qa.serialize import answer_to_dict

logger = logging.getLogger(__name__)

AUTH_ENV = "RELEASE_QA_AUTH"
QUEUE_MAX_SIZE = 128
"""Events waiting at once; a burst beyond this gets "queue full" instead of eating memory."""
ASK_CONCURRENCY = 4
"""Questions answered at once (chat and API share the limit); the rest wait in the queue."""
STREAM_STEPS = 6
STREAM_DELAY_S = 0.03

# Clicks on "Open in release" buttons inside an HTML panel become a `select` event.
OPEN_JS = """
element.addEventListener('click', (e) => {
  const b = e.target.closest('button.qa-open');
  if (!b || !element.contains(b)) return;
  const d = b.dataset;
  trigger('select', {release_id: d.release, start: Number(d.start), end: Number(d.end),
                     mark_start: Number(d.markStart), mark_end: Number(d.markEnd)});
});
"""

# Scroll the release text to the quote, also when the panel only becomes visible later.
SCROLL_JS = """
let pending = true;
const scroll = () => {
  const box = element.querySelector('.qa-release-text');
  const t = element.querySelector('.qa-target');
  if (!box || !t || box.clientHeight === 0) return false;
  box.scrollTop = Math.max(0, t.offsetTop - box.clientHeight / 4);
  return true;
};
new ResizeObserver(() => { if (pending && scroll()) pending = false; }).observe(element);
watch('value', () => { pending = true; if (scroll()) pending = false; });
"""


# ---------------------------------------------------------------- plain helpers


def parse_date(value: Any, label: str) -> dt.date | None:
    """A filter date from the date picker ("YYYY-MM-DD", maybe with a time) or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"the {label} date {str(value)!r} is not a date (YYYY-MM-DD)") from None


def make_filters(date_from: Any, date_to: Any, sources: Sequence[str] | None) -> Filters:
    return Filters(
        parse_date(date_from, "“from”"),
        parse_date(date_to, "“to”"),
        tuple(sources) if sources else None,
    )


def history_of(turns: Sequence[tuple[str, Answer | None]]) -> list[dict[str, str]]:
    """The chat so far as the library reads it: questions and plain answer texts."""
    out: list[dict[str, str]] = []
    for question, answer in turns:
        out.append({"role": "user", "content": question})
        out.append({"role": "assistant", "content": render.plain_reply(answer) if answer else ""})
    return out


ALL = "All categories"


def source_choices(releases: Sequence[Release]) -> list[str]:
    return sorted({r.source for r in releases if r.source}, key=str.casefold)


def example_questions(releases: Sequence[Release], n: int = 4) -> list[str]:
    """Questions about real releases: the newest ones, taking sources in turn."""
    by_source: dict[str, list[Release]] = {}
    for r in sorted(releases, key=lambda r: (r.date or dt.date.min, r.title), reverse=True):
        by_source.setdefault(r.source or "", []).append(r)
    picked: list[Release] = []
    while len(picked) < n and any(by_source.values()):
        for group in by_source.values():
            if group and len(picked) < n:
                picked.append(group.pop(0))
    return [f"What does “{_short(r.title)}” say?" for r in picked]


def _short(title: str, limit: int = 90) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rsplit(" ", 1)[0] + "…"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` (the password may hold colons) or None."""
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth (or $RELEASE_QA_AUTH) must be user:password, both non-empty")
    return user, password


def check_exposure(host: str, auth: tuple[str, str] | None, insecure_no_auth: bool) -> None:
    """Refuse to serve beyond this machine without a password, unless told explicitly."""
    if not is_loopback(host) and auth is None and not insecure_no_auth:
        raise ValueError(
            f"refusing to serve on {host} without a password: pass --auth user:password "
            f"(or set {AUTH_ENV}), or --insecure-no-auth to expose it to anyone who can reach it"
        )


# ---------------------------------------------------------------- the app


def build_app(assistant: Assistant, *, upload_dir: str | os.PathLike[str] | None = None) -> gr.Blocks:
    """The chat UI and the ``/ask`` API over one assistant; uploads go to ``upload_dir``."""
    uploads = Path(upload_dir) if upload_dir is not None else None

    def releases() -> list[Release]:
        return list(assistant.index.releases.values())

    def ask_api(question: str, history: list[dict[str, Any]] | None = None) -> str:
        """Answer one question with a verbatim quote: the JSON text of `release-qa ask --json`.

        Text rather than a dict: gradio_client would try to download any dict holding a
        "path" key (the citation's file) as a file.
        """
        try:
            answer = assistant.ask(question, history=_clean_history(history))
        except (ValueError, TypeError) as e:
            raise gr.Error(str(e)) from None
        except (
            BaseException
        ) as e:  # a library's panic too (pyo3 raises BaseException): an error, never a hang
            if isinstance(e, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            logger.exception("answering %r failed", question)
            raise gr.Error("Something went wrong while answering; the server log has the details.") from None
        return json.dumps(answer_to_dict(answer), ensure_ascii=False, indent=2)

    def respond(
        question: str,
        chat: list[dict[str, Any]],
        turns: list[tuple[str, Answer | None]],
        date_from: Any,
        date_to: Any,
        sources: list[str] | None,
    ) -> Iterator[tuple[Any, ...]]:
        q = (question or "").strip()
        if not q:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        total = len(assistant.index.releases)
        chat = [*chat, {"role": "user", "content": render.user_html(q)}]
        yield "", [*chat, _bot(render.pending_html(total))], gr.skip(), gr.skip(), gr.skip()
        try:
            filters = make_filters(date_from, date_to, sources)
            answer = assistant.ask(q, history=history_of(turns), filters=filters)
        except ValueError as e:  # a question or filter the library refuses, with its reason
            yield "", [*chat, _bot(render.error_html(str(e)))], [*turns, (q, None)], gr.skip(), gr.skip()
            return
        except BaseException as e:  # a library's panic too (pyo3 raises BaseException): never a hang
            if isinstance(e, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            logger.exception("answering %r failed", q)
            msg = "Something went wrong while answering; the server log has the details."
            yield "", [*chat, _bot(render.error_html(msg))], [*turns, (q, None)], gr.skip(), gr.skip()
            return
        if answer.text is not None and answer.sentence:
            n = len(answer.sentence)
            for step in range(1, STREAM_STEPS):
                upto = n * step // STREAM_STEPS
                yield "", [*chat, _bot(render.reply_html(answer, filters=filters, upto=upto))], *_skip(3)
                time.sleep(STREAM_DELAY_S)
        reply = render.reply_html(answer, filters=filters, total=total)
        yield "", [*chat, _bot(reply)], [*turns, (q, answer)], render.sources_html(answer), _viewer_of(answer)

    def _viewer_of(answer: Answer) -> str:
        c = answer.citation
        if c is None:
            return gr.skip()
        release = assistant.index.releases.get(c.release_id)
        region = (
            (answer.sentence_start, answer.sentence_end)
            if answer.sentence_start is not None and answer.sentence_end is not None
            else None
        )
        return render.release_html(release, region, (c.start, c.end))

    def open_release(evt: gr.EventData) -> tuple[Any, Any]:
        data = getattr(evt, "_data", None) or {}
        release = assistant.index.releases.get(str(data.get("release_id", "")))
        if release is None:
            raise gr.Error("That release is no longer in the index.")
        start, end = _int(data.get("start")), _int(data.get("end"))
        n = len(release.text)
        region = (start, end) if 0 <= start < end <= n else None
        ms, me = _int(data.get("mark_start")), _int(data.get("mark_end"))
        mark = (ms, me) if region and region[0] <= ms < me <= region[1] else None
        return render.release_html(release, region, mark), gr.Tabs(selected="release")

    def open_turn(turns: list[tuple[str, Answer | None]], evt: gr.SelectData) -> tuple[Any, Any, Any]:
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        turn = _int(i) // 2
        if not 0 <= turn < len(turns) or turns[turn][1] is None:
            return gr.skip(), gr.skip(), gr.skip()
        answer = turns[turn][1]
        assert answer is not None
        viewer = _viewer_of(answer) if answer.citation else gr.skip()
        tab = "release" if answer.citation else "sources"
        return render.sources_html(answer), viewer, gr.Tabs(selected=tab)

    def on_upload(files: list[str] | None, query: str) -> tuple[Any, ...]:
        if uploads is None:
            raise gr.Error("Uploads are off: this chat was started without an upload folder.")
        pairs = [(f, Path(f).name) for f in files or []]
        result = add_uploads(assistant, pairs, uploads)
        rel = releases()
        return (
            None,
            render.upload_report_html(result.added, result.problems),
            render.library_html(rel, query),
            render.header_html(rel),
            gr.Dropdown(choices=source_choices(rel)),
        )

    def library_page(query: str, category: str | None, page: Any) -> tuple[str, Any]:
        """One page of the Library; a page past the last shows the last (and says so)."""
        rel = releases()
        cat = None if category in (None, "", ALL) else category
        pages = render.library_pages(len(render.library_rows(rel, query, cat)))
        p = min(max(1, int(page or 1)), pages)
        return render.library_html(rel, query, cat, p), (p if p != page else gr.skip())

    def filter_note(date_from: Any, date_to: Any, sources: list[str] | None) -> str:
        try:
            note = render.filters_note(make_filters(date_from, date_to, sources))
        except ValueError as e:
            return render.error_html(str(e))
        return f'<div class="qa-note qa-filter-note">{render.esc(note)}</div>' if note else ""

    rel = releases()
    with gr.Blocks(title="release-qa") as demo:
        turns = gr.State([])
        with gr.Sidebar(label="Filters and uploads", width=300, open=True):
            gr.HTML(
                '<div class="qa-side-h">Filters</div><div class="qa-note">Apply to every next question.</div>'
            )
            date_from = gr.DateTime(label="From", include_time=False, type="string", elem_id="qa-from")
            date_to = gr.DateTime(label="To", include_time=False, type="string", elem_id="qa-to")
            sources = gr.Dropdown(
                source_choices(rel),
                value=[],
                multiselect=True,
                label="Sources",
                info="None chosen: all sources",
                elem_id="qa-sources-filter",
            )
            clear_filters = gr.Button("Clear filters", size="sm", variant="secondary")
            gr.HTML(
                '<div class="qa-side-h">Add releases</div><div class="qa-note">'
                f"{render.esc(' '.join(SUFFIXES))}; up to {MAX_UPLOAD_BYTES // 2**20} MB each. "
                "Indexed at once and kept in the index.</div>"
            )
            upload = gr.File(
                label="Releases to add",
                show_label=False,
                file_count="multiple",
                file_types=list(SUFFIXES),
                type="filepath",
                elem_id="qa-upload",
                interactive=uploads is not None,
                height=140,
            )
            upload_report = gr.HTML("", elem_id="qa-upload-report")
        header = gr.HTML(render.header_html(rel), elem_id="qa-header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=420):
                chatbot = gr.Chatbot(
                    elem_id="qa-chat",
                    height="68vh",
                    render_markdown=False,
                    sanitize_html=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    feedback_options=None,
                    buttons=["copy", "copy_all"],
                    show_label=False,
                    placeholder=(
                        "<div class='qa-placeholder'><b>Ask about the press releases.</b><br>"
                        "Every answer is a quote from one release, with its citation.</div>"
                    ),
                    examples=[{"text": q} for q in example_questions(rel)],
                )
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Ask a question, e.g. “Who chaired the AMCC?” (Enter to send)",
                        show_label=False,
                        max_length=MAX_QUESTION_CHARS,
                        scale=8,
                        elem_id="qa-question",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
                note = gr.HTML("", elem_id="qa-filter-status")
            with gr.Column(scale=4, min_width=360), gr.Tabs(selected="sources", elem_id="qa-tabs") as tabs:
                with gr.Tab("Sources", id="sources", elem_id="qa-tab-sources"):
                    sources_panel = gr.HTML(
                        render.sources_html(None), js_on_load=OPEN_JS, elem_id="qa-sources", max_height=900
                    )
                with gr.Tab("Release", id="release", elem_id="qa-tab-release"):
                    viewer = gr.HTML(render.release_html(None), js_on_load=SCROLL_JS, elem_id="qa-viewer")
                with gr.Tab("Library", id="library", elem_id="qa-tab-library"):
                    lib_query = gr.Textbox(
                        placeholder="Filter by title, source or file", show_label=False, elem_id="qa-lib-q"
                    )
                    with gr.Row():
                        lib_category = gr.Dropdown(
                            choices=[ALL, *render.library_categories(rel)],
                            value=ALL,
                            show_label=False,
                            elem_id="qa-lib-category",
                            scale=3,
                        )
                        lib_prev = gr.Button("◀", size="sm", elem_id="qa-lib-prev", scale=1)
                        lib_page = gr.Number(
                            value=1, precision=0, minimum=1, show_label=False, elem_id="qa-lib-page", scale=1
                        )
                        lib_next = gr.Button("▶", size="sm", elem_id="qa-lib-next", scale=1)
                    library = gr.HTML(
                        render.library_html(rel), js_on_load=OPEN_JS, elem_id="qa-library", max_height=900
                    )

        ask_inputs = [box, chatbot, turns, date_from, date_to, sources]
        ask_outputs = [box, chatbot, turns, sources_panel, viewer]
        common = {"concurrency_limit": ASK_CONCURRENCY, "concurrency_id": "ask", "api_visibility": "private"}
        box.submit(respond, ask_inputs, ask_outputs, **common)
        send.click(respond, ask_inputs, ask_outputs, **common)
        chatbot.example_select(example_text, None, box, api_visibility="private").then(
            respond, ask_inputs, ask_outputs, **common
        )
        chatbot.clear(
            lambda: ([], render.sources_html(None), render.release_html(None)),
            None,
            [turns, sources_panel, viewer],
            api_visibility="private",
        )
        chatbot.select(open_turn, [turns], [sources_panel, viewer, tabs], api_visibility="private")
        sources_panel.select(open_release, None, [viewer, tabs], api_visibility="private")
        library.select(open_release, None, [viewer, tabs], api_visibility="private")
        lib_inputs = [lib_query, lib_category, lib_page]
        lib_query.change(lambda: 1, None, lib_page, api_visibility="private")
        lib_category.change(lambda: 1, None, lib_page, api_visibility="private")
        lib_page.change(library_page, lib_inputs, [library, lib_page], api_visibility="private")
        lib_prev.click(lambda p: max(1, int(p or 1) - 1), lib_page, lib_page, api_visibility="private")
        lib_next.click(lambda p: int(p or 1) + 1, lib_page, lib_page, api_visibility="private")
        for f in (lib_query, lib_category):
            f.change(library_page, lib_inputs, [library, lib_page], api_visibility="private")
        for f in (date_from, date_to, sources):
            f.change(filter_note, [date_from, date_to, sources], note, api_visibility="private")
        clear_filters.click(
            lambda: (None, None, []), None, [date_from, date_to, sources], api_visibility="private"
        )
        upload.upload(
            on_upload,
            [upload, lib_query],
            [upload, upload_report, library, header, sources],
            concurrency_limit=1,
            concurrency_id="upload",
            api_visibility="private",
        )
        gr.api(ask_api, api_name="ask", concurrency_limit=ASK_CONCURRENCY, concurrency_id="ask")
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=ASK_CONCURRENCY)
    return demo


def example_text(evt: gr.SelectData) -> str:
    return str(evt.value.get("text", "")) if isinstance(evt.value, dict) else ""


def _bot(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _skip(n: int) -> tuple[Any, ...]:
    return tuple(gr.skip() for _ in range(n))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _clean_history(history: Any) -> list[dict[str, str]] | None:
    """API history: OpenAI-style messages; anything else is ignored rather than trusted."""
    if not history:
        return None
    if not isinstance(history, list):
        raise ValueError("history must be a list of {'role', 'content'} messages")
    out = []
    for m in history:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            continue
        if m.get("role") in ("user", "assistant"):
            out.append({"role": str(m["role"]), "content": m["content"]})
    return out


def theme() -> gr.themes.Base:
    """The default look with system fonts: no request to a font CDN (the chat works offline)."""
    return gr.themes.Soft(
        primary_hue="blue",
        font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
    )


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
) -> Any:
    """Start the server with the app's look, limits and privacy settings; on a loopback address the
    requests must name this machine (``app.host_guard``)."""
    from starlette.middleware import Middleware

    from app.host_guard import LoopbackHostGuard

    guard = [Middleware(LoopbackHostGuard)] if is_loopback(host) else []
    return demo.launch(
        app_kwargs={"middleware": guard},
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="release-qa: sign in to ask about the press releases." if auth else None,
        max_file_size=MAX_UPLOAD_BYTES,
        theme=theme(),
        css=CSS,
        footer_links=["api"],
        run_history=False,
        enable_monitoring=False,
        mcp_server=False,
        ssr_mode=False,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        show_error=False,
    )


def warm_up(assistant: Assistant) -> None:
    """Load the model now, so the first question is answered as fast as the rest."""
    t0 = time.perf_counter()
    assistant.warm_up()
    logger.info("model ready in %.1f s", time.perf_counter() - t0)


def serve(
    index_path: str,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    auth: tuple[str, str] | None = None,
    insecure_no_auth: bool = False,
) -> None:
    """``release-qa serve``: load the index, then serve until interrupted."""
    check_exposure(host, auth, insecure_no_auth)
    assistant = Assistant.load(index_path)
    warm_up(assistant)
    demo = build_app(assistant, upload_dir=Path(index_path) / "uploads")
    launch(demo, host=host, port=port, auth=auth)
