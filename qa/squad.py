"""SQuAD JSON (v1.1 and v2.0) as releases and questions.

Each article becomes one release, its paragraphs joined with blank lines, so
retrieval over the articles is part of what is measured ("open corpus"); each
question keeps its paragraph's range in the release and its gold answers.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

from qa.releases import make_release
from qa.types import Release


@dataclass(frozen=True, slots=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # empty: unanswerable (v2.0)
    release_id: str
    context_start: int
    context_end: int
    answer_starts: tuple[int, ...]  # offsets in the release text


@dataclass(frozen=True, slots=True)
class SquadSet:
    releases: tuple[Release, ...]
    questions: tuple[SquadQuestion, ...]


def load_squad(path: str | os.PathLike[str], *, articles: int | None = None) -> SquadSet:
    """Read a SQuAD file (``.json`` or ``.json.gz``); ``articles`` keeps only the first N."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    if articles is not None:
        data = data[:articles]
    releases: list[Release] = []
    questions: list[SquadQuestion] = []
    for art in data:
        parts: list[str] = []
        spans: list[tuple[int, int, int]] = []  # start in text, end, leading chars stripped
        pos = 0
        for para in art["paragraphs"]:
            raw = para["context"]
            lead = len(raw) - len(raw.lstrip())
            ctx = raw.strip()
            if parts:
                pos += 2
            spans.append((pos, pos + len(ctx), lead))
            parts.append(ctx)
            pos += len(ctx)
        title = art.get("title", "").replace("_", " ")
        release = make_release("\n\n".join(parts), path=f"squad/{art.get('title', 'article')}", title=title)
        releases.append(release)
        for (start, end, lead), para in zip(spans, art["paragraphs"], strict=True):
            for qa in para["qas"]:
                answers = [a for a in qa.get("answers", []) if a.get("text", "").strip()]
                if qa.get("is_impossible"):
                    answers = []
                questions.append(
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=qa["question"].strip(),
                        answers=tuple(a["text"] for a in answers),
                        release_id=release.id,
                        context_start=start,
                        context_end=end,
                        answer_starts=tuple(start + a["answer_start"] - lead for a in answers),
                    )
                )
    return SquadSet(tuple(releases), tuple(questions))
