"""Metric functions: SQuAD's official EM/F1, ranking, abstention, calibration, latency.

Pure functions over plain numbers and strings, so each one is unit-tested against cases
worked out by hand; the runner and the report only aggregate with them.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------- SQuAD answer scoring

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD's normalization, verbatim in effect: lower case, drop punctuation, drop
    articles, collapse whitespace (the official script's order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalization.

    As SQuAD v2's script: when either side normalizes to nothing, 1 if both do, else 0.
    """
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(prediction: str, golds: Sequence[str], metric: Callable[[str, str], float]) -> float:
    """The best score against any gold answer (SQuAD's ``metric_max_over_ground_truths``)."""
    return max((float(metric(prediction, g)) for g in golds), default=0.0)


def squad_scores(prediction: str | None, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of a prediction, SQuAD v2 style: for an unanswerable question (no golds)
    declining (None) scores 1 and anything else 0; declining an answerable one scores 0."""
    if not golds:
        return (1.0, 1.0) if prediction is None else (0.0, 0.0)
    if prediction is None:
        return 0.0, 0.0
    return best_over_golds(prediction, golds, exact_match), best_over_golds(prediction, golds, token_f1)


def holds_answer(text: str | None, golds: Sequence[str]) -> bool:
    """Whether ``text`` contains a gold answer, as whole normalized tokens."""
    if text is None:
        return False
    hay = f" {normalize_answer(text)} "
    return any(f" {g} " in hay for g in (normalize_answer(a) for a in golds) if g)


# ---------------------------------------------------------------- ranking


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose first relevant result is at rank <= k (ranks 1-based; None =
    not found)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """Mean of 1/rank of the first relevant result (0 when not retrieved)."""
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r is not None) / len(ranks)


# ---------------------------------------------------------------- separation and calibration


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance a random positive outscores a random negative
    (ties count half). None when one class is empty."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


@dataclass(frozen=True, slots=True)
class Bin:
    """One bin of a reliability diagram: scores in [lo, hi)."""

    lo: float
    hi: float
    count: int
    mean_score: float
    accuracy: float


def reliability_bins(scores: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> tuple[Bin, ...]:
    """Equal-width bins over [0, 1] (scores clipped into it; 1.0 falls in the last bin)."""
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    c = np.asarray(correct, dtype=np.float64)
    idx = np.minimum((s * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        out.append(
            Bin(
                b / n_bins,
                (b + 1) / n_bins,
                n,
                float(s[m].mean()) if n else 0.0,
                float(c[m].mean()) if n else 0.0,
            )
        )
    return tuple(out)


def expected_calibration_error(bins: Sequence[Bin]) -> float:
    """Count-weighted mean of |accuracy - mean score| over the bins."""
    total = sum(b.count for b in bins)
    if total == 0:
        return 0.0
    return sum(b.count * abs(b.accuracy - b.mean_score) for b in bins) / total


# ---------------------------------------------------------------- abstention


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Scores when every question scoring below ``threshold`` is declined (None: the
    decisions came from elsewhere, e.g. a peer's own flag)."""

    threshold: float | None
    em: float
    f1: float
    has_ans_em: float
    has_ans_f1: float
    no_ans_accuracy: float | None
    answer_rate: float


def decision_point(
    answered: Sequence[bool],
    em_if_answered: Sequence[float],
    f1_if_answered: Sequence[float],
    answerable: Sequence[bool],
    threshold: float | None = None,
) -> OperatingPoint:
    """EM/F1 (SQuAD v2 style) when exactly the ``answered`` questions are answered.

    ``em_if_answered``/``f1_if_answered`` score each question's best guess; a declined
    answerable question scores 0, an unanswerable one scores 1 when declined, else 0.
    """
    done = np.asarray(answered, dtype=bool)
    ans = np.asarray(answerable, dtype=bool)
    em_a = np.asarray(em_if_answered, dtype=np.float64)
    f1_a = np.asarray(f1_if_answered, dtype=np.float64)
    em = np.where(ans, np.where(done, em_a, 0.0), np.where(done, 0.0, 1.0))
    f1 = np.where(ans, np.where(done, f1_a, 0.0), np.where(done, 0.0, 1.0))
    n = max(len(done), 1)
    return OperatingPoint(
        threshold=threshold,
        em=float(em.sum() / n),
        f1=float(f1.sum() / n),
        has_ans_em=float(em[ans].mean()) if ans.any() else 0.0,
        has_ans_f1=float(f1[ans].mean()) if ans.any() else 0.0,
        no_ans_accuracy=float((~done[~ans]).mean()) if (~ans).any() else None,
        answer_rate=float(done.mean()) if len(done) else 0.0,
    )


def operating_point(
    threshold: float,
    scores: Sequence[float],
    em_if_answered: Sequence[float],
    f1_if_answered: Sequence[float],
    answerable: Sequence[bool],
) -> OperatingPoint:
    """``decision_point`` when the questions scoring >= ``threshold`` are answered."""
    answered = np.asarray(scores, dtype=np.float64) >= threshold
    return decision_point(answered.tolist(), em_if_answered, f1_if_answered, answerable, float(threshold))


def threshold_sweep(
    scores: Sequence[float],
    em_if_answered: Sequence[float],
    f1_if_answered: Sequence[float],
    answerable: Sequence[bool],
) -> tuple[OperatingPoint, ...]:
    """The operating point at every distinct score, lowest first (the lowest answers
    everything), then one just above the highest (answers nothing)."""
    if not scores:
        return ()
    cuts = sorted({float(x) for x in scores})
    cuts.append(math.nextafter(cuts[-1], math.inf))
    return tuple(operating_point(t, scores, em_if_answered, f1_if_answered, answerable) for t in cuts)


def best_operating_point(sweep: Sequence[OperatingPoint]) -> OperatingPoint | None:
    """The point of highest overall F1 (ties: the lowest threshold), as SQuAD v2's
    ``find_best_thresh``. It is an oracle, reported and never applied to dev data."""
    best: OperatingPoint | None = None
    for p in sweep:
        if best is None or p.f1 > best.f1 + 1e-12:
            best = p
    return best


# ---------------------------------------------------------------- latency


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
