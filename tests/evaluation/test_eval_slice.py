"""CI slice of the eval: 200 SQuAD v1.1 questions, open corpus over all of v1.1 dev-shared,
the real model. Floors sit just under the numbers measured when they were set, so a
regression in retrieval or answering fails the build. The full suite is ``make eval``.

The index is cached under evals/cache (keyed by content), so only the first run embeds the
1,065 paragraphs.
"""

from __future__ import annotations

import pytest

from evals.suite import DEFAULT_CACHE
from qa import Assistant, SentenceTransformerEmbedder
from qa.answer.span_reader import reader_available
from qa.evaluation.data import load_squad, sample
from qa.evaluation.runner import run_assistant
from qa.evaluation.scoring import SystemMetrics, system_metrics
from qa.index.cache import cached_index
from tests.conftest import SHARED, need_shared

pytestmark = pytest.mark.model

SLICE = 200

# neural: measured on this slice when the reader shipped (2026-11-29, commit 0f775e3): recall@5
# 0.940, release recall@1 0.970, F1 0.627, EM 0.510, sentence holds gold 0.780, citation accuracy
# 0.975, AUC right vs wrong 0.738. Re-measured when the calibration was fitted for press releases
# (2026-12-02): the same reader's best guesses are chosen without the feature answerer's sentence
# view, F1 0.591, EM 0.500, sentence holds gold 0.720 (press-dev gained what SQuAD lost), AUC
# 0.711; as users see it (a decline is a miss) F1 rose from 0.247 to 0.548. The open-corpus reader
# (2026-12-03) moved it to 0.525 (33,992 windows) and 0.499 (50,487 windows at int8; best-guess F1
# 0.629): its threshold is fitted on press-tune, where these weights answer more right (77.7% ->
# 79.3%), and declines 30.5% of this slice's answerable questions; the floor follows that choice.
# Sentences read in their passages with hybrid retrieval fusing sentences and BM25, recalibrated
# (2026-12-03): F1 0.617 -> 0.635, as users see it 0.511 -> 0.529, recall@5 0.940 -> 0.955, and the
# AUC of right vs wrong 0.711 -> 0.670 (also lower on the seeded 1,000 of v1.1, 0.769 -> 0.746, and
# on press-dev, 0.767 -> 0.742, while F1 as users rose 55.4 -> 57.9 and 68.7 -> 71.5): its floor
# moved under the new value.
NEURAL_FLOORS = {
    "retrieval.recall_at_5": 0.92,
    "retrieval.release_recall_at_1": 0.94,
    "answer.f1": 0.56,
    "answer.em": 0.47,
    "answer.sentence_holds_gold": 0.69,
    "answer.citation_accuracy": 0.94,
    "abstention.auc_correct": 0.64,
    "as_users_see.f1": 0.47,
}

# features: measured on this slice when set (2026-11-28, commit e739f0f): recall@5 0.950, release
# recall@1 0.965, F1 0.381, sentence holds gold 0.715, citation accuracy 0.970, AUC of the
# score for right vs wrong answers 0.673. Each floor is a few points under (one question is
# half a point).
FLOORS = {
    "features": {
        "retrieval.recall_at_5": 0.92,
        "retrieval.release_recall_at_1": 0.94,
        "answer.f1": 0.34,
        "answer.sentence_holds_gold": 0.68,
        "answer.citation_accuracy": 0.94,
        "abstention.auc_correct": 0.62,
    },
    # the neural reader (qa/models/reader), same slice; set when the reader shipped (see below)
    "neural": NEURAL_FLOORS,
}
READERS = [
    "features",
    pytest.param("neural", marks=pytest.mark.skipif(not reader_available(), reason="no reader installed")),
]


@pytest.fixture(scope="module")
def runs() -> dict[str, SystemMetrics]:
    return {}


def _metrics(runs: dict[str, SystemMetrics], reader: str) -> SystemMetrics:
    if reader not in runs:
        path = need_shared(SHARED / "evals") / "squad-v1.1-dev-shared.json"
        full = load_squad(path)
        picked = sample(full, SLICE)
        embedder = SentenceTransformerEmbedder()
        index, _, _ = cached_index(full.releases, embedder, DEFAULT_CACHE)
        run = run_assistant(picked, Assistant(index, embedder, reader=reader), reader)
        runs[reader] = system_metrics(picked, run)
    return runs[reader]


def _get(m: SystemMetrics, key: str) -> float:
    section, name = key.split(".")
    value = getattr(getattr(m, section), name)
    assert value is not None, key
    return float(value)


@pytest.mark.parametrize("reader", READERS)
def test_slice_is_the_whole_corpus_and_200_questions(runs: dict[str, SystemMetrics], reader: str) -> None:
    metrics = _metrics(runs, reader)
    assert metrics.n == SLICE
    assert metrics.retrieval is not None and metrics.retrieval.n == SLICE


def _skip(reader: str) -> list[pytest.MarkDecorator]:
    return (
        [] if reader == "features" or reader_available() else [pytest.mark.skip(reason="no reader installed")]
    )


@pytest.mark.parametrize(
    ("reader", "key"),
    [
        pytest.param(r, k, marks=_skip(r), id=f"{r}-{k}")
        for r, floors in FLOORS.items()
        for k in sorted(floors)
    ],
)
def test_slice_floor(runs: dict[str, SystemMetrics], reader: str, key: str) -> None:
    got = _get(_metrics(runs, reader), key)
    floor = FLOORS[reader][key]
    print(f"{reader}: {key} = {got:.4f} (floor {floor:.4f})")
    assert got >= floor, f"{reader}: {key} fell to {got:.4f}, under its floor {floor:.4f}"
