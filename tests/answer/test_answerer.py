from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, ChunkerSettings, HashingEmbedder, Index, make_release
from qa.answer.feature_answerer import MODEL_PATH, AnswerModels
from qa.answer.features import (
    SENTENCE_FEATURES,
    SPAN_FEATURES,
    LinearModel,
    Question,
    TreeModel,
    question_type,
    span_features,
    span_features_many,
)
from qa.ingest.annotate import Annotation, annotate
from qa.training.sklearn_trees import fitted_trees, tree_model


@pytest.mark.parametrize(
    ("question", "qtype"),
    [
        ("Who chaired the AMCC?", "who"),
        ("When was the meeting held?", "when"),
        ("In what year did the treaty pass?", "what_year"),
        ("Where did the ministers meet?", "where"),
        ("How many countries joined?", "how_many"),
        ("How much did Anthem pay?", "how_much"),
        ("Why did the agency act?", "why"),
        ("Which country hosted the summit?", "which"),
        ("What did the statement announce?", "what"),
        ("Name the hospital.", "other"),
    ],
)
def test_question_types(question: str, qtype: str) -> None:
    assert question_type(question) == qtype


def test_candidates_hold_short_answers() -> None:
    s = (
        "The AMCC, held at the St. Regis Singapore hotel, was chaired by Singapore’s Minister for "
        "Communications and Information Dr Yaacob Ibrahim."
    )
    ann = annotate(s)
    texts = {s[c.start : c.end] for c in ann.candidates}
    assert {"Yaacob Ibrahim", "St. Regis Singapore hotel"} <= texts
    assert Annotation.from_json(ann.to_json()) == ann
    for c in ann.candidates:
        assert s[c.start : c.end] == s[c.start : c.end].strip() and c.end > c.start


def test_span_features_shape_and_type_match() -> None:
    s = "The meeting was chaired by Dr Jane Smith in Geneva on 4 May 2021."
    ann = annotate(s)
    x = span_features(Question.parse("Who chaired the meeting?"), s, ann)
    assert x.shape == (len(ann.candidates), len(SPAN_FEATURES))
    expected = SPAN_FEATURES.index("expected")
    person = [i for i, c in enumerate(ann.candidates) if c.label == "PERSON"]
    assert person and all(x[i, expected] == 1.0 for i in person)


def _span_features_reference(q: Question, sentence_text: str, ann: Annotation) -> np.ndarray:
    """The readable per-candidate definition the vectorised ``span_features_many`` must equal."""
    from qa.answer.features import DEPS, EXPECTED, HEAD_PREPS, LABEL_GROUPS, QTYPES, label_group
    from qa.text import STOPWORDS, stem, words

    cands = ann.candidates
    out = np.zeros((len(cands), len(SPAN_FEATURES)), dtype=np.float32)
    matched = [i for i, t in enumerate(ann.tokens) if stem(t[2]) in q.stems]
    expected = EXPECTED.get(q.qtype, frozenset())
    typed = [(c.start, c.end) for c in cands if c.kind == "ent" and label_group(c) in expected]
    for row, c in enumerate(cands):
        text = sentence_text[c.start : c.end]
        c_stems = [stem(w) for w in words(text) if w not in STOPWORDS]
        n = c.tok_end - c.tok_start
        in_q = sum(1 for w in c_stems if w in q.stems)
        outside = [m for m in matched if not c.tok_start <= m < c.tok_end]
        gaps = [c.tok_start - m if m < c.tok_start else m - (c.tok_end - 1) for m in outside]
        dist = min(gaps) if gaps else (0 if matched else 30)
        group = label_group(c)
        out[row] = [
            n,
            math.log(1 + n),
            in_q / len(c_stems) if c_stems else 1.0,
            bool(c_stems) and in_q == len(c_stems),
            min(dist, 30),
            not matched,
            bool(matched) and c.tok_start > matched[0],
            sum(1 for g in gaps if g <= 3),
            any(m in outside for m in (c.tok_start - 1, c.tok_start - 2)),
            c.tok_start / max(1, len(ann.tokens)),
            stem(c.head) in q.stems,
            q.focus is not None and q.focus in c_stems,
            q.focus is not None and bool(c_stems) and c_stems[-1] == q.focus,
            any(ch.isdigit() for ch in text),
            text[:1].isupper(),
            group in expected,
            DEPS.index(c.dep if c.dep in DEPS else "other"),
            QTYPES.index(q.qtype),
            LABEL_GROUPS.index(group),
            c.kind == "ent",
            min(len(typed), 5),
            any(a < c.end and c.start < b for a, b in typed),
            HEAD_PREPS.index(c.head) if c.head in HEAD_PREPS else 0,
        ]
    return out


