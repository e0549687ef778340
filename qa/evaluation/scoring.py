"""From predictions to metrics: one ``SystemMetrics`` per system and dataset.

Answer quality is measured on the best guess of every answerable question (what the
reader would quote); abstention is measured at the system's own operating point and at
the oracle threshold of the sweep (reported, never applied); calibration bins the score
against "the quoted answer contains a gold answer".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.evaluation import metrics as m
from qa.evaluation.data import EvalItem, EvalSet
from qa.evaluation.runner import DEPTH, Prediction, SystemRun

STAGE_ORDER = ("encode", "retrieve", "rerank", "generate", "answer", "verify", "total")


@dataclass(frozen=True, slots=True)
class RetrievalMetrics:
    """Over answerable questions: where the first passage holding a gold answer ranks, and
    the first passage of the gold release. ``curve`` is passage recall@1..DEPTH."""

    n: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    recall_at_20: float
    mrr: float
    release_recall_at_1: float
    release_recall_at_5: float
    release_recall_at_10: float
    release_recall_at_20: float
    release_mrr: float
    curve: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class AnswerMetrics:
    """Over answerable questions, best guesses (no abstention): SQuAD EM/F1 of the answer
    text, whether the quoted sentence holds a gold answer, whether the cited release is the
    gold one."""

    n: int
    em: float
    f1: float
    sentence_holds_gold: float
    citation_accuracy: float
    mean_answer_words: float


@dataclass(frozen=True, slots=True)
class AbstentionMetrics:
    """``own``: at the system's own operating point; ``best``: the oracle threshold of the
    sweep. AUCs: how well the score separates answerable from unanswerable questions, and
    (among answerable ones) right answers from wrong ones."""

    own: m.OperatingPoint
    best: m.OperatingPoint | None
    auc_answerable: float | None
    auc_correct: float | None


@dataclass(frozen=True, slots=True)
class UserMetrics:
    """The system as a user sees it, at its own threshold: a decline on an answerable question is a
    miss. Over answerable questions: F1 (0 when declined), the quote holds a gold answer, the gold
    release is cited, declined; over unanswerable ones: declined. A set of one kind leaves the
    other's figures None (a held-out set of unanswerable questions has only the last)."""

    n_answerable: int
    f1: float | None
    quote_holds_gold: float | None
    right_release: float | None
    answerable_declined: float | None
    unanswerable_declined: float | None


@dataclass(frozen=True, slots=True)
class CalibrationMetrics:
    """How well scores match accuracy: expected calibration error and the reliability bins."""

    ece: float
    bins: tuple[m.Bin, ...]


@dataclass(frozen=True, slots=True)
class TypeMetrics:
    """Answer metrics over the type's answerable questions (None when it has none)."""

    qtype: str
    n: int
    em: float | None
    f1: float | None
    sentence_holds_gold: float | None
    recall_at_5: float | None
    declined: float


@dataclass(frozen=True, slots=True)
class StageLatency:
    stage: str
    p50_ms: float
    p95_ms: float
    mean_ms: float


@dataclass(frozen=True, slots=True)
class SystemMetrics:
    system: str
    description: str
    n: int
    seconds: float
    threshold: float | None
    error: str | None
    retrieval: RetrievalMetrics | None
    answer: AnswerMetrics | None
    abstention: AbstentionMetrics | None
    calibration: CalibrationMetrics | None
    as_users_see: UserMetrics | None
    by_type: tuple[TypeMetrics, ...]
    by_turn: tuple[TypeMetrics, ...]
    latency: tuple[StageLatency, ...]


@dataclass(frozen=True, slots=True)
class ScoredPrediction:
    """One prediction scored against its item."""

    item: EvalItem
    pred: Prediction
    em: float
    f1: float
    holds_gold: bool
    sentence_holds_gold: bool
    cites_gold: bool

    @property
    def correct(self) -> bool:
        """The quoted answer contains a gold answer (never, for an unanswerable question)."""
        return self.item.answerable and self.holds_gold


