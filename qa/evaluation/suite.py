"""Running datasets end to end: load, index (cached), ask every system, score, report."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.assistant import Assistant, resolve_reader
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.evaluation.cache import cached_index
from qa.evaluation.data import EvalSet, article_half, load_dataset, sample
from qa.evaluation.peers import PROJECT_ROOT, run_cairn
from qa.evaluation.report import DatasetReport, SuiteReport, dataset_report, write_report
from qa.evaluation.runner import SystemRun, run_assistant
from qa.reader import reader_available

logger = logging.getLogger(__name__)

SYSTEMS = ("pipeline", "neural", "features", "dense", "bm25", "cairn")
"""``pipeline`` is the assistant as it ships (hybrid retrieval, its default reader); ``neural`` and
``features`` the same retrieval with one reader forced (the trained neural reader, the feature-based
answerer); ``dense`` and ``bm25`` the shipped assistant with one retriever only; ``cairn`` the peer
cairn-pipeline."""

DESCRIPTIONS = {
    "pipeline": "release-qa as shipped: hybrid retrieval (BM25 + MiniLM, rank fusion), its {reader} reader",
    "neural": "release-qa, hybrid retrieval, the neural reader (MiniLM fine-tuned on SQuAD v1.1 train)",
    "features": "release-qa, hybrid retrieval, the feature-based answerer (spaCy candidates, boosted trees)",
    "dense": "release-qa with dense-only retrieval (MiniLM + FAISS), its {reader} reader",
    "bm25": "release-qa with BM25-only retrieval (bm25s), its {reader} reader",
}
MODES = {"pipeline": "hybrid", "neural": "hybrid", "features": "hybrid", "dense": "dense", "bm25": "bm25"}
READERS = {"neural": "neural", "features": "features"}


def default_systems() -> tuple[str, ...]:
    """The shipped pipeline, the reader it does not ship (to compare), the retrieval baselines, cairn."""
    other = "features" if resolve_reader(None) == "neural" else "neural"
    if other == "neural" and not reader_available():
        return ("pipeline", "dense", "bm25", "cairn")
    return ("pipeline", other, "dense", "bm25", "cairn")


DEFAULT_CACHE = Path(os.environ.get("RELEASE_QA_EVAL_CACHE") or PROJECT_ROOT / "evals" / "cache")
"""Where eval indexes are cached; ``RELEASE_QA_EVAL_CACHE`` moves it (e.g. to a CI cache)."""
SHARED = PROJECT_ROOT.parent / "shared"


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A dataset file, the corpus it is asked over (none for SQuAD) and its report name."""

    name: str
    path: Path
    corpus: tuple[Path, ...] = ()
    half: int | None = None
    """Only the questions of this half of the articles (``article_half``); None: all."""


def standard_suite(root: Path = PROJECT_ROOT, shared: Path | None = None) -> tuple[DatasetSpec, ...]:
    """SQuAD v1.1 and v2.0 dev-shared (open corpus), press-dev over the seed and us-gov-cyber."""
    sh = shared if shared is not None else root.parent / "shared"
    return (
        DatasetSpec("squad-v1.1-dev-shared", sh / "evals" / "squad-v1.1-dev-shared.json"),
        # half 0 tunes the reader's calibration and no-answer threshold; half 1 is reported
        DatasetSpec("squad-v2.0-dev-shared", sh / "evals" / "squad-v2.0-dev-shared.json", half=1),
        DatasetSpec(
            "press-dev",
            root / "evals" / "datasets" / "press-dev.jsonl",
            (root / "corpus", sh / "corpus" / "us-gov-cyber"),
        ),
    )


def _shown(path: Path) -> str:
    """A path relative to the project when it lies inside it (reports travel)."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def git_commit(root: Path = PROJECT_ROOT) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+changes' if dirty else ''}"


def evaluate(
    eval_set: EvalSet,
    out_dir: Path,
    *,
    embedder: Embedder,
    systems: Sequence[str] | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    gold_context: bool = False,
    limit: int | None = None,
    progress: bool = False,
) -> DatasetReport:
    """Every system over one dataset (already sampled), scored and plotted."""
    systems = default_systems() if systems is None else systems
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"unknown systems {sorted(unknown)}; choose from {', '.join(SYSTEMS)}")
    t0 = time.perf_counter()
    index, index_path, built = cached_index(eval_set.releases, embedder, cache_dir, progress=progress)
    built_s = time.perf_counter() - t0 if built else None
    runs: list[SystemRun] = []
    for system in systems:
        if system == "cairn":
            if gold_context:
                runs.append(
                    SystemRun(
                        "cairn", "cairn-pipeline", (), error="it has no gold-context mode in this harness"
                    )
                )
                continue
            runs.append(run_cairn(eval_set, index_path.parent / "cairn", progress=progress))
            continue
        if gold_context and system in ("dense", "bm25"):
            continue  # without retrieval the retrieval baselines are the pipeline itself
        assistant = Assistant(index, embedder, retrieval=MODES[system], reader=READERS.get(system))
        runs.append(
            run_assistant(
                eval_set,
                assistant,
                system,
                description=DESCRIPTIONS[system].format(reader=assistant.reader),
                gold_context=gold_context,
                progress=progress,
            )
        )
    return dataset_report(
        eval_set,
        runs,
        out_dir,
        gold_context=gold_context,
        limit=limit,
        index=_shown(index_path),
        passages=len(index.passages),
        index_built_seconds=built_s,
    )


def run(
    specs: Sequence[DatasetSpec],
    out_dir: str | os.PathLike[str],
    *,
    systems: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] = DEFAULT_CACHE,
    gold_context: bool = False,
    limit: int | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
) -> tuple[SuiteReport, Path]:
    """Evaluate each dataset and write report.md, metrics.json and plots under ``out_dir``."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    emb = embedder if embedder is not None else SentenceTransformerEmbedder()
    datasets: list[DatasetReport] = []
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = git_commit()
    if not specs:
        raise ValueError("no datasets to run")
    for spec in specs:
        logger.info("eval: %s", spec.name)
        full = load_dataset(spec.path, spec.corpus, spec.name)
        if spec.half is not None:
            full = article_half(full, spec.half)
        picked = sample(full, limit)
        datasets.append(
            evaluate(
                picked,
                out,
                embedder=emb,
                systems=systems,
                cache_dir=Path(cache_dir),
                gold_context=gold_context,
                limit=len(picked.items) if len(picked.items) < len(full.items) else None,
                progress=progress,
            )
        )
        # written after every dataset, so a long suite that dies keeps what it measured
        report = SuiteReport(
            created=created,
            commit=commit,
            seconds=time.perf_counter() - t0,
            model=emb.name,
            datasets=tuple(datasets),
        )
        md = write_report(report, out)
    return report, md
