"""The web chat: a Gradio ChatInterface over ``qa.Assistant``.

Everything shown comes from release text, which is untrusted: it is escaped
before it reaches the page.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from qa import Answer, Assistant

logger = logging.getLogger(__name__)


def _text_of(content: Any) -> str:
    """Gradio 6 may pass message content as a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return " ".join(_text_of(c) for c in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def plain_history(history: Sequence[Any] | None) -> list[dict[str, str]]:
    out = []
    for m in history or ():
        if isinstance(m, dict) and m.get("role") in ("user", "assistant"):
            out.append({"role": m["role"], "content": _text_of(m.get("content"))})
    return out


def render_answer(answer: Answer) -> str:
    """Markdown for one reply; release text is HTML-escaped."""
    if answer.text is None or answer.citation is None:
        lines = ["The releases I have don't answer this."]
        if answer.hits:
            lines.append("\nClosest releases:")
            lines += [f"- {html.escape(h.release.title)}" for h in answer.hits[:3]]
        return "\n".join(lines)
    c = answer.citation
    quote = html.escape(answer.text)
    meta = ", ".join(x for x in (c.date.isoformat() if c.date else None, c.source) if x)
    title = html.escape(c.title)
    link = (
        f' — <a href="{html.escape(c.url, quote=True)}" rel="noopener noreferrer">original</a>'
        if c.url
        else ""
    )
    return (
        f"> {quote}\n\n"
        f"**{title}**{(' (' + html.escape(meta) + ')') if meta else ''}{link}  \n"
        f"<small>{html.escape(c.path)}, characters {c.start}–{c.end}; score {answer.score:.2f}</small>"
    )


def build_app(assistant: Assistant) -> gr.ChatInterface:
    def respond(message: str, history: list[dict[str, Any]]) -> str:
        try:
            return render_answer(assistant.ask(message, history=plain_history(history)))
        except ValueError as e:
            return html.escape(str(e))

    return gr.ChatInterface(
        respond,
        title="release-qa",
        description="Ask about the press releases; every answer is a quote with its source.",
        api_name="ask",
    )


def serve(index_path: str, host: str = "127.0.0.1", port: int = 7860) -> None:
    assistant = Assistant.load(index_path)
    build_app(assistant).launch(server_name=host, server_port=port)
