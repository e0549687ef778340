"""Training the retriever's reranker (``qa.retrieval.rerank``) on training questions: each
question is searched exactly as ``ask`` searches it (a follow-up after its chat), its fused top
``depth`` passages get their features, and a passage is labelled right when it is the gold
release's and holds a gold answer (inside the gold paragraph, for SQuAD). Press and SQuAD
questions weigh alike, so neither source's many questions decide alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.assistant import Assistant
from qa.evaluation.data import EvalItem, EvalSet, history_messages
from qa.index import Index
from qa.retrieval.rerank import RERANK_FEATURES, Evidence, rerank_features
from qa.training.negatives import holds_answer
from qa.trees import TreeModel
from qa.types import Hit, Passage


@dataclass(frozen=True, slots=True)
class Ranked:
    """One question's fused candidates: features (candidates, len(RERANK_FEATURES)), and which
    hold its answer."""

    source: str
    x: np.ndarray
    right: np.ndarray


class _Recorder:
    """A reranker that keeps the fused order and records each question's features."""

    def __init__(self, depth: int):
        self.depth = depth
        self.seen: list[np.ndarray] = []

    def order(
        self, index: Index, evidence: Evidence, passages: dict[int, Passage]
    ) -> list[tuple[int, float]]:
        self.seen.append(rerank_features(index, evidence, passages))
        return list(evidence.fused)


def holds(item: EvalItem, hit: Hit) -> bool:
    """Whether ``hit`` holds a gold answer of ``item`` where the data puts it."""
    if hit.release.id != item.release_id:
        return False
    p = hit.passage
    if item.span is not None and not (p.start < item.span[1] and p.end > item.span[0]):
        return False
    return holds_answer(p.text, item.answers)


def collect(
    assistant: Assistant, eval_set: EvalSet, source: str, *, depth: int = 20, batch: int = 64
) -> list[Ranked]:
    """Every answerable question's fused candidates, featurised and labelled."""
    retriever = assistant.retriever
    recorder = _Recorder(depth)
    before = retriever.reranker
    retriever.reranker = recorder
    out: list[Ranked] = []
    try:
        items = [i for i in eval_set.items if i.answerable]
        for lo in range(0, len(items), batch):
            part = items[lo : lo + batch]
            recorder.seen.clear()
            hits = assistant.search_batch(
                [i.question for i in part], k=depth, histories=[history_messages(i) for i in part]
            )
            if len(recorder.seen) != len(part):
                raise RuntimeError("the retriever did not rerank every question (not in hybrid mode?)")
            for item, found, x in zip(part, hits, recorder.seen, strict=True):
                out.append(Ranked(source, x, np.array([holds(item, h) for h in found], dtype=bool)))
    finally:
        retriever.reranker = before
    return out


def distractors(names: Sequence[str], n: int, *, seed: int = 0, exclude: Iterable[str] = ()) -> list[str]:
    """A seeded sample of ``n`` release names from ``names`` outside ``exclude``, sorted: releases
    no training question is about, added to the index so that the reranker learns from the
    near-misses an archive holds (another year's fact sheet on the same programme)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    kept = set(exclude)
    pool = sorted(x for x in set(names) if x not in kept)
    if n > len(pool):
        raise ValueError(f"{n} distractors asked for, only {len(pool)} releases to draw them from")
    return sorted(random.Random(seed).sample(pool, n))


def fit(ranked: Sequence[Ranked], *, seed: int = 0) -> TreeModel:
    """Boosted trees over the candidates, each source's questions weighing alike."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from qa.training.sklearn_trees import tree_model

    rows = [r for r in ranked if len(r.x)]
    x = np.concatenate([r.x for r in rows])
    y = np.concatenate([r.right for r in rows])
    src = np.concatenate([[r.source] * len(r.x) for r in rows])
    w = np.ones(len(y))
    for s in set(src.tolist()):
        w[src == s] = len(y) / (len(set(src.tolist())) * int((src == s).sum()))
    est = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=50, random_state=seed
    )
    est.fit(x, y, sample_weight=w)
    return tree_model(est, RERANK_FEATURES)


def recall(ranked: Sequence[Ranked], model: TreeModel | None, k: int) -> float:
    """Share of questions with a passage holding the answer among the first ``k`` (the fused
    order when ``model`` is None)."""
    hit = []
    for r in ranked:
        if not len(r.x):
            hit.append(False)
            continue
        order = np.arange(len(r.x)) if model is None else np.argsort(-model.proba(r.x), kind="stable")
        hit.append(bool(r.right[order[:k]].any()))
    return float(np.mean(hit)) if hit else 0.0