def score_predictions(eval_set: EvalSet, preds: Sequence[Prediction]) -> list[ScoredPrediction]:
    by_id = {i.id: i for i in eval_set.items}
    out = []
    for p in preds:
        item = by_id[p.item_id]
        em, f1 = m.squad_scores(p.text, item.answers) if item.answerable else (0.0, 0.0)
        out.append(
            ScoredPrediction(
                item=item,
                pred=p,
                em=em,
                f1=f1,
                holds_gold=item.answerable and m.holds_answer(p.text, item.answers),
                sentence_holds_gold=item.answerable and m.holds_answer(p.sentence, item.answers),
                cites_gold=p.release_id is not None and p.release_id == item.release_id,
            )
        )
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def retrieval_metrics(scored: Sequence[ScoredPrediction]) -> RetrievalMetrics | None:
    rows = [s for s in scored if s.item.answerable]
    if not rows:
        return None
    pr = [s.pred.passage_rank for s in rows]
    rr = [s.pred.release_rank for s in rows]
    return RetrievalMetrics(
        n=len(rows),
        recall_at_1=m.recall_at(pr, 1),
        recall_at_5=m.recall_at(pr, 5),
        recall_at_10=m.recall_at(pr, 10),
        recall_at_20=m.recall_at(pr, 20),
        mrr=m.mean_reciprocal_rank(pr),
        release_recall_at_1=m.recall_at(rr, 1),
        release_recall_at_5=m.recall_at(rr, 5),
        release_recall_at_10=m.recall_at(rr, 10),
        release_recall_at_20=m.recall_at(rr, 20),
        release_mrr=m.mean_reciprocal_rank(rr),
        curve=tuple(m.recall_at(pr, k) for k in range(1, DEPTH + 1)),
    )


def answer_metrics(scored: Sequence[ScoredPrediction]) -> AnswerMetrics | None:
    rows = [s for s in scored if s.item.answerable]
    if not rows:
        return None
    return AnswerMetrics(
        n=len(rows),
        em=_mean([s.em for s in rows]),
        f1=_mean([s.f1 for s in rows]),
        sentence_holds_gold=_mean([float(s.sentence_holds_gold) for s in rows]),
        citation_accuracy=_mean([float(s.cites_gold) for s in rows]),
        mean_answer_words=_mean([len((s.pred.text or "").split()) for s in rows]),
    )


def abstention_metrics(scored: Sequence[ScoredPrediction]) -> AbstentionMetrics:
    scores = [s.pred.score for s in scored]
    em = [s.em for s in scored]
    f1 = [s.f1 for s in scored]
    answerable = [s.item.answerable for s in scored]
    own = m.decision_point([not s.pred.declined for s in scored], em, f1, answerable)
    best = m.best_operating_point(m.threshold_sweep(scores, em, f1, answerable))
    ans_rows = [s for s in scored if s.item.answerable]
    return AbstentionMetrics(
        own=own,
        best=best,
        auc_answerable=m.auc(scores, answerable),
        auc_correct=m.auc([s.pred.score for s in ans_rows], [s.correct for s in ans_rows]),
    )


def as_users_see(scored: Sequence[ScoredPrediction]) -> UserMetrics | None:
    ans = [s for s in scored if s.item.answerable]
    un = [s for s in scored if not s.item.answerable]
    if not scored:
        return None

    def share(rows: Sequence[ScoredPrediction], ok: Callable[[ScoredPrediction], bool]) -> float | None:
        return sum(ok(s) for s in rows) / len(rows) if rows else None

    return UserMetrics(
        n_answerable=len(ans),
        f1=sum(0.0 if s.pred.declined else s.f1 for s in ans) / len(ans) if ans else None,
        quote_holds_gold=share(ans, lambda s: not s.pred.declined and s.holds_gold),
        right_release=share(ans, lambda s: not s.pred.declined and s.cites_gold),
        answerable_declined=share(ans, lambda s: s.pred.declined),
        unanswerable_declined=share(un, lambda s: s.pred.declined),
    )


