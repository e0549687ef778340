"""Features of the answerer's two decisions: which sentence answers, and which span of it.

Both are scored by small logistic-regression models trained on SQuAD v1.1 train
(``qa.training.answerer``); this module turns (question, sentence, candidate) into numbers, the
same way at training and at answering time.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.ingest.annotate import Annotation, Candidate
from qa.text import STOPWORDS, content_stems, stem
from qa.trees import TreeModel
from qa.trees import check_features as _check_features
from qa.trees import columns as _columns

_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_DIGIT = re.compile(r"[0-9]")


def years(text: str) -> set[str]:
    return set(_YEAR.findall(text))


# ---------------------------------------------------------------- question types

QTYPES = (
    "who",
    "when",
    "where",
    "why",
    "how_many",
    "how_much",
    "how_long",
    "how",
    "what_year",
    "which",
    "what",
    "other",
)

_QTYPE_RULES = (
    ("how_many", r"\bhow many\b"),
    ("how_much", r"\bhow much\b|\bwhat (?:was|is) the (?:amount|cost|value|price|fine|penalty)\b"),
    ("how_long", r"\bhow (?:long|old|far|often|large|big)\b"),
    ("what_year", r"\b(?:what|which) (?:year|date|day|month|decade|century)\b|\bwhen\b"),
    ("who", r"\bwho(?:m|se)?\b"),
    ("where", r"\bwhere\b"),
    ("why", r"\bwhy\b|\bfor what (?:reason|purpose)\b"),
    ("how", r"\bhow\b"),
    ("which", r"\bwhich\b"),
    ("what", r"\bwhat\b"),
)


def question_type(question: str) -> str:
    """The answer type a question asks for, from its wh-words (first match wins)."""
    q = question.lower()
    best: tuple[int, str] | None = None
    for name, pattern in _QTYPE_RULES:
        m = re.search(pattern, q)
        if m and (best is None or m.start() < best[0] - 20):
            best = (m.start(), name)
            if name in ("how_many", "how_much", "how_long", "what_year"):
                break
    if best is None:
        return "other"
    return "when" if best[1] == "what_year" and "when" in q.split()[:3] else best[1]


def focus_word(question: str, qtype: str) -> str | None:
    """The noun after "which"/"what" ("which country" -> "country"), stemmed."""
    m = re.search(r"\b(?:which|what)\s+([a-z]+)", question.lower())
    if m and m.group(1) not in STOPWORDS and qtype in ("which", "what", "what_year", "when"):
        return stem(m.group(1))
    return None


# candidate label groups (entity labels and candidate kinds)
LABEL_GROUPS = (
    "PERSON",
    "ORG",
    "PLACE",
    "NORP",
    "DATE",
    "CARDINAL",
    "MONEY",
    "PERCENT",
    "QUANTITY",
    "ORDINAL",
    "ENT",
    "np",
    "pobj",
    "subtree",
    "pp",
    "clause",
    "num",
    "word",
)
_PLACE = {"GPE", "LOC", "FAC"}
_OTHER_ENT = {"EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "PRODUCT"}


def label_group(c: Candidate) -> str:
    if c.kind == "ent":
        if c.label in _PLACE:
            return "PLACE"
        if c.label == "TIME":
            return "DATE"
        if c.label in _OTHER_ENT:
            return "ENT"
        return c.label if c.label in LABEL_GROUPS else "ENT"
    return c.kind if c.kind in LABEL_GROUPS else "subtree"


EXPECTED: dict[str, frozenset[str]] = {
    "who": frozenset({"PERSON", "ORG", "NORP"}),
    "when": frozenset({"DATE"}),
    "what_year": frozenset({"DATE"}),
    "where": frozenset({"PLACE", "ORG"}),
    "how_many": frozenset({"CARDINAL", "QUANTITY", "num"}),
    "how_much": frozenset({"MONEY", "PERCENT", "QUANTITY", "CARDINAL"}),
    "how_long": frozenset({"DATE", "QUANTITY", "CARDINAL"}),
    "why": frozenset({"clause"}),
}

DEPS = ("nsubj", "nsubjpass", "dobj", "pobj", "attr", "appos", "conj", "compound", "other")


@dataclass(frozen=True, slots=True)
class Question:
    """What the answerer knows about a question, computed once per question."""

    text: str
    qtype: str
    stems: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    focus: str | None
    years: frozenset[str]

    @classmethod
    def parse(cls, text: str, context: str | None = None) -> Question:
        """``context``: the earlier question a follow-up leans on; it lends its words and
        years (unless the follow-up names its own), never its answer type."""
        qtype = question_type(text)
        st = content_stems(text)
        ctx = content_stems(context) if context else []
        own_years = years(text)
        return cls(
            text=text,
            qtype=qtype,
            stems=frozenset(st) | frozenset(ctx),
            bigrams=frozenset(itertools.pairwise(st)) | frozenset(itertools.pairwise(ctx)),
            focus=focus_word(text, qtype),
            years=frozenset(own_years or (years(context) if context else set())),
        )


# ---------------------------------------------------------------- sentence features

SENTENCE_BASE = (
    "cos",
    "cos_gap",
    "cos_rank_top",
    "overlap",
    "idf_overlap",
    "bigram_overlap",
    "passage_rank",
    "passage_top1",
    "title_overlap",
    "year_match",
    "year_miss",
    "type_match",
    "log_len",
    "heading",
    "span_best",
    "prev_idf_overlap",
    "n_expected",
)
_RELATIVE = (("idf_gap", "idf_overlap"), ("span_gap", "span_best"), ("bigram_gap", "bigram_overlap"))
SENTENCE_FEATURES = (*SENTENCE_BASE, *(name for name, _ in _RELATIVE))


def add_relative(base: np.ndarray) -> np.ndarray:
    """Append each feature's gap to the best among the same question's candidates: a
    pointwise model then still sees how a sentence compares with its rivals."""
    if len(base) == 0:
        return np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32)
    cols = [base[:, SENTENCE_BASE.index(src)] for _, src in _RELATIVE]
    return np.column_stack([base, *(c - c.max() for c in cols)]).astype(np.float32)


def sentence_features(
    q: Question,
    sentence_text: str,
    title: str,
    release_year: int | None,
    ann: Annotation,
    cos: float,
    cos_max: float,
    cos_rank: int,
    passage_rank: int,
    idf: dict[str, float],
    span_best: float,
    prev_text: str | None = None,
) -> list[float]:
    """The ``SENTENCE_BASE`` features; ``add_relative`` completes them per question."""
    s_stems = content_stems(sentence_text)
    s_set = set(s_stems)
    q_idf = sum(idf.get(w, 1.0) for w in q.stems) or 1.0
    inter = q.stems & s_set
    s_bigrams = set(itertools.pairwise(s_stems))
    title_set = set(content_stems(title))
    s_years = years(sentence_text) | ({str(release_year)} if release_year else set())
    expected = EXPECTED.get(q.qtype)
    n_expected = sum(1 for c in ann.candidates if expected and label_group(c) in expected)
    type_match = float(n_expected > 0)
    n_tok = max(1, len(sentence_text.split()))
    prev = (set(content_stems(prev_text)) & q.stems) - inter if prev_text else set()
    return [
        cos,
        cos - cos_max,
        float(cos_rank == 0),
        len(inter) / len(q.stems) if q.stems else 0.0,
        sum(idf.get(w, 1.0) for w in inter) / q_idf,
        len(q.bigrams & s_bigrams) / len(q.bigrams) if q.bigrams else 0.0,
        1.0 / (1.0 + passage_rank),
        float(passage_rank == 0),
        len(q.stems & title_set) / len(q.stems) if q.stems else 0.0,
        float(bool(q.years) and bool(q.years & s_years)),
        float(bool(q.years) and not (q.years & s_years)),
        type_match,
        math.log(n_tok),
        float(n_tok < 6),
        span_best,
        sum(idf.get(w, 1.0) for w in prev) / q_idf,
        min(n_expected, 5),
    ]


# ---------------------------------------------------------------- span features

SPAN_FEATURES = (
    "n_tokens",
    "log_len",
    "cand_overlap",
    "cand_all_in_q",
    "dist",
    "no_match",
    "after_match",
    "near_matches",
    "follows_match",
    "rel_pos",
    "head_in_q",
    "focus_in_cand",
    "focus_is_head",
    "has_digit",
    "capitalized",
    "expected",
    "dep",
    "qtype",
    "group",
    "kind_ent",
    "n_expected",
    "overlaps_expected",
    "head_prep",
)
HEAD_PREPS = ("", "by", "of", "in", "on", "at", "to", "from", "for", "with", "as", "than", "since", "during")
"""The preposition a candidate hangs from ("chaired by X", "held in X", "on 4 May"): with the
question type it says much about the role the candidate plays."""


_DEP_CODE = {d: i for i, d in enumerate(DEPS)}
_PREP_CODE = {p: i for i, p in enumerate(HEAD_PREPS)}
_GROUP_CODE = {g: i for i, g in enumerate(LABEL_GROUPS)}


@functools.lru_cache(maxsize=65536)
def _span_stems(text: str) -> tuple[str, ...]:
    """A candidate's content stems: the same popular sentences come back question after question."""
    return tuple(content_stems(text))


