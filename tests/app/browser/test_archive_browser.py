"""The chat with the whole real archive indexed (about 10,240 releases): the page comes up, and
the Library pages, searches and filters by category over all of them.

The index uses the deterministic test embedder and no spaCy (what the page shows depends on the
releases, not the vectors); it is built once into evals/cache and only updated after. How fast
the page loads is measured by ``python -m evals.bench_chat`` (``make bench``), not asserted here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.app.browser.conftest import Page, chromium_path, open_chat
from tests.conftest import need_shared

pytestmark = [pytest.mark.browser]

LIB = "#qa-library"


@pytest.fixture(scope="module")
def archive_url() -> Iterator[str]:
    chromium_path()
    from evals.bench_chat import ARCHIVE_SOURCES, archive_index, serve

    for source in ARCHIVE_SOURCES:
        need_shared(source)
    demo, url = serve(archive_index())
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture
def page(browser: Any, archive_url: str) -> Iterator[Page]:
    with open_chat(browser, archive_url) as chat:
        yield chat


def library_head(pg: Any) -> str:
    return str(pg.locator(f"{LIB} .qa-sources-h").inner_text())


def test_the_library_pages_searches_and_filters_ten_thousand_releases(page: Page) -> None:
    pg = page.page
    header = pg.locator("#qa-header").inner_text()
    total = int(re.search(r"from ([\d,]+) press releases", header).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert total > 10_000
    pg.get_by_role("tab", name="Library").click()
    pg.wait_for_selector(f"{LIB} .qa-lib-item")
    head = library_head(pg)
    pages = -(-total // 100)
    assert f"{total} of {total} releases · page 1 of {pages}" in head
    assert pg.locator(f"{LIB} .qa-lib-item").count() == 100
    first = pg.locator(f"{LIB} .qa-lib-item .qa-lib-open").first.inner_text()
    # the next page
    pg.locator("#qa-lib-next").click()
    pg.wait_for_function(
        "(sel) => document.querySelector(sel).innerText.includes('page 2 of')", arg=f"{LIB} .qa-sources-h"
    )
    assert pg.locator(f"{LIB} .qa-lib-item .qa-lib-open").first.inner_text() != first
    # a search narrows the list to matching titles
    pg.locator("#qa-lib-q textarea, #qa-lib-q input").first.fill("vaccination")
    pg.wait_for_function(
        "([sel, n]) => !document.querySelector(sel).innerText.startsWith(n + ' of')",
        arg=[f"{LIB} .qa-sources-h", str(total)],
    )
    found = int(library_head(pg).split(" of ")[0])
    assert 0 < found < total
    titles = pg.locator(f"{LIB} .qa-lib-item").all_inner_texts()
    assert all("vaccination" in t.casefold() for t in titles)
    assert not page.errors and not page.outside
