"""Peers run outside the project: a subprocess in the peer's own venv, JSON in and out.

The peer never becomes a dependency of release-qa: its venv lives under
``evals/.peers/<name>`` (made by ``evals/peers/setup_<name>.sh``) and its adapter,
``evals/peers/<name>.py``, reads the questions and the corpus and writes one JSON answer per
question, which is scored here exactly like the project's own predictions.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

from qa.embedding import packaged_model_path
from qa.evaluation.data import EvalSet
from qa.evaluation.runner import DEPTH, Prediction, SystemRun, gold_ranks

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CAIRN_DESCRIPTION = (
    "cairn-pipeline 0.1.0: hybrid BM25 + MiniLM retrieval (k=8, no reranker), the offline "
    "extractive stub answerer (sentence of highest question-word overlap), weighted confidence"
)


def cairn_python(root: Path = PROJECT_ROOT) -> Path:
    return root / "evals" / ".peers" / "cairn" / "bin" / "python"


def run_cairn(
    eval_set: EvalSet,
    work_dir: str | os.PathLike[str],
    *,
    root: Path = PROJECT_ROOT,
    timeout: float | None = None,
    progress: bool = False,
) -> SystemRun:
    """Run cairn-pipeline over ``eval_set`` (its index is kept in ``work_dir``); a run that
    cannot happen comes back with ``error`` saying why, never with made-up numbers."""
    python, adapter = cairn_python(root), root / "evals" / "peers" / "cairn.py"
    if not python.exists():
        return _failed(f"its venv is missing: run evals/peers/setup_cairn.sh (expected {python})")
    if not adapter.exists():
        return _failed(f"the adapter {adapter} is missing")
    work = Path(work_dir)
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    wanted = {f"{r.id}.txt" for r in eval_set.releases}
    for stale in corpus.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    for r in eval_set.releases:
        f = corpus / f"{r.id}.txt"
        if not f.exists():
            f.write_text(r.text, encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="cairn-run-") as tmp:
        request = Path(tmp) / "request.json"
        output = Path(tmp) / "answers.jsonl"
        request.write_text(
            json.dumps(
                {
                    "corpus_dir": str(corpus),
                    "questions": [{"id": i.id, "question": i.question} for i in eval_set.items],
                    "model_path": str(packaged_model_path()),
                    "work_dir": str(work),
                    "output": str(output),
                    "depth": DEPTH,
                    "mode": "hybrid",
                }
            ),
            encoding="utf-8",
        )
        t0 = time.perf_counter()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)
        logger.info("cairn: %d questions over %d releases", len(eval_set.items), len(eval_set.releases))
        try:
            proc = subprocess.run(
                [str(python), str(adapter), str(request)],
                env=env,
                capture_output=not progress,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return _failed(f"it did not finish within {timeout:.0f} s")
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or "").strip().splitlines()[-3:] if proc.stderr else []
            return _failed(f"the adapter exited with status {proc.returncode}: {' | '.join(tail)}")
        rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines() if line]
        meta_file = output.with_suffix(".meta.json")
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
    return SystemRun(
        system="cairn",
        description=f"{CAIRN_DESCRIPTION}; {meta.get('chunks', '?')} chunks",
        predictions=_predictions(eval_set, rows),
        threshold=None,
        seconds=seconds,
    )


def _predictions(eval_set: EvalSet, rows: list[dict[str, object]]) -> tuple[Prediction, ...]:
    releases = {r.id: r for r in eval_set.releases}
    by_id = {str(r["id"]): r for r in rows}
    out = []
    for item in eval_set.items:
        row = by_id.get(item.id)
        if row is None:
            raise ValueError(f"cairn gave no answer for question {item.id!r}")
        passages = [(str(d), int(s), int(e)) for d, s, e in row["passages"]]  # type: ignore[union-attr, misc]
        pr, rr = gold_ranks(item, passages, releases)
        text = row["answer"]
        ms = row.get("ms") or {}
        out.append(
            Prediction(
                item_id=item.id,
                text=None if text is None else str(text),
                sentence=None if text is None else str(text),
                score=float(row["confidence"]),  # type: ignore[arg-type]
                declined=bool(row["abstained"]),
                release_id=None if row["doc"] is None else str(row["doc"]),
                start=None if row["start"] is None else int(row["start"]),  # type: ignore[call-overload]
                end=None if row["end"] is None else int(row["end"]),  # type: ignore[call-overload]
                passage_rank=pr,
                release_rank=rr,
                stages=tuple(sorted((str(k), float(v)) for k, v in ms.items())),  # type: ignore[union-attr]
            )
        )
    return tuple(out)


def _failed(reason: str) -> SystemRun:
    logger.warning("cairn not run: %s", reason)
    return SystemRun(system="cairn", description=CAIRN_DESCRIPTION, predictions=(), error=reason)
