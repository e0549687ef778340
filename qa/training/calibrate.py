"""Fit the neural answerer's calibration and its decision on press-tune plus SQuAD v2.0 half 0.

Every candidate span the answerer proposes becomes one example: its features (the reader's
scores, the passage rank, the feature answerer's view of the sentence, where the sentence sits
in its release, how long the span is) and whether it is right (token F1 >= 0.5 with a gold
answer, from the gold release). A logistic regression learns the probability; press candidates
are weighted so the press and SQuAD halves count alike, because the product answers press
questions.

The decision is the one a product owner signs: decline only when the releases most likely do
not answer. The threshold is the highest that declines at most ``max_declined`` (10%) of
answerable questions like press-tune's at ``confidence`` (0.5 by default: on average, as the
first rule had it): press-tune's own share declined is held to where the one-sided
Clopper-Pearson bound on it stays within 10%, and the threshold is read from a smoothed
(Harrell-Davis) quantile of the answerable questions' scores, because the plain order statistic
jumped: a reader re-exported with the same weights moved it 0.35 -> 0.40 (2026-12-03), and
press-dev then declined 2.4 points more of its answerable questions. At ``confidence`` 0.9 the
rule declines 7.6% of press-tune's 328 answerable questions instead of 9.8%: press-dev's
answerable declined 15.4% -> 12.5%, its unanswerable declined 78.9% -> 57.9% (under the 70%
target; measured once, not adopted). The rule has a second bound, for a reader that tells
unanswerable questions apart: the threshold goes lower, down to the lowest that still declines at
least ``min_unanswerable_declined`` (70%, the issue's target) of unanswerable questions like
press-tune's with ``unanswerable_confidence`` (0.95; about 75% of press-tune's 249), because a
decline on an answerable question is a miss and "decline only when the releases most likely do
not answer" asks for no more declines than that (2026-12-05: stage 6's reader declined 79.5% of
them at the 10% rule while SQuAD's answerable questions were declined 23%). Above the threshold
an answer is given; below the ``confident`` level (from where press-tune answers scored alike
are right at least ``confident_precision`` of the time: ``confident_level``) it is marked low
confidence and comes with the next best spans.
Which candidate is the answer can be chosen by a second model (``fit_select``, a conditional
logit over the question's candidates, ``--select-features``): the probability then stays the
per-candidate fit's, for the candidate the selection picks.
The eval reports other questions: press-dev, SQuAD v2.0 half 1.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qa.answer.neural import CALIBRATION_FEATURES, Calibration, NeuralAnswerer
from qa.answer.span_reader import READER_PATH, Precision, SpanReader, SpanReaderSettings
from qa.assistant import Assistant
from qa.embedding import Embedder
from qa.evaluation.data import EvalSet, history_messages
from qa.evaluation.metrics import expected_calibration_error, reliability_bins, squad_scores
from qa.index.cache import cached_index

logger = logging.getLogger(__name__)

TUNING_HALF = 0
"""SQuAD v2.0 dev-shared's article half that tunes; the eval reports the other."""


@dataclass(frozen=True, slots=True)
class Question:
    """One tuning question's candidates: all features, whether each is right, and its date prior."""

    source: str  # "press" or "squad"
    answerable: bool
    x: np.ndarray  # (candidates, len(CALIBRATION_FEATURES))
    right: np.ndarray  # (candidates,) bool
    prior: np.ndarray  # (candidates,) the date prior the answerer multiplies in


@dataclass(frozen=True, slots=True)
class Decision:
    threshold: float
    confident: float
    answerable_declined: float
    unanswerable_declined: float
    answered_right: float
    """Of press-tune's answerable questions, the share answered with a right span."""
    ece: float
    limited_by: Literal["answerable", "unanswerable"] = "answerable"
    """Which bound set the threshold: ``answerable`` (at most 10% declined) or ``unanswerable``
    (the floor on unanswerable questions declined let it go lower)."""


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    calibration: Calibration
    decision: Decision
    questions: dict[str, int]
    candidates: int
    ablation: tuple[tuple[str, Decision], ...]
    """Each feature left out in turn (refitted, same rule): what it adds."""
    held_out_ece: float
    """Press-tune's ECE with the Platt step fitted on the other folds (5-fold)."""
    rule: str = ""
    """The decision rule in words, as the calibration file records it."""


