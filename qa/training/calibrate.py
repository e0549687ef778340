"""Fit the neural reader's calibration and no-answer threshold on the tuning half of SQuAD v2.0 dev-shared.

Every passage the reader reads gives one candidate span; a logistic regression learns from the
candidates' features whether the span is right (F1 >= 0.5 with a gold answer). The threshold is the
one that maximises the SQuAD v2.0 F1 (unanswerable questions count as right when declined) over the
tuning half's questions. The eval reports the other half (``article_half(..., 1)``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer.neural import CALIBRATION_FEATURES, Calibration, NeuralAnswerer
from qa.answer.span_reader import READER_PATH, SpanReader
from qa.assistant import Assistant
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.evaluation.data import article_half, load_squad, sample
from qa.evaluation.metrics import squad_scores
from qa.index.cache import cached_index

logger = logging.getLogger(__name__)

TUNING_HALF = 0


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    calibration: Calibration
    questions: int
    candidates: int
    f1: float
    has_ans_f1: float
    no_ans_accuracy: float


def fit_calibration(
    dataset: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    *,
    reader_path: str | os.PathLike[str] = READER_PATH,
    embedder: Embedder | None = None,
    limit: int | None = None,
    passages: int = 3,
    features: tuple[str, ...] = CALIBRATION_FEATURES,
    progress: bool = False,
) -> CalibrationResult:
    from sklearn.linear_model import LogisticRegression
    from tqdm import tqdm

    emb = embedder if embedder is not None else SentenceTransformerEmbedder()
    full = load_squad(dataset)
    tune = sample(article_half(full, TUNING_HALF), limit)
    index, _, _ = cached_index(full.releases, emb, cache_dir, progress=progress)
    assistant = Assistant(index, emb, reader="features")
    # every feature computed (the uncalibrated model names them all), only ``features`` fitted
    everything = Calibration((0.0,) * len(CALIBRATION_FEATURES), 0.0, 0.5)
    answerer = NeuralAnswerer(
        index, reader=SpanReader(reader_path), calibration=everything, passages=passages
    )
    xs: list[np.ndarray] = []
    ys: list[int] = []
    per_q: list[tuple[int, int, list[float], bool]] = []  # rows [lo, hi), f1 per row, answerable
    items = tune.items
    for item in tqdm(items, desc="calibrate", disable=not progress):
        vec = assistant.retriever.encode([item.question])[0]
        hits = assistant.retriever.search_encoded([item.question], vec[None, :])[0]
        cands = answerer.candidates(item.question, vec, hits)
        lo = len(ys)
        f1s = []
        for c in cands:
            f1 = (
                squad_scores(c.hit.release.text[c.start : c.end], item.answers)[1] if item.answerable else 0.0
            )
            xs.append(c.features)
            ys.append(int(f1 >= 0.5))
            f1s.append(f1)
        per_q.append((lo, len(ys), f1s, item.answerable))
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys)
    cols = [CALIBRATION_FEATURES.index(f) for f in features]
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x[:, cols], y)
    weights = tuple(float(w) for w in lr.coef_[0])
    bias = float(lr.intercept_[0])
    probs = Calibration(weights, bias, 0.5, features).proba(x)
    best = []  # (prob of the chosen candidate, its F1, answerable)
    for lo, hi, f1s, answerable in per_q:
        if hi == lo:
            best.append((0.0, 0.0, answerable))
            continue
        k = int(np.argmax(probs[lo:hi]))
        best.append((float(probs[lo + k]), f1s[k], answerable))

    def scores(t: float) -> tuple[float, float, float]:
        has = [f1 if p >= t else 0.0 for p, f1, a in best if a]
        no = [float(p < t) for p, _, a in best if not a]
        total = (sum(has) + sum(no)) / max(1, len(best))
        return total, float(np.mean(has)) if has else 0.0, float(np.mean(no)) if no else 0.0

    grid = sorted({round(p, 3) for p, _, _ in best} | {0.0})
    t = max(grid, key=lambda g: scores(g)[0])
    total, has_f1, no_acc = scores(t)
    logger.info("calibration: threshold %.3f, F1 %.3f, HasAns F1 %.3f, NoAns %.3f", t, total, has_f1, no_acc)
    return CalibrationResult(
        Calibration(weights, bias, float(t), features, passages), len(items), len(ys), total, has_f1, no_acc
    )


def calibrate_reader(
    dataset: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    **kwargs: object,
) -> CalibrationResult:
    """Fit and write ``calibration.json`` beside the reader's weights."""
    result = fit_calibration(dataset, cache_dir, **kwargs)  # type: ignore[arg-type]
    reader_path = Path(str(kwargs.get("reader_path", READER_PATH)))
    target = Path(out) if out is not None else reader_path / "calibration.json"
    result.calibration.save(
        target,
        fitted_on=f"{Path(dataset).name}, article half {TUNING_HALF} (reported: half {1 - TUNING_HALF})",
        questions=result.questions,
        candidates=result.candidates,
        tuning_f1=round(result.f1, 4),
        tuning_has_ans_f1=round(result.has_ans_f1, 4),
        tuning_no_ans_accuracy=round(result.no_ans_accuracy, 4),
        command=_command(kwargs),
    )
    return result


def _command(kwargs: dict[str, object]) -> str:
    """The command line that refits this calibration, recorded beside it."""
    words = ["release-qa calibrate-reader"]
    if kwargs.get("limit") is not None:
        words.append(f"--limit {kwargs['limit']}")
    if kwargs.get("passages") not in (None, 3):
        words.append(f"--passages {kwargs['passages']}")
    features = kwargs.get("features")
    if features:
        words.append(f"--features {','.join(features)}")  # type: ignore[arg-type]
    return " ".join(words)