def test_span_features_many_equals_the_per_candidate_definition() -> None:
    sentences = [
        "The meeting was chaired by Dr Jane Smith in Geneva on 4 May 2021.",
        "Minister Yaacob Ibrahim chaired the ASEAN meeting, held at the St. Regis Singapore hotel.",
        "Yes.",
        "It costs 5² dollars, said the chair of the meeting held by ASEAN in 2017 and 2018.",
        "No question words here at all, only Paris and London.",
    ]
    anns = [annotate(s) for s in sentences]
    assert not anns[2].candidates  # a sentence without candidates in the middle of the batch
    questions = (
        "Who chaired the meeting?",
        "When was the ASEAN meeting held?",
        "What is it?",
        "How much?",
        "Which city held the meeting chaired by Smith?",
        "What kind of meeting did the chair hold?",
    )
    for question in questions:
        q = Question.parse(question)
        many = span_features_many(q, sentences, anns)
        assert len(many) == len(sentences)
        for s, a, got in zip(sentences, anns, many, strict=True):
            ref = _span_features_reference(q, s, a)
            assert np.array_equal(got, ref), (question, s)
            assert np.array_equal(span_features(q, s, a), ref)
    assert span_features_many(Question.parse("Who?"), [], []) == []


def test_followup_context_lends_words_not_type() -> None:
    q = Question.parse("And where was it held?", context="Who chaired the 2017 ASEAN conference?")
    assert q.qtype == "where" and "asean" in q.stems and q.years == {"2017"}
    assert Question.parse("What about 2023?", context="Who chaired the 2022 summit?").years == {"2023"}


def test_linear_model_round_trip() -> None:
    m = LinearModel(
        ("a", "b"), np.array([1.0, -2.0], np.float32), 0.5, np.zeros(2, np.float32), np.ones(2, np.float32)
    )
    m2 = LinearModel.from_dict(json.loads(json.dumps(m.to_dict())), ("a", "b"))
    x = np.array([[1.0, 0.25]], np.float32)
    assert np.allclose(m.proba(x), m2.proba(x)) and 0.0 < float(m.proba(x)[0]) < 1.0
    with pytest.raises(ValueError, match="retrain"):
        LinearModel.from_dict(m.to_dict(), ("a", "c"))
    # a model of fewer features still reads rows of a newer version that appends features
    older = LinearModel.from_dict(m.to_dict(), ("a", "b", "new"))
    assert np.allclose(older.proba(np.array([[1.0, 0.25, 9.0]], np.float32)), m.proba(x))


def test_shipped_model_matches_features() -> None:
    if not MODEL_PATH.exists():
        pytest.fail(f"the trained answerer model must ship at {MODEL_PATH}")
    models = AnswerModels.load(MODEL_PATH)
    assert models.sentence.features == SENTENCE_FEATURES[: len(models.sentence.features)]
    assert models.span.features == SPAN_FEATURES[: len(models.span.features)]
    assert 0.0 < models.threshold < 1.0
    assert MODEL_PATH.stat().st_size < 200_000  # KBs, not MBs


def _summits(embedder: HashingEmbedder) -> Assistant:
    releases = [
        make_release(
            f"The {n} annual cyber summit was chaired by {who} in {city}. Delegates discussed ransomware.",
            path=f"summit-{year}.md",
            title=f"Annual cyber summit {year}",
            date=f"{year}-10-01",
        )
        for n, year, who, city in [
            ("third", 2022, "Maria Lopez", "Lisbon"),
            ("fourth", 2023, "Ken Ito", "Osaka"),
        ]
    ]
    return Assistant(Index.build(releases, embedder, ChunkerSettings()), embedder)


