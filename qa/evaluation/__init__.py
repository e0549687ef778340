"""Evaluation: datasets, metrics, scoring, the runner and the written report (what an installed
user runs on their own data with ``release-qa eval --dataset``). The repository's own suite, its
peers and its paths live in ``evals/`` beside the package."""

from qa.evaluation.compare import Delta, compare, format_deltas
from qa.evaluation.data import EvalItem, EvalSet, load_dataset, load_jsonl, load_squad, sample, wh_type
from qa.evaluation.metrics import exact_match, normalize_answer, token_f1
from qa.evaluation.runner import Prediction, SystemRun, run_assistant

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
