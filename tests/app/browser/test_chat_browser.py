"""The chat as a user sees it: ask, read the quote in its release, follow up, filter, upload.

One server (real model) for the module; each test opens its own page.
"""

from __future__ import annotations

import re

import pytest

from tests.app.browser.conftest import ARTIFACTS, LONG_TITLE, Page

pytestmark = [pytest.mark.model, pytest.mark.browser]

SEED_TITLE = "ASEAN Member States Affirm Importance of Closer Coordination of Cybersecurity Efforts in ASEAN"
REPLY = "#qa-chat .qa-cite, #qa-chat .qa-declined, #qa-chat .qa-error"

HOSTILE = """---
title: "<img src=x onerror=\\"window.__pwned='title';alert('title')\\">Zorblat <script>window.__pwned='title2'</script> bulletin"
date: 2024-02-02
source: "<b onmouseover=\\"window.__pwned='source'\\">Evil</b> Source"
url: "javascript:window.__pwned='url'"
---

The Zorblat Agency announced that its <script>window.__pwned='body';alert('body')</script> new director is Quentin Flibbertigibbet <img src=x onerror="window.__pwned='img';alert('img')">.

Read more [here](javascript:window.__pwned='mdlink') or <a href="javascript:window.__pwned='alink'">there</a>.
"""

UPLOAD = """---
title: "Marlowe Port Authority opens cyber training centre"
date: 2024-03-05
source: "Marlowe Port Authority"
---

The Marlowe Port Authority opened a cyber training centre in Kestrel Bay on Monday. The centre will train 450 port workers each year.
"""


def ask(chat: Page, question: str) -> None:
    """Type a question, press Enter, wait for the finished reply."""
    page = chat.page
    before = page.locator(REPLY).count()
    page.fill("#qa-question textarea", question)
    page.press("#qa-question textarea", "Enter")
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[REPLY, before], timeout=60_000
    )


def last_reply(chat: Page) -> object:
    return chat.page.locator("#qa-chat .qa-reply").last


def test_ask_shows_highlighted_quote_citation_and_confidence(chat: Page) -> None:
    ask(chat, "Who chaired the 2017 ASEAN Ministerial Conference on Cybersecurity?")
    reply = last_reply(chat)
    quote = reply.locator("blockquote.qa-quote")
    mark = quote.locator("mark.qa-span")
    assert mark.count() == 1 and mark.inner_text().strip()
    assert mark.inner_text() in quote.inner_text()
    assert reply.locator(".qa-cite-title").inner_text() == SEED_TITLE
    assert "Cyber Security Agency of Singapore" in reply.locator(".qa-cite").inner_text()
    assert re.search(r"(High|Medium|Low) confidence", reply.locator(".qa-conf").inner_text())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chat.page.screenshot(path=str(ARTIFACTS / "answered-chat.png"))
    assert not chat.dialogs and not chat.errors
    assert not chat.outside, chat.outside


def test_sources_open_the_release_scrolled_to_the_quote(chat: Page) -> None:
    page = chat.page
    ask(chat, "Who opened the Quillfeather Observatory?")
    reply = last_reply(chat)
    assert reply.locator(".qa-cite-title").inner_text() == LONG_TITLE
    card = page.locator("#qa-sources .qa-source-answer")
    assert (
        card.count() == 1 and card.locator("mark.qa-span").inner_text() == reply.locator("mark").inner_text()
    )
    assert page.locator("#qa-sources .qa-source").count() >= 2
    page.locator("#qa-tab-library-button").click()  # the reply already filled the viewer: start elsewhere
    page.locator("#qa-tab-sources-button").click()
    card.locator("button.qa-open").click()
    viewer = page.locator("#qa-viewer")
    viewer.locator(".qa-release-title").wait_for(state="visible")
    assert viewer.locator(".qa-release-title").inner_text() == LONG_TITLE
    assert viewer.locator(".qa-target").count() == 1
    assert viewer.locator("mark.qa-span").inner_text() == reply.locator("mark").inner_text()
    page.wait_for_function(  # scrolled down so the passage is in the visible part of the text
        """() => {
            const box = document.querySelector('#qa-viewer .qa-release-text');
            const t = document.querySelector('#qa-viewer .qa-target');
            if (!box || !t) return false;
            const b = box.getBoundingClientRect(), r = t.getBoundingClientRect();
            return box.scrollTop > 0 && r.top >= b.top - 1 && r.top < b.bottom;
        }"""
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "release-view.png"))


def test_clicking_a_reply_opens_its_release_at_the_quote(chat: Page) -> None:
    page = chat.page
    ask(chat, "How much was Riverside Hospital fined?")
    reply = last_reply(chat)
    title = reply.locator(".qa-cite-title").inner_text()
    page.locator("#qa-tab-library-button").click()
    reply.locator(".qa-cite").click()
    viewer = page.locator("#qa-viewer")
    viewer.locator(".qa-release-title").wait_for(state="visible")
    assert viewer.locator(".qa-release-title").inner_text() == title
    assert viewer.locator(".qa-target").inner_text() == reply.locator("blockquote").inner_text()


