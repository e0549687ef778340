"""Hard negatives for the reader: the passages the project's own hybrid retrieval returns for a
training question that do not hold its answer.

A reader trained on its gold paragraph alone never learns that the passage beside it is wrong,
so its span scores do not compare across passages and its no-answer score means little. The
negatives mined here are read together with the gold passage under one normalisation
(``qa.training.shared_norm``): exactly what the reader faces at answering time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.embedding import Embedder
from qa.index import Index
from qa.ingest.chunking import ChunkerSettings
from qa.retrieval.retriever import Retriever
from qa.types import Release

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Mined:
    """One question's negatives: passage texts (best first) that hold none of its answers."""

    id: str
    negatives: tuple[str, ...]
    gold: str | None = None
    """The passage that holds the answer, where the data gives no paragraph (press rows)."""
    gold_start: int = -1
    """Where the answer starts in ``gold``."""
    query: str | None = None
    """What was asked, when it is not the row's question alone (a follow-up reads its chain)."""

    def to_json(self) -> str:
        d: dict[str, object] = {"id": self.id, "negatives": list(self.negatives)}
        if self.gold is not None:
            d |= {"gold": self.gold, "gold_start": self.gold_start}
        if self.query is not None:
            d["query"] = self.query
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Mined:
        d = json.loads(line)
        return cls(
            str(d["id"]), tuple(d["negatives"]), d.get("gold"), int(d.get("gold_start", -1)), d.get("query")
        )


def holds_answer(text: str, answers: Sequence[str]) -> bool:
    folded = text.casefold()
    return any(a.strip() and a.strip().casefold() in folded for a in answers)


def negatives_of(hits_texts: Sequence[str], answers: Sequence[str], n: int) -> tuple[str, ...]:
    """The first ``n`` retrieved texts that hold no answer (an unanswerable question: any ``n``)."""
    out: list[str] = []
    for t in hits_texts:
        if not holds_answer(t, answers) and t not in out:
            out.append(t)
        if len(out) == n:
            break
    return tuple(out)


def retrieval_index(releases: Sequence[Release], embedder: Embedder, folder: str | os.PathLike[str]) -> Index:
    """The index that negatives are mined from, built once into ``folder`` (no annotation: the
    retriever needs passages, sentences and their vectors, not the answerer's parses)."""
    from qa.index.cache import cached_index

    index, path, built = cached_index(
        releases, embedder, folder, chunker=ChunkerSettings(annotator=None), progress=True
    )
    logger.info("negatives index %s (%s)", path, "built" if built else "reused")
    return index


def mine(
    retriever: Retriever,
    questions: Sequence[tuple[str, str, Sequence[str]]],
    *,
    per_question: int = 3,
    k: int = 10,
    batch: int = 256,
) -> Iterator[Mined]:
    """(id, question, answers) -> ``Mined``, in order, ``batch`` questions per retrieval call."""
    for lo in range(0, len(questions), batch):
        part = questions[lo : lo + batch]
        hits = retriever.search_batch([q for _, q, _ in part], k=k)
        for (qid, _, answers), found in zip(part, hits, strict=True):
            yield Mined(qid, negatives_of([h.passage.text for h in found], answers, per_question))


def read_mined(path: str | os.PathLike[str]) -> dict[str, Mined]:
    p = Path(path)
    if not p.is_file():
        return {}
    out: dict[str, Mined] = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            m = Mined.from_json(line)
            out[m.id] = m
    return out


def mine_squad(
    train: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    embedder: Embedder,
    *,
    questions: int,
    seed: int,
    per_question: int = 3,
    progress: bool = False,
) -> int:
    """Negatives for the first ``questions`` answerable SQuAD train questions in the trainer's
    seeded order, appended to ``out`` (questions already there are skipped: resumable).
    Returns how many were mined now."""
    import random

    from qa.evaluation.data import load_squad
    from qa.training.reader import read_squad

    examples = [e for e in read_squad(train) if e.answers]
    random.Random(seed).shuffle(examples)
    done = read_mined(out)
    todo = [(e.id, e.question, e.answers) for e in examples[:questions] if e.id not in done]
    if not todo:
        return 0
    index = retrieval_index(load_squad(train).releases, embedder, cache)
    retriever = Retriever(index, embedder, k=10)
    it = mine(retriever, todo, per_question=per_question)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(todo), desc="mining negatives", unit="question")
    n = 0
    with Path(out).open("a", encoding="utf-8") as f:
        for m in it:
            f.write(m.to_json() + "\n")
            n += 1
            if n % 1000 == 0:
                f.flush()
    return n


def press_query(row: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    """What the reader reads for a press row: a follow-up after the questions of its chain, as the
    neural answerer reads a follow-up after its context."""
    chain = [row["question"]]
    while row["followup_of"] is not None:
        row = by_id[row["followup_of"]]
        chain.insert(0, row["question"])
    return " ".join(chain[-2:])


def mine_press(
    rows: Sequence[dict[str, Any]],
    archive: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    embedder: Embedder,
    *,
    per_question: int = 3,
) -> int:
    """Gold passages and negatives for press QA rows (``evals.press_data`` format) over the
    releases they were written on: the gold passage is the project's passage that holds the
    answer where its evidence sentence is; negatives are retrieved passages without an answer
    (an unanswerable row's are its top passages). Written to ``out``; returns the rows mined."""
    from qa.ingest.releases import read_file

    folder = Path(archive)
    releases = {name: read_file(folder / name)[0] for name in sorted({r["near"] for r in rows})}
    index = retrieval_index(list(releases.values()), embedder, cache)
    retriever = Retriever(index, embedder, k=10)
    by_id = {r["id"]: r for r in rows}
    queries = [press_query(r, by_id) for r in rows]
    hits = retriever.search_batch(queries, k=10)
    n = 0
    with Path(out).open("w", encoding="utf-8") as f:
        for r, q, found in zip(rows, queries, hits, strict=True):
            gold, gold_start = None, -1
            if r["answers"]:
                rel = releases[r["release"]]
                ev = rel.text.find(r["evidence"])
                a = ev + r["evidence"].find(r["answers"][0])
                b = a + len(r["answers"][0])
                ids = index.ids_of_releases("passages", [rel.id])
                holding = [p for p in index.passages.get_many(ids).values() if p.start <= a and b <= p.end]
                if ev < 0 or not holding:
                    continue
                p = min(holding, key=lambda p: p.start)
                gold, gold_start = p.text, a - p.start
            negs = negatives_of([h.passage.text for h in found], r["answers"], per_question)
            f.write(
                Mined(r["id"], negs, gold, gold_start, q if q != r["question"] else None).to_json() + "\n"
            )
            n += 1
    return n
