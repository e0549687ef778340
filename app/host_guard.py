"""A guard for a chat served on this machine only: requests must name this machine.

Gradio's own CORS rule only decides whether a browser may *read* a cross-origin response; it
checks no Host header. So a page on any site can rebind its own name to 127.0.0.1 (DNS
rebinding) and then talk to the chat as same-origin, and it can send blind cross-site POSTs to
``/ask``. Served on a loopback address (where no password is asked), the chat therefore
answers only requests whose Host is a loopback name, and refuses unsafe methods whose Origin
names another site. Served beyond this machine it asks for a password instead (``--auth``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_name(value: str) -> str:
    """The name of a Host header or an Origin, without port or brackets, lower case."""
    netloc = urlsplit(value if "//" in value else f"//{value}").hostname
    return (netloc or "").lower()


class LoopbackHostGuard:
    """ASGI middleware: 403 for a Host that is not a loopback name, or an unsafe request from a
    foreign Origin (``null`` included)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        why = refusal(headers.get("host", ""), headers.get("origin"), scope.get("method", "GET"))
        if why is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = f"forbidden: {why}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def refusal(host: str, origin: str | None, method: str) -> str | None:
    """Why a request to the loopback chat is refused (None: it is served)."""
    if host_name(host) not in LOOPBACK_NAMES:
        return "this chat answers only requests addressed to this machine (localhost, 127.0.0.1)"
    if method.upper() not in SAFE_METHODS and origin is not None and host_name(origin) not in LOOPBACK_NAMES:
        return "a request from another site"
    return None
