"""The line protocol between ``evals/bench.py`` and its workers (ours and each peer's venv).

A worker reads one JSON command per line on stdin and answers one JSON line; library output
that would land on stdout goes to stderr instead. Standard library only: peers import it too.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def take_stdout() -> TextIO:
    """The real stdout for replies; fd 1 then points at stderr so prints cannot corrupt them."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not inherit the parent's peak
    across fork and exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed_queries(ask: Callable[[str], Any], questions: list[str]) -> dict[str, Any]:
    """Milliseconds per question for ``ask``."""
    ms = []
    for q in questions:
        t = time.perf_counter()
        ask(q)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"e2e_ms": ms}


def serve(ready: dict[str, Any], handlers: dict[str, Handler], out: TextIO) -> None:
    """Send ``ready`` then answer commands until "quit" or end of input."""
    out.write(json.dumps({"ok": True, **ready}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            reply = handlers[cmd["cmd"]](cmd)
            reply = {"ok": True, **reply, "peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb()}
        except Exception as e:  # reported to the orchestrator, which records it
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