def span_features(q: Question, sentence_text: str, ann: Annotation) -> np.ndarray:
    """One row per candidate of the sentence (categorical ones as small integer codes)."""
    return span_features_many(q, [sentence_text], [ann])[0]


def _digit_positions(text: str) -> list[int]:
    if text.isascii():
        return [m.start() for m in _DIGIT.finditer(text)]
    return [i for i, ch in enumerate(text) if ch.isdigit()]


def _padded(rows: list[list[int]], fill: int = -1) -> np.ndarray:
    out = np.full((len(rows), max((len(r) for r in rows), default=0)), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def span_features_many(q: Question, texts: Sequence[str], anns: Sequence[Annotation]) -> list[np.ndarray]:
    """``span_features`` of many sentences in one pass: a question reads about 600 candidates
    in 25 sentences, so positions are compared as (candidates x matched tokens) arrays rather
    than in per-pair Python loops, and numpy is called once per question, not per sentence."""
    sizes = [len(a.candidates) for a in anns]
    k = sum(sizes)
    out = np.zeros((k, len(SPAN_FEATURES)), dtype=np.float32)
    if not k:
        return np.split(out, np.cumsum(sizes)[:-1]) if sizes else []
    qs = q.stems
    expected = EXPECTED.get(q.qtype, frozenset())
    sent = np.repeat(np.arange(len(anns)), sizes)
    cands = [c for a in anns for c in a.candidates]
    ts = np.asarray([c.tok_start for c in cands], dtype=np.int64)
    te = np.asarray([c.tok_end for c in cands], dtype=np.int64)
    cs = np.asarray([c.start for c in cands], dtype=np.int64)
    ce = np.asarray([c.end for c in cands], dtype=np.int64)
    groups = [label_group(c) for c in cands]
    is_ent = np.asarray([c.kind == "ent" for c in cands])
    in_expected = np.asarray([g in expected for g in groups])
    typed = is_ent & in_expected
    spans = [t[c.start : c.end] for t, a in zip(texts, anns, strict=True) for c in a.candidates]
    stems = [_span_stems(t) for t in spans]
    n_stems = np.asarray([len(st) for st in stems], dtype=np.float32)
    in_q = np.asarray([sum(w in qs for w in st) for st in stems], dtype=np.float32)

    n = (te - ts).astype(np.float32)
    out[:, 0] = n
    out[:, 1] = np.log1p(n.astype(np.float64))
    out[:, 2] = np.divide(in_q, n_stems, out=np.ones(k, np.float32), where=n_stems > 0)
    out[:, 3] = (n_stems > 0) & (in_q == n_stems)
    # Question words matched in each candidate's sentence, padded with -1.
    matched = _padded([[i for i, t in enumerate(a.tokens) if stem(t[2]) in qs] for a in anns])
    if matched.shape[1]:
        m = matched[sent]
        valid = m >= 0
        before = valid & (m < ts[:, None])
        outside = before | (valid & (m >= te[:, None]))
        gaps = np.where(before, ts[:, None] - m, m - (te[:, None] - 1))
        nearest = np.where(outside, gaps, np.iinfo(np.int64).max).min(axis=1)
        has_match = valid[:, 0]
        out[:, 4] = np.where(has_match, np.minimum(np.where(outside.any(axis=1), nearest, 0), 30), 30)
        out[:, 5] = ~has_match
        out[:, 6] = has_match & (ts > m[:, 0])
        out[:, 7] = (outside & (gaps <= 3)).sum(axis=1)
        out[:, 8] = (valid & ((m == ts[:, None] - 1) | (m == ts[:, None] - 2))).any(axis=1)
    else:
        out[:, 4] = 30
        out[:, 5] = 1.0
    n_tok = np.asarray([max(1, len(a.tokens)) for a in anns], dtype=np.float64)
    out[:, 9] = ts / n_tok[sent]
    out[:, 10] = [stem(c.head) in qs for c in cands]
    if q.focus is not None:
        out[:, 11] = [q.focus in st for st in stems]
        out[:, 12] = [bool(st) and st[-1] == q.focus for st in stems]
    # Digits: positions in all sentences laid end to end, counted inside each span.
    base = np.concatenate([[0], np.cumsum([len(t) for t in texts])[:-1]])
    digits = np.asarray([b + i for b, t in zip(base, texts, strict=True) for i in _digit_positions(t)])
    gs, ge = cs + base[sent], ce + base[sent]
    out[:, 13] = np.searchsorted(digits, ge) > np.searchsorted(digits, gs)
    out[:, 14] = [t[:1].isupper() for t in spans]
    out[:, 15] = in_expected
    out[:, 16] = [_DEP_CODE.get(c.dep, _DEP_CODE["other"]) for c in cands]
    out[:, 17] = QTYPES.index(q.qtype)
    out[:, 18] = [_GROUP_CODE[g] for g in groups]
    out[:, 19] = is_ent
    n_typed = np.bincount(sent, weights=typed, minlength=len(anns))
    out[:, 20] = np.minimum(n_typed[sent], 5)
    if typed.any():
        # Typed entities of each candidate's sentence as (start, end) char spans, padded.
        where = np.nonzero(typed)[0]
        per = np.split(where, np.searchsorted(sent[where], np.arange(1, len(anns))))
        idx = _padded([p.tolist() for p in per])[sent]
        ok = idx >= 0
        ta, tb = cs[idx], ce[idx]
        out[:, 21] = (ok & (ta < ce[:, None]) & (cs[:, None] < tb)).any(axis=1)
    out[:, 22] = [_PREP_CODE.get(c.head, 0) for c in cands]
    return np.split(out, np.cumsum(sizes)[:-1])


# ---------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Standardized logistic regression: p = sigmoid(((x - mean) / scale) @ coef + intercept)."""

    features: tuple[str, ...]
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = _columns(x, self.features)
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def proba(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": "linear",
            "features": list(self.features),
            "coef": [round(float(v), 6) for v in self.coef],
            "intercept": round(float(self.intercept), 6),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, d: dict[str, object], expected: Sequence[str]) -> LinearModel:
        feats = tuple(d["features"])  # type: ignore[arg-type]
        _check_features(feats, expected)
        arr = lambda k: np.asarray(d[k], dtype=np.float32)  # noqa: E731
        return cls(feats, arr("coef"), float(d["intercept"]), arr("mean"), arr("scale"))  # type: ignore[arg-type]


Model = LinearModel | TreeModel


def model_from_dict(d: dict[str, object], expected: Sequence[str]) -> Model:
    if d.get("kind") == "trees":
        return TreeModel.from_dict(d, expected)
    return LinearModel.from_dict(d, expected)
