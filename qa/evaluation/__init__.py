"""Evaluation harness: datasets, metrics, baselines and peers, reports and plots.

``release-qa eval`` (``qa.evaluation.cli``) and ``make eval`` share this code.
"""

from qa.evaluation.compare import Delta, compare, format_deltas
from qa.evaluation.data import EvalItem, EvalSet, load_dataset, load_jsonl, load_squad, sample, wh_type
from qa.evaluation.metrics import exact_match, normalize_answer, token_f1
from qa.evaluation.runner import Prediction, SystemRun, run_assistant
from qa.evaluation.suite import DatasetSpec, evaluate, run, standard_suite

__all__ = [
    "DatasetSpec",
    "Delta",
    "EvalItem",
    "EvalSet",
    "Prediction",
    "SystemRun",
    "compare",
    "evaluate",
    "exact_match",
    "format_deltas",
    "load_dataset",
    "load_jsonl",
    "load_squad",
    "normalize_answer",
    "run",
    "run_assistant",
    "sample",
    "standard_suite",
    "token_f1",
    "wh_type",
]
