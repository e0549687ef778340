"""The report's figures (matplotlib, Agg backend: no display needed), one PNG each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from qa.evaluation.scoring import SystemMetrics

logger = logging.getLogger(__name__)


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: object, path: Path) -> Path:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=110)  # type: ignore[attr-defined]
    plt.close(fig)
    return path


def recall_curve(systems: Sequence[SystemMetrics], title: str, path: Path) -> Path | None:
    rows = [s for s in systems if s.retrieval is not None]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in rows:
        assert s.retrieval is not None
        ks = range(1, len(s.retrieval.curve) + 1)
        ax.plot(ks, s.retrieval.curve, marker=".", label=s.system)
    ax.set(xlabel="k (passages retrieved)", ylabel="recall@k (passage holds a gold answer)", title=title)
    ax.set_xticks([1, 5, 10, 15, 20])
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def f1_by_type(systems: Sequence[SystemMetrics], title: str, path: Path) -> Path | None:
    rows = [s for s in systems if s.by_type]
    if not rows:
        return None
    types = [t.qtype for t in rows[0].by_type if t.f1 is not None]
    if not types:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    width = 0.8 / len(rows)
    for j, s in enumerate(rows):
        got = {t.qtype: t for t in s.by_type}
        xs = [i + j * width for i in range(len(types))]
        axes[0].bar(xs, [(got[t].f1 or 0.0) if t in got else 0.0 for t in types], width, label=s.system)
        axes[1].bar(xs, [(got[t].sentence_holds_gold or 0.0) if t in got else 0.0 for t in types], width)
    n = {t.qtype: t.n for t in rows[0].by_type}
    labels = [f"{t}\n({n[t]})" for t in types]
    for ax, what in zip(axes, ("token F1 (best guess)", "quoted sentence holds a gold answer"), strict=True):
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(types))], labels, fontsize=7)
        ax.set_title(what, fontsize=9)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def reliability(systems: Sequence[SystemMetrics], title: str, path: Path) -> Path | None:
    rows = [s for s in systems if s.calibration is not None]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for s in rows:
        assert s.calibration is not None
        bins = [b for b in s.calibration.bins if b.count]
        ax.plot(
            [b.mean_score for b in bins],
            [b.accuracy for b in bins],
            marker="o",
            label=f"{s.system} (ECE {s.calibration.ece:.3f})",
        )
    ax.set(xlabel="score (clipped to [0, 1])", ylabel="share correct", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def score_histograms(
    scores: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float]]], title: str, path: Path
) -> Path | None:
    """One panel per system: scores of answerable questions answered right, answered wrong,
    and of unanswerable questions."""
    if not scores:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(4 * len(scores), 3.4), squeeze=False)
    for ax, (system, right, wrong, unanswerable) in zip(axes[0], scores, strict=True):
        every = [*right, *wrong, *unanswerable]
        lo, hi = (min(every), max(every)) if every else (0.0, 1.0)
        bins = [lo + (hi - lo) * i / 30 for i in range(31)] if hi > lo else 30
        for data, label in (
            (right, "answerable, right"),
            (wrong, "answerable, wrong"),
            (unanswerable, "unanswerable"),
        ):
            if data:
                ax.hist(data, bins=bins, alpha=0.5, label=f"{label} ({len(data)})", density=True)
        ax.set(title=system, xlabel="score")
        ax.legend(fontsize=6)
    fig.suptitle(title)
    return _save(fig, path)


def latency(systems: Sequence[SystemMetrics], title: str, path: Path) -> Path | None:
    rows = [s for s in systems if s.latency]
    if not rows:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.4), squeeze=False)
    for ax, s in zip(axes[0], rows, strict=True):
        stages = [x.stage for x in s.latency]
        xs = range(len(stages))
        ax.bar([x - 0.2 for x in xs], [x.p50_ms for x in s.latency], 0.4, label="p50")
        ax.bar([x + 0.2 for x in xs], [x.p95_ms for x in s.latency], 0.4, label="p95")
        ax.set_xticks(list(xs), stages, fontsize=7, rotation=30)
        ax.set(title=s.system, ylabel="ms per question")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)
