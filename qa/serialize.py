"""Plain-JSON views of the records, shared by the CLI, the chat API and the evals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from qa.types import Answer, Citation, Hit, Release


def release_to_dict(r: Release) -> dict[str, Any]:
    return {
        "id": r.id,
        "text": r.text,
        "title": r.title,
        "path": r.path,
        "date": r.date.isoformat() if r.date else None,
        "source": r.source,
        "url": r.url,
        "metadata": [list(kv) for kv in r.metadata],
    }


def release_from_dict(d: dict[str, Any]) -> Release:
    """The inverse of ``release_to_dict``: ``release_from_dict(release_to_dict(r)) == r``."""
    return Release(
        id=str(d["id"]),
        text=str(d["text"]),
        title=str(d["title"]),
        path=str(d["path"]),
        date=dt.date.fromisoformat(d["date"]) if d.get("date") else None,
        source=d.get("source"),
        url=d.get("url"),
        metadata=tuple((str(k), str(v)) for k, v in d.get("metadata", ())),
    )


def citation_to_dict(c: Citation) -> dict[str, Any]:
    return {
        "release_id": c.release_id,
        "title": c.title,
        "date": c.date.isoformat() if c.date else None,
        "source": c.source,
        "url": c.url,
        "path": c.path,
        "start": c.start,
        "end": c.end,
    }


def hit_to_dict(h: Hit) -> dict[str, Any]:
    p = h.passage
    return {
        "release_id": p.release_id,
        "title": h.release.title,
        "start": p.start,
        "end": p.end,
        "text": p.text,
        "score": round(h.score, 6),
    }


def answer_to_dict(a: Answer) -> dict[str, Any]:
    """The JSON of ``release-qa ask --json``: question, answer (or null), passages."""
    answer = None
    if a.text is not None and a.citation is not None:
        answer = {
            "text": a.text,
            "sentence": a.sentence,
            "score": round(a.score, 6),
            "citation": citation_to_dict(a.citation),
        }
    out: dict[str, Any] = {
        "question": a.question,
        "answer": answer,
        "passages": [hit_to_dict(h) for h in a.hits],
    }
    out["confidence"] = a.confidence
    if a.resolved_question is not None:
        out["resolved_question"] = a.resolved_question
    if a.alternatives:
        out["alternatives"] = [citation_to_dict(c) for c in a.alternatives]
    if answer is None:
        out["score"] = round(a.score, 6)
    return out
