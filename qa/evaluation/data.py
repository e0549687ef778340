"""Evaluation datasets: SQuAD JSON (v1.1, v2.0) and the press-release JSONL, as one shape.

Both become an ``EvalSet``: the releases to index (the corpus) and the questions, each
knowing its gold answers, its gold release and, for SQuAD, its paragraph's range in that
release, so retrieval and answering can be scored against the same offsets the library uses.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa.ingest.releases import make_release, read_releases
from qa.types import Release

logger = logging.getLogger(__name__)

SAMPLE_SEED = 13
"""Seed of ``--limit`` sampling: the same questions on every run, whatever the machine."""

NO_ANSWER_REPLY = "The releases I have don't answer this."


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier exchange of a chat: what a follow-up is asked after."""

    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One question with what counts as right.

    ``answers`` empty means unanswerable; ``release_id`` is the gold release (None when
    unanswerable); ``span`` is the gold paragraph's [start, end) in that release's text
    (SQuAD), None when the whole release is the context (press releases).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    release_id: str | None
    span: tuple[int, int] | None = None
    qtype: str = "other"
    followup_of: str | None = None
    history: tuple[Turn, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True, slots=True)
class EvalSet:
    """A named dataset: the corpus to index and the questions asked over it."""

    name: str
    kind: str  # "squad" or "jsonl"
    releases: tuple[Release, ...]
    items: tuple[EvalItem, ...]
    sources: tuple[str, ...] = ()


# ---------------------------------------------------------------- question types

_WH = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how")
_WORD = re.compile(r"[a-z]+")


def wh_type(question: str) -> str:
    """The question's wh-word ("how many" and "how much" apart), the first one it uses.

    SQuAD questions often put it mid-sentence ("The crisis began in what year?").
    """
    words = _WORD.findall(question.lower())
    for i, w in enumerate(words):
        if w in _WH:
            if w == "how" and i + 1 < len(words) and words[i + 1] in ("many", "much"):
                return f"how {words[i + 1]}"
            return "who" if w in ("whom", "whose") else w
    return "other"


# ---------------------------------------------------------------- SQuAD


def squad_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A SQuAD file's JSON (``.json`` or ``.json.gz``), checked for its top-level ``data`` list:
    the one reader of SQuAD files for the evals and for training."""
    p = Path(path)
    opener: Any = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{p}: not SQuAD JSON (no top-level 'data' list)")
    return data


def _clean(text: str) -> str:
    """What ``make_release`` does to a text, applied per paragraph so offsets stay exact."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


def load_squad(path: str | os.PathLike[str], name: str | None = None) -> EvalSet:
    """One release per article (paragraphs joined with blank lines), one item per question."""
    p = Path(path)
    data = squad_json(p)
    releases: list[Release] = []
    items: list[EvalItem] = []
    for art in data["data"]:
        title = str(art.get("title", "article"))
        paras = [(para, _clean(para["context"])) for para in art["paragraphs"]]
        paras = [(para, ctx) for para, ctx in paras if ctx]
        if not paras:
            continue
        spans: list[tuple[int, int]] = []
        pos = 0
        for _, ctx in paras:
            spans.append((pos, pos + len(ctx)))
            pos += len(ctx) + 2
        text = "\n\n".join(ctx for _, ctx in paras)
        release = make_release(text, path=f"{p.name}#{title}", title=title.replace("_", " "))
        if release.text != text:  # pragma: no cover - guards the offset arithmetic
            raise ValueError(f"{p}: article {title!r} changed when read; offsets would be wrong")
        releases.append(release)
        for (para, ctx), span in zip(paras, spans, strict=True):
            assert release.text[span[0] : span[1]] == ctx
            for q in para["qas"]:
                impossible = bool(q.get("is_impossible", False))
                answers = () if impossible else tuple(a["text"] for a in q["answers"] if a["text"].strip())
                items.append(
                    EvalItem(
                        id=str(q["id"]),
                        question=" ".join(q["question"].split()),
                        answers=answers,
                        release_id=release.id,
                        span=span,
                        qtype=wh_type(q["question"]),
                    )
                )
    _check_unique(items, p)
    return EvalSet(name or p.stem, "squad", tuple(releases), tuple(items), (str(p),))


# ---------------------------------------------------------------- press-release JSONL


