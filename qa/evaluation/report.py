"""The written report: metrics.json (everything), report.md (the main numbers, the plots)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.evaluation import plots
from qa.evaluation.data import EvalSet
from qa.evaluation.runner import Prediction, SystemRun
from qa.evaluation.scoring import SystemMetrics, score_predictions, system_metrics

logger = logging.getLogger(__name__)

REPORT_VERSION = 1


@dataclass(frozen=True, slots=True)
class DatasetReport:
    name: str
    kind: str
    questions: int
    answerable: int
    releases: int
    passages: int
    sources: tuple[str, ...]
    gold_context: bool
    limit: int | None
    index: str
    index_built_seconds: float | None
    systems: tuple[SystemMetrics, ...]
    plots: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SuiteReport:
    created: str
    commit: str
    seconds: float
    model: str
    datasets: tuple[DatasetReport, ...]
    version: int = REPORT_VERSION


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in name)


def dataset_report(
    eval_set: EvalSet,
    runs: Sequence[SystemRun],
    out_dir: Path,
    *,
    gold_context: bool,
    limit: int | None,
    index: str,
    passages: int,
    index_built_seconds: float | None,
) -> DatasetReport:
    """Score every run, draw the dataset's plots, keep the predictions for inspection."""
    systems = tuple(system_metrics(eval_set, r) for r in runs)
    slug = _slug(eval_set.name)
    title = f"{eval_set.name} ({len(eval_set.items)} questions)"
    figs = out_dir / "plots"
    drawn: list[tuple[str, Path | None]] = [
        ("recall@k", plots.recall_curve(systems, title, figs / f"{slug}-recall.png")),
        ("F1 by question type", plots.f1_by_type(systems, title, figs / f"{slug}-by-type.png")),
        ("reliability diagram", plots.reliability(systems, title, figs / f"{slug}-reliability.png")),
        (
            "score histograms",
            plots.score_histograms(_score_groups(eval_set, runs), title, figs / f"{slug}-scores.png"),
        ),
        ("latency per stage", plots.latency(systems, title, figs / f"{slug}-latency.png")),
    ]
    for r in runs:
        if r.predictions:
            write_predictions(out_dir / "predictions" / slug / f"{_slug(r.system)}.jsonl", r.predictions)
    return DatasetReport(
        name=eval_set.name,
        kind=eval_set.kind,
        questions=len(eval_set.items),
        answerable=sum(1 for i in eval_set.items if i.answerable),
        releases=len(eval_set.releases),
        passages=passages,
        sources=eval_set.sources,
        gold_context=gold_context,
        limit=limit,
        index=index,
        index_built_seconds=index_built_seconds,
        systems=systems,
        plots=tuple((label, str(p.relative_to(out_dir))) for label, p in drawn if p is not None),
    )


def _score_groups(
    eval_set: EvalSet, runs: Sequence[SystemRun]
) -> list[tuple[str, list[float], list[float], list[float]]]:
    out = []
    for r in runs:
        if not r.predictions:
            continue
        scored = score_predictions(eval_set, r.predictions)
        right = [s.pred.score for s in scored if s.correct]
        wrong = [s.pred.score for s in scored if s.item.answerable and not s.correct]
        none = [s.pred.score for s in scored if not s.item.answerable]
        out.append((r.system, right, wrong, none))
    return out


