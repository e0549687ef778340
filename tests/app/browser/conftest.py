"""Browser tests: the chat served on a free loopback port, driven by Playwright in Debian's chromium.

They skip (with the reason) only when chromium or Playwright is missing and CI is not set;
under CI=true a missing browser fails them. `playwright install` is never used: it downloads a
browser, and these machines are offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import RELEASES, ROOT, SEED

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "build" / "browser"))


LONG_TITLE = "Committee minutes with an observatory opening"
LONG_RELEASE = (
    f'---\ntitle: "{LONG_TITLE}"\ndate: 2023-06-01\nsource: "Records Office"\n---\n\n'
    + "\n\n".join(
        f"Item {i}: the committee noted routine agenda point {i} without comment." for i in range(80)
    )
    + "\n\nThe Quillfeather Observatory was opened by Ambassador Thessaly Brankovic on 3 May.\n"
)
"""A long release whose answer sits far down, so the viewer has to scroll to it."""


def chromium_path() -> str:
    """Debian's chromium ($CHROMIUM overrides); skip or, under CI, fail when it is missing."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    missing = []
    if not Path(found).exists():
        missing.append(f"chromium ({found}; apt-get install -y chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        reason = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true they must run (.ci/run installs them)")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chat_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chat over the real model: the seed release plus three small synthetic ones."""
    chromium_path()
    from app.chat import build_app, launch, warm_up
    from qa import Assistant, update_index

    root = tmp_path_factory.mktemp("chat")
    src = root / "releases"
    src.mkdir()
    for name, text in RELEASES.items():
        (src / name).write_text(text, encoding="utf-8")
    (src / "long.md").write_text(LONG_RELEASE, encoding="utf-8")
    update_index(root / "index", [SEED, src])
    assistant = Assistant.load(root / "index")
    warm_up(assistant)
    demo = build_app(assistant, upload_dir=root / "index" / "uploads")
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh chat page that records dialogs (alert/confirm), page errors and requests
    leaving this machine (the chat must work offline: no fonts or scripts from a CDN)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in (
            "127.0.0.1",
            "localhost",
        ):
            self.outside.append(request.url)

    def _dialog(self, d: Any) -> None:
        self.dialogs.append(d.message)
        d.dismiss()


@contextlib.contextmanager
def open_chat(browser: Any, url: str) -> Iterator[Page]:
    """A fresh browser context on the chat at ``url``, once its question box is there."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    chat = Page(page)
    page.goto(url)
    page.wait_for_selector("#qa-question textarea")
    try:
        yield chat
    finally:
        context.close()


@pytest.fixture
def chat(browser: Any, chat_url: str) -> Iterator[Page]:
    with open_chat(browser, chat_url) as page:
        yield page
