"""Running a system over an ``EvalSet``: one ``Prediction`` per question.

The project's assistant is asked one question at a time through ``Assistant.ask_batch``
(what a user's request goes through), with ``threshold=0.0`` so every question gets the
answerer's best guess and its score; abstention at any threshold is then computed from the
score. Stage times come from timing the assistant's own retriever and answerer calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qa.assistant import Assistant
from qa.evaluation.data import EvalItem, EvalSet, history_messages
from qa.types import Answer, Release

logger = logging.getLogger(__name__)

DEPTH = 20
"""Passages retrieved per question for the retrieval metrics (recall@1..20)."""

LOG_EVERY = 500


@dataclass(frozen=True, slots=True)
class Prediction:
    """What one system did with one question.

    ``text`` is the best guess (None only when there was nothing to quote); ``declined`` is
    the decision at the system's own operating point. Ranks are 1-based within the top
    ``DEPTH`` passages, None when no retrieved passage qualifies (or no retrieval ran).
    """

    item_id: str
    text: str | None
    sentence: str | None
    score: float
    declined: bool
    release_id: str | None = None
    start: int | None = None
    end: int | None = None
    passage_rank: int | None = None
    release_rank: int | None = None
    stages: tuple[tuple[str, float], ...] = ()
    resolved_question: str | None = None


@dataclass(frozen=True, slots=True)
class SystemRun:
    """All predictions of one system on one dataset, or why it could not run."""

    system: str
    description: str
    predictions: tuple[Prediction, ...]
    threshold: float | None = None
    seconds: float = 0.0
    error: str | None = None
    retrieval: bool = True


# ---------------------------------------------------------------- gold ranks


def holds_gold(item: EvalItem, release: Release, start: int, end: int) -> bool:
    """Whether text[start:end] of ``release`` holds a verbatim gold answer (inside the gold
    paragraph too, for SQuAD, so a "1973" elsewhere in the article does not count)."""
    if release.id != item.release_id:
        return False
    lo, hi = start, end
    if item.span is not None:
        lo, hi = max(lo, item.span[0]), min(hi, item.span[1])
    text = release.text
    for a in item.answers:
        i = text.find(a, lo)
        if i >= 0 and i + len(a) <= hi:
            return True
    return False


def gold_ranks(
    item: EvalItem, passages: Sequence[tuple[str, int, int]], releases: Mapping[str, Release]
) -> tuple[int | None, int | None]:
    """(rank of the first passage holding a gold answer, rank of the first passage of the
    gold release) among ``passages`` given as (release_id, start, end)."""
    if not item.answerable or item.release_id is None:
        return None, None
    passage_rank = release_rank = None
    for rank, (rid, start, end) in enumerate(passages, 1):
        if rid != item.release_id:
            continue
        release_rank = release_rank or rank
        if passage_rank is None and holds_gold(item, releases[rid], start, end):
            passage_rank = rank
            break
    return passage_rank, release_rank


# ---------------------------------------------------------------- stage timing


class StageClock:
    """Milliseconds spent in named calls of objects, while ``timing`` is active."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def timing(self, targets: Sequence[tuple[object, str, str]]) -> Iterator[StageClock]:
        """Wrap each (object, method name, stage name) on the instance; unwrap after."""
        wrapped = []
        for obj, attr, stage in targets:
            if not hasattr(obj, attr):
                continue
            setattr(obj, attr, self._timed(getattr(obj, attr), stage))
            wrapped.append((obj, attr))
        try:
            yield self
        finally:
            for obj, attr in wrapped:
                delattr(obj, attr)

    def _timed(self, fn: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000

        return timed

    def take(self, total_ms: float) -> tuple[tuple[str, float], ...]:
        out = (*sorted(self.ms.items()), ("total", total_ms))
        self.ms = {}
        return out


# ---------------------------------------------------------------- the project's assistant


def operating_threshold(assistant: Assistant) -> float:
    """The threshold ``ask`` applies by default (the answerer's own, when it has one)."""
    return float(assistant.answerer.threshold)


def _prediction(
    item: EvalItem, answer: Answer, threshold: float, stages: tuple[tuple[str, float], ...]
) -> Prediction:
    c = answer.citation
    return Prediction(
        item_id=item.id,
        text=answer.text,
        sentence=answer.sentence,
        score=float(answer.score),
        declined=answer.text is None or answer.score < threshold,
        release_id=c.release_id if c else None,
        start=c.start if c else None,
        end=c.end if c else None,
        stages=stages,
        resolved_question=answer.resolved_question,
    )


def run_assistant(
    eval_set: EvalSet,
    assistant: Assistant,
    system: str,
    *,
    description: str = "",
    gold_context: bool = False,
    progress: bool = False,
) -> SystemRun:
    """Ask every question of ``eval_set``; with ``gold_context`` answer from the question's own
    paragraph (SQuAD) or release (JSONL) instead of retrieving."""
    t0 = time.perf_counter()
    threshold = operating_threshold(assistant)
    releases = {r.id: r for r in eval_set.releases}
    clock = StageClock()
    targets = [
        (assistant.retriever, "encode", "encode"),
        (assistant.retriever, "search_encoded", "retrieve"),
        (assistant.answerer, "candidates", "answer"),
    ]
    items = eval_set.items
    if gold_context:
        items = tuple(i for i in items if i.release_id is not None)
    answers: list[Prediction] = []
    bar = _bar(items, f"{eval_set.name}: {system}", progress)
    with clock.timing(targets):
        for n, item in enumerate(bar, 1):
            if n % LOG_EVERY == 0:
                logger.info("%s: %s asked %d/%d questions", eval_set.name, system, n, len(items))
            t = time.perf_counter()
            if gold_context:
                assert item.release_id is not None
                lo, hi = item.span if item.span is not None else (None, None)
                answer = assistant.answer_from(item.question, item.release_id, lo, hi, threshold=0.0)
            else:
                answer = assistant.ask_batch([item.question], [history_messages(item)], threshold=0.0)[0]
            answers.append(_prediction(item, answer, threshold, clock.take((time.perf_counter() - t) * 1000)))
    if not gold_context:
        answers = _with_ranks(eval_set, items, answers, assistant, releases, progress)
    return SystemRun(
        system=system,
        description=description,
        predictions=tuple(answers),
        threshold=threshold,
        seconds=time.perf_counter() - t0,
        retrieval=not gold_context,
    )


def _with_ranks(
    eval_set: EvalSet,
    items: Sequence[EvalItem],
    preds: Sequence[Prediction],
    assistant: Assistant,
    releases: Mapping[str, Release],
    progress: bool,
    batch: int = 64,
) -> list[Prediction]:
    """Retrieve ``DEPTH`` passages for each question as the assistant did (after its chat, for
    follow-ups) and record where the gold passage and release rank."""
    from dataclasses import replace

    out: list[Prediction] = []
    queries = [i.question for i in items]
    histories = [history_messages(i) for i in items]
    starts = range(0, len(items), batch)
    for s in _bar(starts, f"{eval_set.name}: retrieval", progress):
        hits = assistant.search_batch(queries[s : s + batch], k=DEPTH, histories=histories[s : s + batch])
        for item, pred, row in zip(items[s : s + batch], preds[s : s + batch], hits, strict=True):
            spans = [(h.passage.release_id, h.passage.start, h.passage.end) for h in row]
            pr, rr = gold_ranks(item, spans, releases)
            out.append(replace(pred, passage_rank=pr, release_rank=rr))
    return out


def _bar(seq: Sequence[Any], desc: str, progress: bool) -> Any:
    if not progress:
        return seq
    from tqdm.auto import tqdm

    return tqdm(seq, desc=desc, unit="q" if not isinstance(seq, range) else "batch", leave=False)
