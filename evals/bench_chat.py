"""How fast the chat page loads with the whole real archive indexed (issue 15, part 4).

    python -m evals.bench_chat --out evals/reports/bench

Reads ``corpus/`` + us-gov-cyber + all of wh-briefings (about 10,240 releases) into a
library-sized index: every release with its title, date, source and category, each indexed as
one passage (its opening words) under the deterministic test embedder. What the page shows and
sends at load (the header, the sources filter, the examples, the Library's first page and its
categories) depends on the releases alone, so the page loads as it does over the full index,
whose build takes hours on 2 cores. Cached in evals/cache, rebuilt when the archive changes.
Serves the chat on a free loopback port and opens the page in Debian's chromium ``--loads``
times: seconds from navigation until the question box is there, and until the Library tab
shows its first page. The seed corpus alone is measured in the same run, for the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from qa import Assistant, HashingEmbedder
from qa.index import Index, QAIndexError, corpus_fingerprint
from qa.index.prepare import PreparedRelease
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.releases import read_releases
from qa.types import Passage, Sentence

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARCHIVE_SOURCES = [ROOT / "corpus", SHARED / "corpus" / "us-gov-cyber", SHARED / "corpus" / "wh-briefings"]
CACHE = ROOT / "evals" / "cache" / "archive-library"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
READY = "#qa-question textarea"
LIBRARY_ROW = "#qa-library .qa-lib-item"
OPENING_WORDS = 60
EMBEDDER = HashingEmbedder(dimension=64)


def archive_index(path: Path = CACHE, sources: list[Path] | None = None) -> Path:
    """Every release under ``sources`` (default: the whole archive), one passage each."""
    releases = read_releases(sources or ARCHIVE_SOURCES).releases
    try:
        if Index.load(path).fingerprint == corpus_fingerprint(r.id for r in releases):
            return path
    except QAIndexError:
        pass  # none yet, or damaged: built anew
    index = Index.empty(EMBEDDER, ChunkerSettings(annotator=None))
    prepared = []
    openings = []
    for r in releases:
        words = [m.end() for _, m in zip(range(OPENING_WORDS), re.finditer(r"\S+", r.text), strict=False)]
        end = words[-1] if words else len(r.text)
        s = Sentence(r.id, 0, end, r.text[:end])
        prepared.append((r, Passage(f"{r.id}:0", r.id, 0, end, r.text[:end], (s,)), s))
        openings.append(r.text[:end])
    vectors = EMBEDDER.encode(openings)
    index.add_prepared(
        [
            PreparedRelease(r, (p,), (s,), vectors[i : i + 1], vectors[i : i + 1])
            for i, (r, p, s) in enumerate(prepared)
        ]
    )
    index.save(path)
    return path


def serve(index: Path) -> tuple[Any, str]:
    """The chat (feature answerer, test embedder) on a free loopback port: (app, url)."""
    from app.chat import build_app, launch

    assistant = Assistant.load(index, EMBEDDER, reader="features")
    demo = build_app(assistant)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _, url, _ = launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    return demo, url


def page_loads(url: str, n: int, chromium: str) -> list[tuple[float, float]]:
    """Per load: seconds from navigation until the question box is there (the page is usable),
    and until the Library tab, clicked then, shows its first page of releases."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            for _ in range(n):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(url)
                page.wait_for_selector(READY, timeout=60_000)
                ready = time.perf_counter() - t0
                page.get_by_role("tab", name="Library").click()
                page.wait_for_selector(LIBRARY_ROW, timeout=60_000)
                out.append((ready, time.perf_counter() - t0))
                context.close()
        finally:
            browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loads", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("evals/reports/bench"))
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    rows = []
    for label, index in (
        ("seed corpus", archive_index(CACHE.with_name("seed-library"), [ROOT / "corpus"])),
        ("real archive", archive_index()),
    ):
        assistant = Assistant.load(index, EMBEDDER, reader="features")
        releases = len(assistant.index.releases)
        del assistant
        demo, url = serve(index)
        try:
            times = page_loads(url, args.loads, args.chromium)
        finally:
            demo.close()
        ready = [t for t, _ in times]
        library = [t for _, t in times]
        rows.append(
            {
                "corpus": label,
                "releases": releases,
                "loads": len(times),
                "ready_p50_s": statistics.median(ready),
                "ready_max_s": max(ready),
                "library_p50_s": statistics.median(library),
                "first_load_s": ready[0],
            }
        )
    load = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-chat.json").write_text(
        json.dumps({"rows": rows, "load": load}, indent=1), encoding="utf-8"
    )
    lines = [
        f"# Chat page load (chromium, headless; load average {load[0]:.1f})",
        "",
        "| corpus | releases | loads | page ready p50 s | max s | first load s | + Library tab p50 s "
        "| vs seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['corpus']} | {r['releases']:,} | {r['loads']} | {r['ready_p50_s']:.2f} | "
            f"{r['ready_max_s']:.2f} | {r['first_load_s']:.2f} | {r['library_p50_s']:.2f} | "
            f"{r['ready_p50_s'] / rows[0]['ready_p50_s']:.2f}x |"
        )
    (args.out / "bench-chat.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
