"""Run systems over evaluation datasets and write the report: the harness behind ``release-qa eval``."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.answer.span_reader import reader_available
from qa.assistant import Assistant, resolve_reader
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.evaluation.data import EvalSet, after_another, article_half, load_dataset, sample
from qa.evaluation.report import DatasetReport, SuiteReport, dataset_report, write_report
from qa.evaluation.runner import SystemRun, run_assistant
from qa.evaluation.systems import DESCRIPTIONS, MODES, READERS, SYSTEMS
from qa.index.cache import cached_index

logger = logging.getLogger(__name__)


Peer = Callable[[EvalSet, Path, bool], SystemRun]
"""Runs a peer system over a dataset: (dataset, a work folder, progress) -> its run."""


def default_systems(peers: Sequence[str] = ()) -> tuple[str, ...]:
    """The shipped pipeline, the reader it does not ship (to compare), the retrieval baselines, peers."""
    other = "features" if resolve_reader(None) == "neural" else "neural"
    if other == "neural" and not reader_available():
        return ("pipeline", "dense", "bm25", *peers)
    return ("pipeline", other, "dense", "bm25", *peers)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A dataset file, the corpus it is asked over (none for SQuAD) and its report name."""

    name: str
    path: Path
    corpus: tuple[Path, ...] = ()
    half: int | None = None
    """Only the questions of this half of the articles (``article_half``); None: all."""
    after_another: bool = False
    """Ask every first question after another (``after_another``)."""


def evaluate(
    eval_set: EvalSet,
    out_dir: Path,
    *,
    embedder: Embedder,
    systems: Sequence[str] | None = None,
    cache_dir: Path,
    gold_context: bool = False,
    limit: int | None = None,
    progress: bool = False,
    peers: Mapping[str, Peer] | None = None,
    shown: Callable[[Path], str] = str,
) -> DatasetReport:
    """Every system over one dataset (already sampled), scored and plotted. ``shown``: how the
    report names the index folder."""
    peers = peers or {}
    systems = default_systems(tuple(peers)) if systems is None else systems
    unknown = set(systems) - set(SYSTEMS) - set(peers)
    if unknown:
        known = ", ".join((*SYSTEMS, *peers))
        raise ValueError(f"unknown systems {sorted(unknown)}; choose from {known}")
    t0 = time.perf_counter()
    index, index_path, built = cached_index(eval_set.releases, embedder, cache_dir, progress=progress)
    built_s = time.perf_counter() - t0 if built else None
    runs: list[SystemRun] = []
    for system in systems:
        if system in peers:
            if gold_context:
                runs.append(
                    SystemRun(system, system, (), error="it has no gold-context mode in this harness")
                )
                continue
            runs.append(peers[system](eval_set, index_path.parent / system, progress))
            continue
        if gold_context and system in ("dense", "bm25"):
            continue  # without retrieval the retrieval baselines are the pipeline itself
        assistant = Assistant(index, embedder, retrieval=MODES[system], reader=READERS.get(system))
        runs.append(
            run_assistant(
                eval_set,
                assistant,
                system,
                description=DESCRIPTIONS[system].format(reader=assistant.answerer_kind),
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
        index=shown(index_path),
        passages=len(index.passages),
        index_built_seconds=built_s,
    )


def run(
    specs: Sequence[DatasetSpec],
    out_dir: str | os.PathLike[str],
    *,
    systems: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str],
    gold_context: bool = False,
    limit: int | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    peers: Mapping[str, Peer] | None = None,
    commit: str = "unknown",
    shown: Callable[[Path], str] = str,
) -> tuple[SuiteReport, Path]:
    """Evaluate each dataset and write report.md, metrics.json and plots under ``out_dir``."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    emb = embedder if embedder is not None else SentenceTransformerEmbedder()
    datasets: list[DatasetReport] = []
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not specs:
        raise ValueError("no datasets to run")
    for spec in specs:
        logger.info("eval: %s", spec.name)
        full = load_dataset(spec.path, spec.corpus, spec.name)
        if spec.half is not None:
            full = article_half(full, spec.half)
        if spec.after_another:
            full = after_another(full)
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
                peers=peers,
                shown=shown,
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