def test_alternatives_when_no_year_given(embedder: HashingEmbedder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("qa.answer.feature_answerer.CONFIDENT", 0.0)  # every answer confident
    a = _summits(embedder)
    ans = a.ask("Who chaired the annual cyber summit?", threshold=0.0)
    assert ans.citation is not None and ans.confidence == "high"
    assert [c.release_id for c in ans.alternatives] and ans.alternatives[
        0
    ].release_id != ans.citation.release_id
    for c in ans.alternatives:
        assert a.index.releases[c.release_id].text[c.start : c.end]
    named = a.ask("Who chaired the annual cyber summit in 2023?", threshold=0.0)
    assert named.alternatives == ()


def test_a_low_confidence_answer_comes_with_the_next_best_spans(
    embedder: HashingEmbedder, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("qa.answer.feature_answerer.CONFIDENT", 1.0)  # no answer confident
    a = _summits(embedder)
    ans = a.ask("Who chaired the annual cyber summit in 2023?", threshold=0.0)
    assert ans.text is not None and ans.confidence == "low"
    assert ans.alternatives and len(ans.alternatives) <= 3
    spans = {(c.release_id, c.start) for c in ans.alternatives}
    assert (ans.citation.release_id, ans.citation.start) not in spans
    for c in ans.alternatives:
        assert a.index.releases[c.release_id].text[c.start : c.end]


def test_answer_span_lies_in_its_sentence(tmp_path: Path, embedder: HashingEmbedder) -> None:
    rel = make_release(
        "The hospital paid $3 million to settle. The breach exposed 200,000 records.",
        path="h.md",
        title="Fine",
    )
    a = Assistant(Index.build([rel], embedder, ChunkerSettings()), embedder)
    for q in ["How much did the hospital pay?", "How many records were exposed?"]:
        ans = a.ask(q, threshold=0.0)
        c = ans.citation
        assert c is not None and ans.sentence_start is not None and ans.sentence_end is not None
        assert ans.sentence_start <= c.start <= c.end <= ans.sentence_end
        assert rel.text[c.start : c.end] == ans.text


def _logits_by_walking(model: TreeModel, x: np.ndarray) -> np.ndarray:
    """The plain tree walk, every (row, tree) pair down at once: what the bitmask scorer must equal."""
    x = x[:, : len(model.features)]
    n, (t, w) = len(x), model.feature.shape
    offset = (np.arange(t, dtype=np.int64) * w)[:, None]
    feature, threshold, value = model.feature.ravel(), model.threshold.ravel(), model.value.ravel()
    left, right, leaf = (model.left + offset).ravel(), (model.right + offset).ravel(), model.leaf.ravel()
    node = np.tile(offset.ravel(), n)
    rows = np.repeat(np.arange(n), t)
    active = np.arange(n * t)
    while len(active):
        nd = node[active]
        inner = ~leaf[nd]
        active, nd = active[inner], nd[inner]
        go_left = x[rows[active], feature[nd]] <= threshold[nd]
        node[active] = np.where(go_left, left[nd], right[nd])
    return model.baseline + value[node].reshape(n, t).sum(axis=1)


def test_a_changed_sklearn_fails_loudly() -> None:
    class Changed:  # what a scikit-learn that renamed its private attributes would give
        pass

    with pytest.raises(RuntimeError, match="scikit-learn .* no longer exposes"):
        fitted_trees(Changed())


@pytest.mark.parametrize("leaves", [7, 31, 60])  # the bitmask scorer's uint16, uint32 and uint64 masks
@pytest.mark.parametrize("regress", [False, True])
def test_tree_model_matches_sklearn(regress: bool, leaves: int) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from qa.answer.features import model_from_dict

    rng = np.random.RandomState(0)
    x = rng.rand(2000, 5).astype(np.float32)
    y = ((x[:, 0] > 0.5) ^ (x[:, 1] * x[:, 2] > 0.3)).astype(np.float32)
    names = ("a", "b", "c", "d", "e")
    if regress:
        est = HistGradientBoostingRegressor(max_iter=30, max_leaf_nodes=leaves, random_state=0).fit(x, y)
        model = tree_model(est, names, link="identity")
        want = np.clip(est.predict(x), 0, 1)
    else:
        est = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=leaves, random_state=0).fit(x, y)
        model = tree_model(est, names)
        want = est.predict_proba(x)[:, 1]
    again = model_from_dict(json.loads(json.dumps(model.to_dict())), names)
    assert max(len(t) for t in fitted_trees(est)[1]) > (leaves - 1) * 2  # as big as asked
    assert np.allclose(model.proba(x), want, atol=1e-5)
    assert np.allclose(again.proba(x), want, atol=1e-4)
    # the bitmask scorer reaches the same leaves as walking the trees
    assert np.allclose(model.logits(x), _logits_by_walking(model, x), rtol=0, atol=1e-5)