def write_predictions(path: Path, preds: Sequence[Prediction]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in preds:
            f.write(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- writing


def to_json(report: SuiteReport) -> str:
    return json.dumps(dataclasses.asdict(report), indent=1, ensure_ascii=False)


def write_report(report: SuiteReport, out_dir: str | os.PathLike[str]) -> Path:
    """Write metrics.json and report.md under ``out_dir``; returns report.md's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(to_json(report) + "\n", encoding="utf-8")
    md = out / "report.md"
    md.write_text(render_markdown(report), encoding="utf-8")
    return md


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def render_markdown(report: SuiteReport) -> str:
    lines = [
        "# release-qa evaluation",
        "",
        f"Run {report.created} at commit `{report.commit}`, model `{report.model}`; "
        f"{report.seconds / 60:.1f} min in all. Percentages unless marked; what each metric means: "
        "`evals/README.md`. Full numbers: `metrics.json`; every answer: `predictions/`.",
        "",
    ]
    for d in report.datasets:
        lines += _dataset_section(d)
    return "\n".join(lines) + "\n"


def _dataset_section(d: DatasetReport) -> list[str]:
    setting = "gold context (no retrieval)" if d.gold_context else "open corpus"
    sample = f", a seeded sample of {d.limit}" if d.limit else ""
    built = (
        f"built now in {d.index_built_seconds:.0f} s"
        if d.index_built_seconds is not None
        else "reused from the cache"
    )
    out = [
        f"## {d.name}",
        "",
        f"{d.questions} questions ({d.answerable} answerable{sample}), {setting}, over {d.releases} "
        f"releases / {d.passages} passages (index `{d.index}`, {built}).",
        "",
    ]
    ok = [s for s in d.systems if s.error is None]
    if any(s.retrieval for s in ok):
        out += [
            "**Retrieval** (answerable questions; passage = holds a gold answer, release = the gold release)",
            "",
            "| system | R@1 | R@5 | R@10 | R@20 | MRR | release R@1 | release R@5 | release MRR |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in ok:
            r = s.retrieval
            if r is None:
                continue
            out.append(
                f"| {s.system} | {_pct(r.recall_at_1)} | {_pct(r.recall_at_5)} | {_pct(r.recall_at_10)} | "
                f"{_pct(r.recall_at_20)} | {_num(r.mrr)} | {_pct(r.release_recall_at_1)} | "
                f"{_pct(r.release_recall_at_5)} | {_num(r.release_mrr)} |"
            )
        out.append("")
    out += [
        "**Answers** (answerable questions, best guess; EM/F1 = SQuAD-official on the answer text)",
        "",
        "| system | EM | F1 | sentence holds gold | citation accuracy | words per answer |",
        "|---|---|---|---|---|---|",
    ]
    for s in ok:
        a = s.answer
        if a is not None:
            out.append(
                f"| {s.system} | {_pct(a.em)} | {_pct(a.f1)} | {_pct(a.sentence_holds_gold)} | "
                f"{_pct(a.citation_accuracy)} | {a.mean_answer_words:.1f} |"
            )
    out += [
        "",
        "**As users see it** (at the system's own threshold; a decline on an answerable question is a miss)",
        "",
        "| system | F1 | quote holds gold | right release | answerable declined | unanswerable declined |",
        "|---|---|---|---|---|---|",
    ]
    for s in ok:
        u = s.as_users_see
        if u is not None:
            out.append(
                f"| {s.system} | {_pct(u.f1)} | {_pct(u.quote_holds_gold)} | {_pct(u.right_release)} | "
                f"{_pct(u.answerable_declined)} | {_pct(u.unanswerable_declined)} |"
            )
    out += [
        "",
        "**Abstention and calibration** (all questions; own = the system's own threshold or flag; "
        "best = oracle threshold of the sweep, reported only)",
        "",
        "| system | own: answered | own: F1 | own: HasAns F1 | own: NoAns acc | best: threshold | best: F1 "
        "| best: HasAns F1 | best: NoAns acc | AUC ans/unans | AUC right/wrong | ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in ok:
        ab, cal = s.abstention, s.calibration
        if ab is None or cal is None:
            continue
        own, best = ab.own, ab.best
        own_t = "" if own.threshold is None else f" (≥ {own.threshold:.2f})"
        out.append(
            f"| {s.system} | {_pct(own.answer_rate)}{own_t} | {_pct(own.f1)} | {_pct(own.has_ans_f1)} | "
            f"{_pct(own.no_ans_accuracy)} | {_num(best.threshold if best else None)} | "
            f"{_pct(best.f1 if best else None)} | {_pct(best.has_ans_f1 if best else None)} | "
            f"{_pct(best.no_ans_accuracy if best else None)} | {_num(ab.auc_answerable)} | "
            f"{_num(ab.auc_correct)} | {_num(cal.ece)} |"
        )
    out += [
        "",
        "**Latency** (ms per question, p50 / p95; the run's wall time in minutes)",
        "",
        "| system | stages (p50 / p95) | total p50 | total p95 | run (min) |",
        "|---|---|---|---|---|",
    ]
    for s in ok:
        stages = ", ".join(
            f"{x.stage} {_ms(x.p50_ms)} / {_ms(x.p95_ms)}" for x in s.latency if x.stage != "total"
        )
        total = next((x for x in s.latency if x.stage == "total"), None)
        out.append(
            f"| {s.system} | {stages} | {_ms(total.p50_ms if total else None)} | "
            f"{_ms(total.p95_ms if total else None)} | {s.seconds / 60:.1f} |"
        )
    first = ok[0] if ok else None
    if first is not None and first.by_type:
        out += [
            "",
            f"**By question type** ({first.system}; answer metrics over the type's answerable questions)",
            "",
            "| type | n | EM | F1 | sentence holds gold | R@5 | declined |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in first.by_type:
            out.append(
                f"| {t.qtype} | {t.n} | {_pct(t.em)} | {_pct(t.f1)} | {_pct(t.sentence_holds_gold)} | "
                f"{_pct(t.recall_at_5)} | {_pct(t.declined)} |"
            )
    turns = [s for s in ok if s.by_turn]
    if turns:
        out += [
            "",
            "**Follow-ups** (asked with the earlier turns as chat history; cairn takes no history)",
            "",
            "| system | turn | n | EM | F1 | sentence holds gold | R@5 | declined |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for s in turns:
            for t in s.by_turn:
                out.append(
                    f"| {s.system} | {t.qtype} | {t.n} | {_pct(t.em)} | {_pct(t.f1)} | "
                    f"{_pct(t.sentence_holds_gold)} | {_pct(t.recall_at_5)} | {_pct(t.declined)} |"
                )
    out += ["", "**Systems**", ""]
    for s in d.systems:
        line = f"- `{s.system}`: {s.description}"
        if s.error is not None:
            line += f". **Not run**: {s.error}"
        out.append(line)
    out.append("")
    for label, path in d.plots:
        out += [f"![{d.name}: {label}]({path})", ""]
    return out


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A metrics.json (or the folder holding one) as parsed JSON."""
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.json"
    if not p.is_file():
        raise FileNotFoundError(f"no metrics.json at {path}")
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "datasets" not in data:
        raise ValueError(f"{p} is not an eval report (no 'datasets')")
    return data
