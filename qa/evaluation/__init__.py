"""Evaluation: datasets, metrics, scoring, the harness and the written report (what an installed
user runs on their own data with ``release-qa eval --dataset``). The repository's own suite, its
peers and its paths live in ``evals/`` beside the package. Names load on first use."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Delta": "qa.evaluation.compare",
    "compare": "qa.evaluation.compare",
    "format_deltas": "qa.evaluation.compare",
    "EvalItem": "qa.evaluation.data",
    "EvalSet": "qa.evaluation.data",
    "load_dataset": "qa.evaluation.data",
    "load_jsonl": "qa.evaluation.data",
    "load_squad": "qa.evaluation.data",
    "sample": "qa.evaluation.data",
    "wh_type": "qa.evaluation.data",
    "exact_match": "qa.evaluation.metrics",
    "normalize_answer": "qa.evaluation.metrics",
    "token_f1": "qa.evaluation.metrics",
    "Prediction": "qa.evaluation.runner",
    "SystemRun": "qa.evaluation.runner",
    "run_assistant": "qa.evaluation.runner",
}

__all__ = [
    "Delta",
    "EvalItem",
    "EvalSet",
    "Prediction",
    "SystemRun",
    "compare",
    "exact_match",
    "format_deltas",
    "load_dataset",
    "load_jsonl",
    "load_squad",
    "normalize_answer",
    "run_assistant",
    "sample",
    "token_f1",
    "wh_type",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qa.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