def collect(
    assistant: Assistant, eval_set: EvalSet, source: str, *, progress: bool = False, batch: int = 16
) -> list[Question]:
    """The answerer's candidates for every question, labelled, exactly as ``ask`` would see them."""
    from tqdm import tqdm

    answerer = assistant.answerer
    assert isinstance(answerer, NeuralAnswerer)
    out: list[Question] = []
    items = list(eval_set.items)
    bar = tqdm(total=len(items), desc=f"calibrate: {eval_set.name}", disable=not progress)
    for lo in range(0, len(items), batch):
        part = items[lo : lo + batch]
        readings = assistant.read_batch([i.question for i in part], [history_messages(i) for i in part])
        for item, reading in zip(part, readings, strict=True):
            rows, right, prior = [], [], []
            for c in reading.candidates:
                f1 = 0.0
                if item.answerable and c.release.id == item.release_id:
                    f1 = squad_scores(c.release.text[c.start : c.end], item.answers)[1]
                rows.append(c.features)
                right.append(f1 >= 0.5)
                prior.append(c.prob / 0.5)  # the uncalibrated model's probability is 0.5 x prior
            x = np.asarray(rows, dtype=np.float64).reshape(-1, len(CALIBRATION_FEATURES))
            out.append(Question(source, item.answerable, x, np.asarray(right, bool), np.asarray(prior)))
        bar.update(len(part))
    bar.close()
    return out


def fit(
    questions: Sequence[Question], features: Sequence[str], c: float = 1.0
) -> tuple[tuple[float, ...], float]:
    """Logistic regression weights and bias over ``features``, press and SQuAD weighted alike."""
    from sklearn.linear_model import LogisticRegression

    cols = [CALIBRATION_FEATURES.index(f) for f in features]
    qs = [q for q in questions if len(q.x)]
    x = np.concatenate([q.x[:, cols] for q in qs])
    y = np.concatenate([q.right for q in qs]).astype(int)
    src = np.concatenate([[q.source] * len(q.x) for q in qs])
    w = np.ones(len(y))
    for s in set(src):
        w[src == s] = len(y) / (len(set(src)) * max(1, int((src == s).sum())))
    lr = LogisticRegression(C=c, max_iter=2000).fit(x, y, sample_weight=w)
    return tuple(float(v) for v in lr.coef_[0]), float(lr.intercept_[0])


def fit_select(questions: Sequence[Question], features: Sequence[str], l2: float = 0.01) -> tuple[float, ...]:
    """Weights over ``features`` of a conditional logit (a softmax over each question's
    candidates) that puts its mass on the right ones: fitted on the choice the answerer makes,
    where the per-candidate logistic of ``fit`` is fitted on every candidate alike. Questions
    whose candidates are all right or all wrong say nothing about the choice and are left out.
    Features are standardised for the L2 penalty; the weights returned apply to raw features."""
    from scipy.optimize import minimize

    cols = [CALIBRATION_FEATURES.index(f) for f in features]
    qs = [q for q in questions if q.right.any() and not q.right.all()]
    if not qs:
        raise ValueError("no question has both a right and a wrong candidate to fit the selection on")
    every = np.concatenate([q.x[:, cols] for q in qs])
    mu, sd = every.mean(axis=0), every.std(axis=0) + 1e-9
    xs = [(q.x[:, cols] - mu) / sd for q in qs]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, q in zip(xs, qs, strict=True):
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            right = float(p[q.right].sum())
            total -= math.log(right + 1e-12)
            grad -= (p[q.right] @ x[q.right]) / (right + 1e-12) - p @ x
        return total / len(xs) + l2 * float(w @ w), grad / len(xs) + 2 * l2 * w

    w = minimize(loss, np.zeros(len(cols)), jac=True, method="L-BFGS-B").x
    return tuple(float(v) for v in w / sd)


