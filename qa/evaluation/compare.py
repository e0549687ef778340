"""``release-qa eval compare A B``: the metric deltas between two reports.

A change is judged against the last report: every number present in both is listed with
its delta, dataset by dataset and system by system.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from qa.evaluation.report import load_report

SKIP = frozenset({"curve", "bins", "n", "seconds", "questions", "answerable", "releases", "passages"})
KEYED = {"by_type": "qtype", "by_turn": "qtype", "latency": "stage"}
LOWER_IS_BETTER = ("ece", "_ms")
NO_DIRECTION = ("threshold", "declined", "answer_rate", "mean_answer_words")


@dataclass(frozen=True, slots=True)
class Delta:
    dataset: str
    system: str
    metric: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def better(self) -> bool | None:
        """Whether B improves on A (None: no change, not comparable or no direction)."""
        d = self.delta
        if d is None or abs(d) < 1e-12 or self.metric.endswith(NO_DIRECTION):
            return None
        lower = any(self.metric.endswith(s) for s in LOWER_IS_BETTER)
        return (d < 0) if lower else (d > 0)


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        if not math.isnan(value):
            yield prefix, float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in SKIP:
                continue
            yield from _flatten(f"{prefix}.{k}" if prefix else k, v)
    elif isinstance(value, list):
        key = KEYED.get(prefix.rsplit(".", 1)[-1])
        for v in value:
            if key is not None and isinstance(v, dict):
                yield from _flatten(f"{prefix}.{v.get(key)}", {k: x for k, x in v.items() if k != key})


def _metrics(report: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for d in report.get("datasets", []):
        name = d["name"] + (" (gold context)" if d.get("gold_context") else "")
        for s in d.get("systems", []):
            if s.get("error"):
                continue
            body = {k: v for k, v in s.items() if k not in ("system", "description", "error")}
            for metric, v in _flatten("", body):
                out[(name, s["system"], metric)] = v
    return out


def compare(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> list[Delta]:
    """Every metric of either report, A's value against B's (None where one lacks it)."""
    ma, mb = _metrics(load_report(a)), _metrics(load_report(b))
    keys = sorted(set(ma) | set(mb))
    return [Delta(d, s, m, ma.get((d, s, m)), mb.get((d, s, m))) for d, s, m in keys]


def format_deltas(deltas: list[Delta], *, show_all: bool = False) -> str:
    """A table of the changed metrics (with ``show_all``, unchanged ones and ones only one
    report has too), grouped by dataset and system; ``+``/``-`` mark better/worse."""
    lines: list[str] = []
    current: tuple[str, str] | None = None
    only_a = sum(1 for d in deltas if d.b is None)
    only_b = sum(1 for d in deltas if d.a is None)
    for d in deltas:
        if not show_all and (d.delta is None or abs(d.delta) < 1e-12):
            continue
        if (d.dataset, d.system) != current:
            current = (d.dataset, d.system)
            lines.append(f"{d.dataset} / {d.system}")
        mark = {True: "+", False: "-", None: " "}[d.better]
        a = "–" if d.a is None else f"{d.a:.4f}"
        b = "–" if d.b is None else f"{d.b:.4f}"
        delta = "" if d.delta is None else f"{d.delta:+.4f}"
        lines.append(f"  {mark} {d.metric:<40} {a:>12} {b:>12} {delta:>10}")
    if not lines:
        lines.append("no metric changed")
    else:
        lines.insert(0, f"  {'':1} {'metric':<40} {'A':>12} {'B':>12} {'B - A':>10}")
    if (only_a or only_b) and not show_all:
        lines.append(f"({only_a} metrics only in A, {only_b} only in B: --all lists them)")
    return "\n".join(lines)
