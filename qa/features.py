"""Features of the answerer's two decisions: which sentence answers, and which span of it.

Both are scored by small logistic-regression models trained on SQuAD v1.1 train
(``qa.train``); this module turns (question, sentence, candidate) into numbers, the
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

from qa.annotate import Annotation, Candidate

# ---------------------------------------------------------------- words

STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or but is are was were be been being do does
    did has have had what which who whom whose when where why how that this these those it its
    as about into over under than then there their they them he she his her we our you your i
    me my not no yes can could would should will shall may might must also any all each some
    such so if up out off more most other many much said say says tell name named""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


@functools.lru_cache(maxsize=1)
def _stem_words():  # type: ignore[no-untyped-def]
    try:
        import Stemmer

        return Stemmer.Stemmer("english").stemWord
    except ImportError:  # pragma: no cover
        return lambda w: w


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stem_words()(word.lower())


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning, in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


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


def span_features(q: Question, sentence_text: str, ann: Annotation) -> np.ndarray:
    """One row per candidate of the sentence (categorical ones as small integer codes)."""
    cands = ann.candidates
    out = np.zeros((len(cands), len(SPAN_FEATURES)), dtype=np.float32)
    if not cands:
        return out
    tok_stems = [stem(t[2]) for t in ann.tokens]
    matched = [i for i, s in enumerate(tok_stems) if s in q.stems]
    first_match = matched[0] if matched else None
    expected = EXPECTED.get(q.qtype, frozenset())
    n_tok = max(1, len(ann.tokens))
    qcode = float(QTYPES.index(q.qtype))
    typed = [(c.start, c.end) for c in cands if c.kind == "ent" and label_group(c) in expected]
    for row, c in enumerate(cands):
        text = sentence_text[c.start : c.end]
        c_stems = [stem(w) for w in words(text) if w not in STOPWORDS]
        n = c.tok_end - c.tok_start
        in_q = sum(1 for w in c_stems if w in q.stems)
        outside = [m for m in matched if not c.tok_start <= m < c.tok_end]
        if outside:
            gaps = [c.tok_start - m if m < c.tok_start else m - (c.tok_end - 1) for m in outside]
            dist = min(gaps)
            near = sum(1 for g in gaps if g <= 3)
        else:
            dist, near = (0 if matched else 30), 0
        group = label_group(c)
        f = out[row]
        f[0] = n
        f[1] = math.log(1 + n)
        f[2] = in_q / len(c_stems) if c_stems else 1.0
        f[3] = float(bool(c_stems) and in_q == len(c_stems))
        f[4] = min(dist, 30)
        f[5] = float(not matched)
        f[6] = float(first_match is not None and c.tok_start > first_match)
        f[7] = near
        f[8] = float(any(m in outside for m in (c.tok_start - 1, c.tok_start - 2)))
        f[9] = c.tok_start / n_tok
        f[10] = float(stem(c.head) in q.stems)
        f[11] = float(q.focus is not None and q.focus in c_stems)
        f[12] = float(q.focus is not None and bool(c_stems) and c_stems[-1] == q.focus)
        f[13] = float(any(ch.isdigit() for ch in text))
        f[14] = float(text[:1].isupper())
        f[15] = float(group in expected)
        f[16] = DEPS.index(c.dep if c.dep in DEPS else "other")
        f[17] = qcode
        f[18] = LABEL_GROUPS.index(group)
        f[19] = float(c.kind == "ent")
        f[20] = min(len(typed), 5)
        f[21] = float(any(a < c.end and c.start < b for a, b in typed))
        f[22] = HEAD_PREPS.index(c.head) if c.head in HEAD_PREPS else 0
    return out


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


@dataclass(frozen=True, slots=True)
class TreeModel:
    """Gradient-boosted trees (from scikit-learn's HistGradientBoostingClassifier) as plain
    arrays, so shipping them needs JSON, not pickle, and predicting needs only numpy."""

    features: tuple[str, ...]
    baseline: float
    feature: np.ndarray  # (trees, nodes) int32
    threshold: np.ndarray  # (trees, nodes) float32
    left: np.ndarray  # (trees, nodes) int32
    right: np.ndarray  # (trees, nodes) int32
    value: np.ndarray  # (trees, nodes) float32
    leaf: np.ndarray  # (trees, nodes) bool
    link: str = "logistic"  # "identity" for a regressor (its output is the estimate itself)

    @classmethod
    def from_sklearn(cls, clf: object, features: Sequence[str], link: str = "logistic") -> TreeModel:
        trees = [p[0].nodes for p in clf._predictors]  # type: ignore[attr-defined]
        width = max(len(t) for t in trees)

        def pad(field: str, dtype: type, fill: float) -> np.ndarray:
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, t in enumerate(trees):
                out[i, : len(t)] = t[field]
            return out

        return cls(
            tuple(features),
            float(np.ravel(clf._baseline_prediction)[0]),  # type: ignore[attr-defined]
            pad("feature_idx", np.int32, 0),
            pad("num_threshold", np.float32, 0.0),
            pad("left", np.int32, 0),
            pad("right", np.int32, 0),
            pad("value", np.float32, 0.0),
            pad("is_leaf", np.bool_, True),
            link,
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Walk every (row, tree) pair down at once, only the pairs not yet at a leaf."""
        x = _columns(x, self.features)
        n, (t, w) = len(x), self.feature.shape
        offset = (np.arange(t, dtype=np.int64) * w)[:, None]
        feature, threshold, value = self.feature.ravel(), self.threshold.ravel(), self.value.ravel()
        left, right, leaf = (self.left + offset).ravel(), (self.right + offset).ravel(), self.leaf.ravel()
        node = np.tile(offset.ravel(), n)
        rows = np.repeat(np.arange(n), t)
        active = np.arange(n * t)
        while len(active):
            nd = node[active]
            inner = ~leaf[nd]
            active, nd = active[inner], nd[inner]
            go_left = x[rows[active], feature[nd]] <= threshold[nd]
            node[active] = np.where(go_left, left[nd], right[nd])
        return self.baseline + value[node].reshape(n, t).sum(axis=1)

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        return np.clip(z, 0.0, 1.0) if self.link == "identity" else 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, object]:
        """Compact: a node is [feature, threshold, left, right], a leaf is [value]."""

        def node(t: int, n: int) -> list[float]:
            if self.leaf[t, n]:
                return [float(f"{self.value[t, n]:.5g}")]
            return [
                int(self.feature[t, n]),
                float(np.format_float_positional(self.threshold[t, n], unique=True)),
                int(self.left[t, n]),
                int(self.right[t, n]),
            ]

        width = self.feature.shape[1]
        return {
            "kind": "trees",
            "link": self.link,
            "features": list(self.features),
            "baseline": float(self.baseline),
            "trees": [[node(t, n) for n in range(width)] for t in range(len(self.feature))],
        }

    @classmethod
    def from_dict(cls, d: dict[str, object], expected: Sequence[str]) -> TreeModel:
        feats = tuple(d["features"])  # type: ignore[arg-type]
        _check_features(feats, expected)
        trees: list[list[list[float]]] = d["trees"]  # type: ignore[assignment]
        shape = (len(trees), max(len(t) for t in trees))
        feature, left, right = (np.zeros(shape, np.int32) for _ in range(3))
        threshold, value = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        leaf = np.ones(shape, np.bool_)
        for t, nodes in enumerate(trees):
            for n, nd in enumerate(nodes):
                if len(nd) == 1:
                    value[t, n] = nd[0]
                else:
                    leaf[t, n] = False
                    feature[t, n], threshold[t, n], left[t, n], right[t, n] = (
                        int(nd[0]),
                        nd[1],
                        int(nd[2]),
                        int(nd[3]),
                    )
        link = str(d.get("link", "logistic"))
        return cls(feats, float(d["baseline"]), feature, threshold, left, right, value, leaf, link)  # type: ignore[arg-type]


def _check_features(model: Sequence[str], expected: Sequence[str]) -> None:
    """A model may know fewer features than this version computes (features are only ever
    appended), never different ones."""
    if tuple(expected[: len(model)]) != tuple(model):
        raise ValueError("model features do not match this version's features; retrain it")


def _columns(x: np.ndarray, features: Sequence[str]) -> np.ndarray:
    if x.shape[-1] < len(features):
        raise ValueError(f"expected {len(features)} features, got {x.shape[-1]}")
    return x[..., : len(features)]


Model = LinearModel | TreeModel


def model_from_dict(d: dict[str, object], expected: Sequence[str]) -> Model:
    if d.get("kind") == "trees":
        return TreeModel.from_dict(d, expected)
    return LinearModel.from_dict(d, expected)
