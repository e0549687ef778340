"""Train the answerer's sentence and span models on SQuAD v1.1 train.

The training questions go through the same pipeline as real ones: their articles
are indexed, retrieval returns the top passages, and every candidate sentence and
span is featurized exactly as at answering time. For a share of the questions the
gold article is removed from the results, so the sentence model also learns what
"the answer is not here" looks like: its probability is the score that abstention
thresholds. Never run this on the dev sets that are reported.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer.base import answer
from qa.answer.feature_answerer import MODEL_PATH, AnswerModels, FeatureAnswerer
from qa.answer.features import (
    SENTENCE_BASE,
    SENTENCE_FEATURES,
    SPAN_FEATURES,
    LinearModel,
    Model,
    Question,
    add_relative,
    span_features,
)
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.evaluation.data import load_squad
from qa.evaluation.metrics import exact_match, normalize_answer, token_f1
from qa.index import Index, QAIndexError, corpus_fingerprint
from qa.ingest.chunking import ChunkerSettings
from qa.retrieval.retriever import Retriever
from qa.training.sklearn_trees import tree_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainSettings:
    articles: int = 40
    questions: int = 5000
    drop_gold: float = 0.3
    heldout: float = 0.2
    seed: int = 13
    c: float = 1.0
    model: str = "gbm"
    trees: int = 150
    span_target: str = "em"  # what the span model learns: exact match (classifier) or F1 (regressor)

    def __post_init__(self) -> None:
        if self.span_target not in ("em", "f1"):
            raise ValueError(f"span_target must be 'em' or 'f1', got {self.span_target!r}")
        if self.model not in ("gbm", "lr"):
            raise ValueError(f"model must be 'gbm' or 'lr', got {self.model!r}")
        if self.articles < 1 or self.questions < 10:
            raise ValueError(
                f"need at least 1 article and 10 questions, got {self.articles}, {self.questions}"
            )
        if not 0.0 <= self.drop_gold < 1.0 or not 0.0 < self.heldout < 1.0:
            raise ValueError(
                f"drop_gold must be in [0,1) and heldout in (0,1): {self.drop_gold}, {self.heldout}"
            )


def _fit(
    x: np.ndarray, y: np.ndarray, features: tuple[str, ...], st: TrainSettings, *, regress: bool = False
) -> Model:
    """A classifier of y in {0,1}; with ``regress`` a regressor of y in [0,1] (gbm only)."""
    if st.model == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        kind = HistGradientBoostingRegressor if regress else HistGradientBoostingClassifier
        est = kind(max_iter=st.trees, max_leaf_nodes=15, l2_regularization=1.0, random_state=st.seed)
        est.fit(x, y)
        return tree_model(est, features, link="identity" if regress else "logistic")
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    lr = LogisticRegression(C=st.c, max_iter=2000)
    lr.fit((x - mean) / scale, y)
    return LinearModel(features, lr.coef_[0].astype(np.float32), float(lr.intercept_[0]), mean, scale)


def _contains_gold(text: str, golds: tuple[str, ...]) -> bool:
    t = normalize_answer(text)
    return any(normalize_answer(g) and normalize_answer(g) in t for g in golds)


def _train_index(path: Path, releases: list, embedder: Embedder, cache: Path) -> Index:
    key = corpus_fingerprint(r.id for r in releases)
    folder = cache / f"squad-train-{key}"
    try:
        return Index.load(folder, embedder)
    except QAIndexError:
        logger.info("indexing %d training articles into %s", len(releases), folder)
        index = Index.build(releases, embedder, ChunkerSettings(), progress=True)
        index.save(folder)
        return index


def train_answerer(
    out: str | os.PathLike[str] = MODEL_PATH,
    *,
    data: str | os.PathLike[str],
    settings: TrainSettings | None = None,
    embedder: Embedder | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> dict[str, object]:
    """Fit both models, pick the abstention threshold on held-out questions, write JSON."""
    st = settings if settings is not None else TrainSettings()
    emb = embedder if embedder is not None else SentenceTransformerEmbedder()
    rng = random.Random(st.seed)
    full = load_squad(data)
    arts = sorted(full.releases, key=lambda r: r.id)
    rng.shuffle(arts)
    chosen = {r.id for r in arts[: st.articles]}
    releases = [r for r in full.releases if r.id in chosen]
    questions = [q for q in full.items if q.release_id in chosen and q.answers]
    rng.shuffle(questions)
    questions = questions[: st.questions]
    cache_dir = Path(cache) if cache is not None else Path(tempfile.gettempdir()) / "release-qa-train"
    index = _train_index(Path(out), releases, emb, cache_dir)
    retriever = Retriever(index, emb, k=20)
    answerer = FeatureAnswerer(index, untrained=True)

    texts = [q.question for q in questions]
    qvecs = emb.encode(texts, progress=True)
    hits_all = retriever.search_encoded(texts, qvecs, k=20)
    n_held = int(len(questions) * st.heldout)
    drop = [rng.random() < st.drop_gold for _ in questions]

    # one pass of featurization: per candidate sentence, its features, label and span matrix
    rows: list[tuple[int, np.ndarray, float, np.ndarray, np.ndarray]] = []
    for i, (q, hits) in enumerate(zip(questions, hits_all, strict=True)):
        if drop[i]:
            hits = [h for h in hits if h.release.id != q.release_id]
        parsed = Question.parse(q.question)
        for sc in answerer.score(q.question, qvecs[i], hits[: answerer.settings.passages]):
            holds = _contains_gold(sc.sentence.text, q.answers)
            ann = index.annotation(sc.sentence)
            sx = span_features(parsed, sc.sentence.text, ann)
            # the span model learns each candidate's F1 against the gold: its argmax is the
            # candidate with the best expected score, and near misses are not all-or-nothing
            sy = np.asarray(
                [
                    max(token_f1(sc.sentence.text[c.start : c.end], g) for g in q.answers) if holds else 0.0
                    for c in ann.candidates
                ],
                dtype=np.float32,
            )
            rows.append((i, sc.features[: len(SENTENCE_BASE)], float(holds), sx, sy))
    train_rows = [r for r in rows if r[0] >= n_held]
    span_rows = [r for r in train_rows if r[2] and len(r[4])]
    holding = [r for r in train_rows if r[2]]
    cand_recall = sum(1 for r in holding if len(r[4]) and r[4].max() == 1.0) / max(1, len(holding))
    logger.info("candidate recall (exact gold span among candidates): %.3f", cand_recall)
    xs = np.concatenate([r[3] for r in span_rows])
    ys = np.concatenate([r[4] for r in span_rows])
    logger.info("span model: %d candidates, %d exact", len(ys), int((ys == 1.0).sum()))
    if st.span_target == "f1" and st.model == "gbm":
        span_model = _fit(xs, ys, SPAN_FEATURES, st, regress=True)
    else:
        span_model = _fit(xs, (ys == 1.0).astype(np.float32), SPAN_FEATURES, st)

    # the sentence model sees the trained span model's best score, as at answering time
    best_idx = SENTENCE_BASE.index("span_best")
    base = np.stack([r[1] for r in train_rows])
    base[:, best_idx] = [float(span_model.proba(r[3]).max()) if len(r[3]) else 0.0 for r in train_rows]
    # rows are in question order, so each question's rows are one contiguous block
    qids = np.asarray([r[0] for r in train_rows])
    bounds = np.flatnonzero(np.diff(qids)) + 1
    x = np.concatenate([add_relative(block) for block in np.split(base, bounds)])
    y = np.asarray([r[2] for r in train_rows])
    logger.info("sentence model: %d sentences, %d positive", len(y), int(y.sum()))
    sent_model = _fit(x, y, SENTENCE_FEATURES, st)
    models = AnswerModels(sent_model, span_model, threshold=0.5)

    # held-out: answer with both models, sweep the threshold
    held = FeatureAnswerer(index, models=models)
    results = []
    for i in range(n_held):
        q = questions[i]
        hits = hits_all[i] if not drop[i] else [h for h in hits_all[i] if h.release.id != q.release_id]
        a = answer(held, q.question, qvecs[i], hits, threshold=0.0)
        answerable = not drop[i] or any(_contains_gold(h.passage.text, q.answers) for h in hits[:5])
        f1 = max(token_f1(a.text or "", g) for g in q.answers) if answerable else 0.0
        em = max(exact_match(a.text or "", g) for g in q.answers) if answerable else 0.0
        sent_ok = answerable and _contains_gold(a.sentence or "", q.answers)
        results.append((a.score, answerable, f1, em, sent_ok))
    threshold, best_f1 = _sweep(results)
    answerable = [r for r in results if r[1]]
    metrics = {
        "candidate_recall_em": round(cand_recall, 4),
        "heldout_questions": n_held,
        "heldout_answerable": len(answerable),
        "heldout_sentence_holds_gold": round(float(np.mean([r[4] for r in answerable])), 4),
        "heldout_f1_answerable": round(float(np.mean([r[2] for r in answerable])), 4),
        "heldout_em_answerable": round(float(np.mean([r[3] for r in answerable])), 4),
        "heldout_overall_f1_at_threshold": round(best_f1, 4),
    }
    payload = {
        "about": f"release-qa answerer: {st.model} models over qa.answer.features; retrain with "
        "`release-qa train-answerer`",
        "trained_on": f"SQuAD v1.1 train ({Path(data).name}), {len(releases)} articles, "
        f"{len(questions)} questions, gold article dropped for {st.drop_gold:.0%}",
        "settings": {k: getattr(st, k) for k in st.__dataclass_fields__},
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "threshold": round(threshold, 4),
        "metrics": metrics,
        "sentence": sent_model.to_dict(),
        "span": span_model.to_dict(),
    }
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(_dump(payload), encoding="utf-8")
    os.replace(tmp, out_path)
    return payload


def _dump(payload: dict[str, object]) -> str:
    """Readable header, one line per model: small and still diffable."""
    head = {k: v for k, v in payload.items() if k not in ("sentence", "span")}
    body = json.dumps(head, indent=1)[:-2]
    for k in ("sentence", "span"):
        body += f',\n "{k}": ' + json.dumps(payload[k], separators=(",", ":"))
    return body + "\n}\n"


def _sweep(results: list[tuple[float, bool, float, float, bool]]) -> tuple[float, float]:
    """Threshold maximizing SQuAD-2.0-style overall F1 (a decline scores 1 on unanswerable)."""
    best = (0.5, -1.0)
    for t in np.linspace(0.02, 0.98, 49):
        total = sum(
            (f1 if s >= t else 0.0) if ans else (0.0 if s >= t else 1.0) for s, ans, f1, _, _ in results
        )
        f = total / max(1, len(results))
        if f > best[1]:
            best = (float(t), f)
    return best