def calibration(scored: Sequence[ScoredPrediction], n_bins: int = 10) -> CalibrationMetrics:
    bins = m.reliability_bins([s.pred.score for s in scored], [s.correct for s in scored], n_bins)
    return CalibrationMetrics(m.expected_calibration_error(bins), bins)


def by_type(scored: Sequence[ScoredPrediction], retrieval: bool) -> tuple[TypeMetrics, ...]:
    groups: dict[str, list[ScoredPrediction]] = defaultdict(list)
    for s in scored:
        groups[s.item.qtype].append(s)
    return _grouped(groups, retrieval)


def by_turn(scored: Sequence[ScoredPrediction], retrieval: bool) -> tuple[TypeMetrics, ...]:
    """First questions apart from follow-ups (asked after the question they lean on); empty
    when the dataset has no follow-ups."""
    if not any(s.item.followup_of for s in scored):
        return ()
    groups: dict[str, list[ScoredPrediction]] = defaultdict(list)
    for s in scored:
        groups["follow-up" if s.item.followup_of else "first question"].append(s)
    return _grouped(groups, retrieval)


def _grouped(groups: dict[str, list[ScoredPrediction]], retrieval: bool) -> tuple[TypeMetrics, ...]:
    out = []
    for qtype, rows in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        ans = [s for s in rows if s.item.answerable]
        out.append(
            TypeMetrics(
                qtype=qtype,
                n=len(rows),
                em=_mean([s.em for s in ans]) if ans else None,
                f1=_mean([s.f1 for s in ans]) if ans else None,
                sentence_holds_gold=_mean([float(s.sentence_holds_gold) for s in ans]) if ans else None,
                recall_at_5=m.recall_at([s.pred.passage_rank for s in ans], 5) if retrieval and ans else None,
                declined=_mean([float(s.pred.declined) for s in rows]),
            )
        )
    return tuple(out)


def latency(preds: Sequence[Prediction]) -> tuple[StageLatency, ...]:
    per_stage: dict[str, list[float]] = defaultdict(list)
    for p in preds:
        for stage, ms in p.stages:
            per_stage[stage].append(ms)
    order = sorted(per_stage, key=lambda st: (STAGE_ORDER.index(st) if st in STAGE_ORDER else 50, st))
    return tuple(
        StageLatency(
            st, m.percentile(per_stage[st], 50), m.percentile(per_stage[st], 95), _mean(per_stage[st])
        )
        for st in order
    )


def system_metrics(eval_set: EvalSet, run: SystemRun) -> SystemMetrics:
    if run.error is not None:
        return SystemMetrics(
            run.system,
            run.description,
            0,
            run.seconds,
            run.threshold,
            run.error,
            None,
            None,
            None,
            None,
            None,
            (),
            (),
            (),
        )
    scored = score_predictions(eval_set, run.predictions)
    abst = abstention_metrics(scored)
    if run.threshold is not None:
        abst = AbstentionMetrics(
            own=_with_threshold(abst.own, run.threshold),
            best=abst.best,
            auc_answerable=abst.auc_answerable,
            auc_correct=abst.auc_correct,
        )
    return SystemMetrics(
        system=run.system,
        description=run.description,
        n=len(scored),
        seconds=run.seconds,
        threshold=run.threshold,
        error=None,
        retrieval=retrieval_metrics(scored) if run.retrieval else None,
        answer=answer_metrics(scored),
        abstention=abst,
        calibration=calibration(scored),
        as_users_see=as_users_see(scored),
        by_type=by_type(scored, run.retrieval),
        by_turn=by_turn(scored, run.retrieval),
        latency=latency(run.predictions),
    )


def _with_threshold(p: m.OperatingPoint, threshold: float) -> m.OperatingPoint:
    from dataclasses import replace

    return replace(p, threshold=threshold)