def load_jsonl(
    path: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]], name: str | None = None
) -> EvalSet:
    """Questions from JSONL over the releases under ``corpus``.

    ``release`` names the gold release by id or by file name (basename of ``Release.path``).
    A follow-up carries its chain of earlier turns; each earlier answer is its first gold
    answer, so every system is judged on the same conversation.
    """
    p = Path(path)
    if not corpus:
        raise ValueError(f"{p}: a JSONL dataset needs --corpus (the releases its questions are about)")
    report = read_releases(corpus)
    for s in report.skipped:
        logger.warning("corpus: skipped %s", s)
    releases = report.releases
    by_id = {r.id: r for r in releases}
    by_name: dict[str, Release] = {}
    for r in releases:
        by_name.setdefault(Path(r.path).name, r)
    rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    raw: dict[str, dict[str, object]] = {}
    items: list[EvalItem] = []
    for n, row in enumerate(rows, 1):
        qid = str(row["id"])
        ref = row.get("release")
        release_id = None
        if ref is not None:
            rel = by_id.get(str(ref)) or by_name.get(Path(str(ref)).name)
            if rel is None:
                raise ValueError(f"{p}:{n}: release {ref!r} is not in the corpus {[str(c) for c in corpus]}")
            release_id = rel.id
        parent = row.get("followup_of")
        if parent is not None and str(parent) not in raw:
            raise ValueError(f"{p}:{n}: followup_of {parent!r} does not name an earlier question")
        raw[qid] = row
        answers = tuple(str(a) for a in row.get("answers") or ())
        items.append(
            EvalItem(
                id=qid,
                question=str(row["question"]),
                answers=answers,
                release_id=release_id,
                qtype=str(row.get("type") or wh_type(str(row["question"]))),
                followup_of=None if parent is None else str(parent),
            )
        )
    _check_unique(items, p)
    by_qid = {i.id: i for i in items}
    items = [replace(i, history=_history(i, by_qid)) for i in items]
    return EvalSet(name or p.stem, "jsonl", releases, tuple(items), tuple(str(c) for c in corpus))


def _history(item: EvalItem, by_id: dict[str, EvalItem]) -> tuple[Turn, ...]:
    chain: list[Turn] = []
    parent = item.followup_of
    while parent is not None:
        prev = by_id[parent]
        chain.append(Turn(prev.question, prev.answers[0] if prev.answers else NO_ANSWER_REPLY))
        parent = prev.followup_of
    return tuple(reversed(chain))


def after_another(eval_set: EvalSet) -> EvalSet:
    """The set as a chat where every first question is asked after another: the nearest earlier
    first question on another release (cycling round), with its first gold answer as the reply.
    Follow-ups keep their chains. What a question on a new subject meets in a real chat: the
    assistant also searches after the earlier question, and this says what that costs."""
    items = list(eval_set.items)
    first = [n for n, i in enumerate(items) if i.followup_of is None]
    for pos, n in enumerate(first):
        item = items[n]
        for back in range(1, len(first)):
            prev = items[first[(pos - back) % len(first)]]
            if prev.release_id is None or prev.release_id != item.release_id:
                reply = prev.answers[0] if prev.answers else NO_ANSWER_REPLY
                items[n] = replace(item, history=(Turn(prev.question, reply),))
                break
    return replace(eval_set, items=tuple(items))


def history_messages(item: EvalItem) -> list[dict[str, str]] | None:
    """The item's earlier turns as OpenAI-style messages (what ``Assistant.ask`` takes)."""
    if not item.history:
        return None
    out: list[dict[str, str]] = []
    for t in item.history:
        out += [{"role": "user", "content": t.question}, {"role": "assistant", "content": t.answer}]
    return out


def _check_unique(items: Sequence[EvalItem], where: Path) -> None:
    seen: set[str] = set()
    for i in items:
        if i.id in seen:
            raise ValueError(f"{where}: question id {i.id!r} appears twice")
        seen.add(i.id)


# ---------------------------------------------------------------- loading and sampling


def load_dataset(
    path: str | os.PathLike[str], corpus: Sequence[str | os.PathLike[str]] = (), name: str | None = None
) -> EvalSet:
    """SQuAD for ``.json``/``.json.gz``, press-release JSONL for ``.jsonl``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"dataset not found: {p}")
    if p.name.endswith(".jsonl"):
        return load_jsonl(p, corpus, name)
    if corpus:
        raise ValueError(f"{p}: SQuAD brings its own corpus (its articles); drop --corpus")
    return load_squad(p, name)


def article_half(eval_set: EvalSet, part: int) -> EvalSet:
    """The questions of half the articles (releases), split by release id: tune on one half,
    report on the other. The corpus stays whole, so retrieval is as hard as on the full set."""
    if part not in (0, 1):
        raise ValueError(f"part must be 0 or 1, got {part!r}")
    keep = {r.id for r in eval_set.releases if int(r.id, 16) % 2 == part}
    items = tuple(i for i in eval_set.items if i.release_id in keep)
    return replace(eval_set, name=f"{eval_set.name}-half{part}", items=items)


def sample(eval_set: EvalSet, limit: int | None, seed: int = SAMPLE_SEED) -> EvalSet:
    """``limit`` questions drawn with a fixed seed (kept in file order); the corpus stays whole,
    so retrieval is as hard as on the full set."""
    if limit is None or limit >= len(eval_set.items):
        return eval_set
    if limit < 1:
        raise ValueError(f"--limit must be positive, got {limit}")
    keep = set(random.Random(seed).sample(range(len(eval_set.items)), limit))
    items = tuple(i for n, i in enumerate(eval_set.items) if n in keep)
    return replace(eval_set, items=items)