def test_follow_up_is_read_against_the_chat(chat: Page) -> None:
    ask(chat, "Who chaired the 2017 ASEAN Ministerial Conference on Cybersecurity?")
    ask(chat, "Where was it held?")
    reply = last_reply(chat)
    assert "Read as a follow-up" in reply.inner_text()
    assert reply.locator(".qa-cite-title").inner_text() == SEED_TITLE


def test_example_question_on_an_empty_chat(chat: Page) -> None:
    page = chat.page
    example = page.locator("#qa-chat button.example").first
    text = example.inner_text()
    assert "“" in text
    example.click()
    page.wait_for_selector(REPLY)
    assert page.locator("#qa-chat .qa-user").first.inner_text().strip().startswith("What does")


def test_source_filter_applies_to_the_next_question(chat: Page) -> None:
    page = chat.page
    page.locator("#qa-sources-filter input").click()
    page.locator("[role=listbox] [role=option]").filter(has_text="Health Agency").first.click()
    page.locator("#qa-filter-status .qa-filter-note").wait_for()
    page.locator("#qa-header").click()  # close the dropdown
    ask(chat, "Who chaired the 2017 ASEAN Ministerial Conference on Cybersecurity?")
    reply = last_reply(chat)
    assert "from Health Agency" in reply.inner_text()
    assert SEED_TITLE not in reply.inner_text()


def test_upload_a_release_and_ask_about_it(chat: Page) -> None:
    page = chat.page
    page.set_input_files(
        "#qa-upload input[type=file]",
        files=[{"name": "marlowe.md", "mimeType": "text/markdown", "buffer": UPLOAD.encode()}],
    )
    report = page.locator("#qa-upload-report")
    report.locator(".qa-ok").wait_for()
    assert "Added 1 release" in report.inner_text()
    page.locator("#qa-tab-library-button").click()
    assert "Marlowe Port Authority opens cyber training centre" in page.locator("#qa-library").inner_text()
    ask(chat, "How many port workers will the Marlowe training centre train each year?")
    reply = last_reply(chat)
    assert (
        reply.locator(".qa-cite-title").inner_text() == "Marlowe Port Authority opens cyber training centre"
    )
    assert "450" in reply.locator("blockquote").inner_text()


def test_bad_upload_gets_a_clear_reason(chat: Page) -> None:
    page = chat.page
    page.set_input_files(
        "#qa-upload input[type=file]",
        files=[{"name": "empty.txt", "mimeType": "text/plain", "buffer": b"   \n"}],
    )
    page.locator("#qa-upload-report .qa-bad").wait_for()
    assert "empty.txt: empty file" in page.locator("#qa-upload-report").inner_text().replace("\n", "")


def test_hostile_release_cannot_run_code(chat: Page) -> None:
    page = chat.page
    page.set_input_files(
        "#qa-upload input[type=file]",
        files=[
            {
                "name": "<img src=x onerror=alert(1)>.md",
                "mimeType": "text/markdown",
                "buffer": HOSTILE.encode(),
            }
        ],
    )
    page.locator("#qa-upload-report .qa-ok").wait_for()
    ask(chat, "Who is the new director of the Zorblat Agency?")
    reply = last_reply(chat)
    text = reply.inner_text()
    assert "Zorblat" in text and "<script>" in text  # shown as text, not run
    page.locator("#qa-tab-sources-button").click()
    page.locator("#qa-sources button.qa-open").first.click()
    page.locator("#qa-viewer .qa-release-text").wait_for(state="visible")
    page.locator("#qa-tab-library-button").click()
    page.fill("#qa-lib-q textarea", "Zorblat")
    page.locator("#qa-library .qa-lib-open").filter(has_text="bulletin").first.click()
    page.locator("#qa-viewer .qa-release-title").filter(has_text="bulletin").wait_for()
    assert "<img src=x" in page.locator("#qa-viewer .qa-release-title").inner_text()
    page.locator("#qa-sources-filter input").click()  # sources list holds the hostile source name
    page.wait_for_timeout(300)
    page.mouse.move(5, 5)
    for el in page.locator("#qa-chat .qa-reply, #qa-viewer .qa-release-head, #qa-library li").all():
        if el.is_visible():
            el.hover()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "hostile-release.png"))
    assert page.evaluate("window.__pwned") is None
    assert not chat.dialogs, chat.dialogs
    handlers = "[onerror], [onload], [onclick], [onmouseover]"
    assert page.locator(f"#qa-chat {handlers}, #qa-viewer {handlers}, #qa-library {handlers}").count() == 0
    assert (
        page.evaluate(
            "[...document.querySelectorAll('a[href]')].filter(a => !/^https?:/.test(a.href)).length"
        )
        == 0
    )
    assert page.evaluate("[...document.scripts].filter(s => s.text.includes('__pwned')).length") == 0