def fold_platt(questions: Sequence[Question], cal: Calibration) -> Calibration:
    """Rescale the logit so the probability of the answer each press question would get matches how
    often it is right (Platt scaling, folded into the weights: ``z' = a z + c``). Fitted on the
    chosen candidates, not on all of them: the decision sees only the best, and the best of many
    candidates is more often wrong than its candidate-level probability says."""
    from sklearn.linear_model import LogisticRegression

    zs, ys = [], []
    for q in questions:
        if q.source != "press" or not len(q.x):
            continue
        p = cal.proba(q.x) * q.prior
        k = int(np.argmax(p))
        zs.append(_logit(float(cal.proba(q.x[k : k + 1])[0])))
        ys.append(int(q.right[k]))
    if len(set(ys)) < 2:
        return cal
    lr = LogisticRegression(C=100.0).fit(np.asarray(zs)[:, None], np.asarray(ys))
    a, c = float(lr.coef_[0][0]), float(lr.intercept_[0])
    return replace(cal, weights=tuple(a * w for w in cal.weights), bias=a * cal.bias + c)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _expit(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def held_out_ece(questions: Sequence[Question], cal: Calibration, folds: int = 5) -> float:
    """ECE of press questions when each fold's Platt step is fitted on the other folds (the
    candidate-level weights stay as fitted on all): an honest read of the in-sample ECE."""
    press = [q for q in questions if q.source == "press"]
    probs, right = [], []
    for f in range(folds):
        train = [q for i, q in enumerate(press) if i % folds != f]
        test = [q for i, q in enumerate(press) if i % folds == f]
        folded = fold_platt(train, cal)
        for q in test:
            p, r = best_of(q, folded)
            probs.append(p)
            right.append(r and q.answerable)
    return expected_calibration_error(reliability_bins(probs, right))


def save_questions(questions: Sequence[Question], path: str | os.PathLike[str]) -> None:
    """The collected candidates (npz, no pickle): refitting needs no second pass of the reader."""
    arrays: dict[str, np.ndarray] = {
        "source": np.asarray([q.source for q in questions]),
        "answerable": np.asarray([q.answerable for q in questions]),
        "sizes": np.asarray([len(q.x) for q in questions]),
    }
    arrays["x"] = (
        np.concatenate([q.x for q in questions]) if questions else np.zeros((0, len(CALIBRATION_FEATURES)))
    )
    arrays["right"] = np.concatenate([q.right for q in questions]) if questions else np.zeros(0, bool)
    arrays["prior"] = np.concatenate([q.prior for q in questions]) if questions else np.zeros(0)
    np.savez(path, **arrays)


def load_questions(path: str | os.PathLike[str]) -> list[Question]:
    d = np.load(path)  # numeric arrays only: numpy refuses pickled objects by default
    if d["x"].ndim != 2 or d["x"].shape[1] != len(CALIBRATION_FEATURES):
        raise ValueError(
            f"{path}: candidates collected with {d['x'].shape[-1]} features, this version computes "
            f"{len(CALIBRATION_FEATURES)}; delete the file to collect them again"
        )
    # each d[key] reads and decompresses the whole array again: read each once, then slice views
    x, right, prior = d["x"], d["right"], d["prior"]
    out, lo = [], 0
    for src, ans, n in zip(d["source"].tolist(), d["answerable"].tolist(), d["sizes"].tolist(), strict=True):
        out.append(Question(str(src), bool(ans), x[lo : lo + n], right[lo : lo + n], prior[lo : lo + n]))
        lo += n
    return out


def best_of(q: Question, cal: Calibration) -> tuple[float, bool]:
    """The chosen candidate's probability (calibrated, date prior applied) and whether it is right."""
    if not len(q.x):
        return 0.0, False
    p = cal.proba(q.x) * q.prior
    k = int(np.argmax(p))
    return float(p[k]), bool(q.right[k])


def confident_level(answered: Sequence[tuple[float, bool]], precision: float, window: int) -> float:
    """The lowest score from which answers scored like it are right at least ``precision`` of the
    time: above the centre of the highest run of ``window`` consecutive answers (by score) that
    falls short.

    Local, not cumulative: counted from the top, a reader whose answers are right 80% overall
    would call every answer confident, even those scored near the threshold that are right less
    than half the time. With no run short of ``precision``, the lowest answer's score."""
    ranked = sorted(answered)
    if not ranked:
        return 1.0
    k = min(window, len(ranked))
    ok = np.array([o for _, o in ranked], dtype=float)
    runs = np.convolve(ok, np.ones(k), mode="valid") / k  # runs[i]: answers i .. i+k-1
    short = np.flatnonzero(runs < precision)
    if len(short) == 0:
        return ranked[0][0]
    if short[-1] == len(runs) - 1:  # the top answers themselves fall short: none is confident
        return 1.0
    return ranked[int(short[-1]) + k // 2 + 1][0]  # the first answer above the last short run's centre


def declinable_share(n: int, max_declined: float, confidence: float) -> float:
    """The largest share k/n of ``n`` answerable questions a threshold may decline so that the
    share on new questions like them stays within ``max_declined`` with ``confidence`` (the
    one-sided Clopper-Pearson upper bound on k of n)."""
    from scipy.stats import beta

    if not 0.0 < max_declined < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(
            f"max_declined and confidence must be in (0, 1), got {max_declined!r}, {confidence!r}"
        )
    k = 0
    while k < n and beta.ppf(confidence, k + 2, n - k - 1) <= max_declined:  # the bound at k + 1
        k += 1
    return k / n


def required_declines(n: int, min_declined: float, confidence: float) -> int | None:
    """The fewest of ``n`` unanswerable questions a threshold must decline so that the share
    declined on new questions like them is at least ``min_declined`` with ``confidence`` (the
    one-sided Clopper-Pearson lower bound on k of n); None when declining all ``n`` is not enough."""
    from scipy.stats import beta

    if not 0.0 <= min_declined < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(
            f"min_unanswerable_declined must be in [0, 1) and unanswerable_confidence in (0, 1), "
            f"got {min_declined!r}, {confidence!r}"
        )
    for k in range(1, n + 1):
        if beta.ppf(1.0 - confidence, k, n - k + 1) >= min_declined:
            return k
    return None


def unanswerable_floor(unanswerable: Sequence[float], min_declined: float, confidence: float) -> float | None:
    """The lowest threshold that still declines enough of these unanswerable questions' scores
    (see ``required_declines``): halfway, on the logit scale, between the k-th lowest score and
    the next higher one, so a re-export's small shifts do not flip a question across it. None
    when no threshold below every score declines enough."""
    scores = sorted(unanswerable)
    k = required_declines(len(scores), min_declined, confidence) if min_declined > 0 else None
    if k is None:
        return None
    higher = [p for p in scores[k:] if p > scores[k - 1]]
    if not higher:
        return None
    return _expit((_logit(scores[k - 1]) + _logit(higher[0])) / 2)


def decide(
    questions: Sequence[Question],
    cal: Calibration,
    *,
    max_declined: float = 0.10,
    confidence: float = 0.5,
    min_unanswerable_declined: float = 0.70,
    unanswerable_confidence: float = 0.95,
    confident_precision: float = 0.80,
    window: int = 30,
) -> Decision:
    """The threshold and confident level from ``source == "press"`` questions (see the module)."""
    from scipy.stats.mstats import hdquantiles

    press = [(*best_of(q, cal), q.answerable) for q in questions if q.source == "press"]
    answerable = sorted(p for p, _, a in press if a)
    if not answerable:
        raise ValueError("no answerable press questions to choose the threshold on")
    share = declinable_share(len(answerable), max_declined, confidence)
    t = answerable[0]
    if share > 0:  # on the logit scale: Platt scaling (affine there) then moves t with the scores
        z = float(hdquantiles(np.array([_logit(p) for p in answerable]), prob=[share])[0])
        t = _expit(z)
    unans = [p for p, _, a in press if not a]
    floor = unanswerable_floor(unans, min_unanswerable_declined, unanswerable_confidence)
    limited_by: Literal["answerable", "unanswerable"] = "answerable"
    if floor is not None and floor < t:  # the reader tells unanswerable questions apart: answer more
        t, limited_by = floor, "unanswerable"
    declined_ans = sum(p < t for p in answerable) / len(answerable)
    declined_un = sum(p < t for p in unans) / len(unans) if unans else 0.0
    right = sum(r and p >= t for p, r, a in press if a) / len(answerable)
    confident = confident_level([(p, r and a) for p, r, a in press if p >= t], confident_precision, window)
    bins = reliability_bins([p for p, _, _ in press], [r and a for p, r, a in press])
    return Decision(
        float(t),
        float(max(confident, t)),
        declined_ans,
        declined_un,
        right,
        expected_calibration_error(bins),
        limited_by,
    )


def calibrate(
    tuning: Sequence[tuple[EvalSet, str]],
    cache_dir: str | os.PathLike[str],
    embedder: Embedder,
    *,
    reader_path: str | os.PathLike[str] = READER_PATH,
    passages: int = 3,
    precision: Precision = "fp32",
    features: Sequence[str] = CALIBRATION_FEATURES,
    select_features: Sequence[str] = (),
    progress: bool = False,
    collected: str | os.PathLike[str] | None = None,
    max_declined: float = 0.10,
    confidence: float = 0.5,
    min_unanswerable_declined: float = 0.70,
    unanswerable_confidence: float = 0.95,
) -> CalibrationResult:
    """Collect candidates over each (eval set, source) (or read them from ``collected`` when it
    exists; written there otherwise), fit, decide, and ablate each feature. ``precision``: the
    reader's (its scores are what is fitted; the calibration records it)."""
    declinable_share(1, max_declined, confidence)  # a bad setting fails now, not after the collection
    required_declines(1, min_unanswerable_declined, unanswerable_confidence)
    everything = Calibration((0.0,) * len(CALIBRATION_FEATURES), 0.0, 0.5)  # all features computed
    reader = SpanReader(reader_path, SpanReaderSettings(precision=precision))
    questions: list[Question] = []
    counts: dict[str, int] = {}
    if collected is not None and Path(collected).is_file():
        questions = load_questions(collected)
        counts = {f"{t[0].name} (collected)": sum(q.source == t[1] for q in questions) for t in tuning}
        tuning = ()
    for eval_set, source in tuning:
        index, _, _ = cached_index(eval_set.releases, embedder, cache_dir, progress=progress)
        assistant = Assistant(index, embedder, reader="features")
        assistant.answerer = NeuralAnswerer(index, reader=reader, calibration=everything, passages=passages)
        got = collect(assistant, eval_set, source, progress=progress)
        questions += got
        counts[eval_set.name] = len(got)
    if collected is not None and not Path(collected).is_file():
        save_questions(questions, collected)

    select = fit_select(questions, select_features) if select_features else ()
    chooser: dict[str, Any] = {"select_features": tuple(select_features), "select": select}

    def fitted(names: Sequence[str], choose: bool = True) -> tuple[Calibration, Decision]:
        w, b = fit(questions, names)
        cal = Calibration(w, b, 0.5, tuple(names), passages, **(chooser if choose else {}))
        cal = fold_platt(questions, cal)
        return cal, decide(
            questions,
            cal,
            max_declined=max_declined,
            confidence=confidence,
            min_unanswerable_declined=min_unanswerable_declined,
            unanswerable_confidence=unanswerable_confidence,
        )

    cal, decision = fitted(features)
    ablation = tuple((f"without {f}", fitted([g for g in features if g != f])[1]) for f in features)
    if select:
        ablation += (("without the selection model", fitted(features, choose=False)[1]),)
    final = replace(cal, threshold=decision.threshold, confident=decision.confident, precision=precision)
    n = sum(len(q.x) for q in questions)
    w, b = fit(questions, features)
    honest = held_out_ece(questions, Calibration(w, b, 0.5, tuple(features), passages, **chooser))
    logger.info("calibration: %s (held-out ECE %.3f)", decision, honest)
    rule = (
        f"decline only below the highest threshold that declines <= {max_declined:.0%} of answerable "
        f"questions like press-tune's (Clopper-Pearson bound at confidence {confidence}, "
        "Harrell-Davis quantile)"
    )
    if min_unanswerable_declined > 0:
        rule += (
            f", or below the lowest that still declines >= {min_unanswerable_declined:.0%} of "
            f"unanswerable ones (Clopper-Pearson bound at confidence {unanswerable_confidence}) "
            "where that is lower"
        )
    return CalibrationResult(final, decision, counts, n, ablation, honest, rule)


def write(result: CalibrationResult, out: str | os.PathLike[str], command: str) -> Path:
    d = result.decision
    result.calibration.save(
        out,
        fitted_on=result.questions,
        candidates=result.candidates,
        rule=result.rule,
        press_tune={
            "answerable_declined": round(d.answerable_declined, 4),
            "unanswerable_declined": round(d.unanswerable_declined, 4),
            "answered_right": round(d.answered_right, 4),
            "ece": round(d.ece, 4),
            "ece_held_out": round(result.held_out_ece, 4),
            "threshold_limited_by": d.limited_by,
        },
        ablation={name: round(x.ece, 4) for name, x in result.ablation},
        command=command,
    )
    return Path(out)
