"""``release-qa eval``: run a dataset or the standard suite, or compare two reports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = "evals/reports/latest"
DEFAULT_CACHE = "evals/cache"
"""Where eval indexes are cached (relative to where the command runs); $RELEASE_QA_EVAL_CACHE moves it."""


def comma_list(value: str) -> tuple[str, ...]:
    """The names of a comma-separated option, blanks dropped ("" gives none)."""
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _repository() -> Any:
    """The checkout's ``evals.suite`` (the standard suite and the peer cairn-pipeline), or None when
    release-qa runs from an installed package without its repository."""
    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / "evals" / "suite.py").is_file():
        return None
    if str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    import evals.suite

    return evals.suite


def add_eval_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``eval`` (and ``eval compare``) on the main command line."""
    from qa.evaluation.systems import SYSTEMS

    p = subparsers.add_parser(
        "eval",
        help="measure answer accuracy on a QA dataset; writes report.md and metrics.json",
        description="Run one dataset (--dataset) or the standard suite (--suite standard): "
        "the pipeline, its BM25-only and dense-only baselines and the peer cairn-pipeline "
        "over the same corpus and questions. `release-qa eval compare A B` prints the deltas.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--dataset", type=Path, help="SQuAD JSON (.json) or press-release JSONL (.jsonl)")
    what.add_argument("--suite", choices=["standard"], help="SQuAD v1.1 + v2.0 dev-shared and press-dev")
    p.add_argument(
        "--corpus",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="files or folders of the releases a JSONL dataset asks about",
    )
    p.add_argument(
        "--limit", type=int, help="a seeded sample of N questions per dataset (the corpus stays whole)"
    )
    p.add_argument(
        "--out", type=Path, default=Path(DEFAULT_OUT), help=f"report folder (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--gold-context",
        action="store_true",
        help="skip retrieval: answer from the question's own paragraph (SQuAD) or release (JSONL)",
    )
    p.add_argument(
        "--systems",
        default=None,
        help=f"comma-separated, from {','.join(SYSTEMS)} and, in the repository, cairn (default: the "
        "shipped pipeline, the reader it does not ship, the retrieval baselines and cairn)",
    )
    p.add_argument(
        "--half",
        type=int,
        choices=(0, 1),
        help="only the questions of half the articles (0 tunes the reader, 1 is reported)",
    )
    p.add_argument(
        "--after-another",
        action="store_true",
        help="ask every first question after another, on another release (a chat's new subject)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("RELEASE_QA_EVAL_CACHE") or DEFAULT_CACHE),
        help=f"index cache folder (default $RELEASE_QA_EVAL_CACHE or {DEFAULT_CACHE})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval, eval_command=None)

    sub = p.add_subparsers(dest="eval_command")
    c = sub.add_parser("compare", help="print the metric deltas between two reports (B - A)")
    c.add_argument("a", type=Path, help="the earlier report folder or metrics.json")
    c.add_argument("b", type=Path, help="the later report folder or metrics.json")
    c.add_argument("--all", action="store_true", help="list unchanged metrics too")
    c.set_defaults(func=cmd_compare)


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.evaluation.harness import DatasetSpec, run

    repo = _repository()
    if args.suite == "standard":
        if args.corpus:
            raise ValueError("--suite standard brings its own corpora; drop --corpus")
        if repo is None:
            raise FileNotFoundError(
                "the standard suite runs from the release-qa repository (evals/ beside qa/)"
            )
        specs = repo.standard_suite()
        missing = [str(s.path) for s in specs if not s.path.exists()]
        if missing:
            raise FileNotFoundError(
                f"the standard suite needs {', '.join(missing)} (../shared beside the checkout)"
            )
    elif args.dataset is not None:
        name = args.dataset.name.removesuffix(".gz").removesuffix(".json").removesuffix(".jsonl")
        if args.after_another:
            name += "-after-another"
        specs = (
            DatasetSpec(
                name, args.dataset, tuple(args.corpus), half=args.half, after_another=args.after_another
            ),
        )
    else:
        raise ValueError("say what to run: --dataset PATH or --suite standard (or: eval compare A B)")
    systems = None if args.systems is None else comma_list(args.systems)
    report, md = run(
        specs,
        args.out,
        systems=systems,
        cache_dir=args.cache,
        gold_context=args.gold_context,
        limit=args.limit,
        progress=not args.quiet,
        peers=repo.PEERS if repo is not None else None,
        commit=repo.git_commit() if repo is not None else "unknown",
        shown=repo.shown if repo is not None else str,
    )
    print(_summary(report))
    print(f"\nreport: {md}  ({report.seconds / 60:.1f} min)")
    return 0


def _pct(x: float | None) -> str:
    return "    –" if x is None else f"{100 * x:5.1f}"


def _summary(report: object) -> str:
    from qa.evaluation.report import SuiteReport

    assert isinstance(report, SuiteReport)
    lines = []
    for d in report.datasets:
        lines.append(f"\n{d.name}: {d.questions} questions")
        for s in d.systems:
            if s.error is not None:
                lines.append(f"  {s.system:<9} not run: {s.error}")
                continue
            r, a, ab = s.retrieval, s.answer, s.abstention
            parts = []
            if r is not None:
                parts.append(f"R@5 {100 * r.recall_at_5:5.1f}")
            if a is not None:
                parts += [
                    f"EM {100 * a.em:5.1f}",
                    f"F1 {100 * a.f1:5.1f}",
                    f"sent {100 * a.sentence_holds_gold:5.1f}",
                ]
            u = s.as_users_see
            if u is not None:
                parts.append(
                    f"| as users see it: F1 {_pct(u.f1)}  quote {_pct(u.quote_holds_gold)}  "
                    f"release {_pct(u.right_release)}  declined {_pct(u.answerable_declined)}"
                )
                if u.unanswerable_declined is not None:
                    parts.append(f"unans declined {_pct(u.unanswerable_declined)}")
            if ab is not None:
                parts.append(f"F1@own {100 * ab.own.f1:5.1f}")
                if ab.own.no_ans_accuracy is not None:
                    parts.append(f"NoAns {100 * ab.own.no_ans_accuracy:5.1f}")
            lines.append(f"  {s.system:<9} " + "  ".join(parts))
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from qa.evaluation.compare import compare, format_deltas

    print(format_deltas(compare(args.a, args.b), show_all=args.all))
    return 0


if __name__ == "__main__":  # pragma: no cover
    from app.cli import main

    sys.exit(main(["eval", *sys.argv[1:]]))
