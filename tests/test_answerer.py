from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, ChunkerSettings, HashingEmbedder, Index, make_release
from qa.annotate import Annotation, annotate
from qa.answer import MODEL_PATH, AnswerModels
from qa.features import SENTENCE_FEATURES, SPAN_FEATURES, LinearModel, Question, question_type, span_features


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


def test_alternatives_when_no_year_given(embedder: HashingEmbedder) -> None:
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
    a = Assistant(Index.build(releases, embedder, ChunkerSettings()), embedder)
    ans = a.ask("Who chaired the annual cyber summit?", threshold=0.0)
    assert ans.citation is not None
    assert [c.release_id for c in ans.alternatives] and ans.alternatives[
        0
    ].release_id != ans.citation.release_id
    for c in ans.alternatives:
        assert a.index.releases[c.release_id].text[c.start : c.end]
    named = a.ask("Who chaired the annual cyber summit in 2023?", threshold=0.0)
    assert named.alternatives == ()


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


@pytest.mark.parametrize("regress", [False, True])
def test_tree_model_matches_sklearn(regress: bool) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from qa.features import TreeModel, model_from_dict

    rng = np.random.RandomState(0)
    x = rng.rand(600, 5).astype(np.float32)
    y = ((x[:, 0] > 0.5) ^ (x[:, 1] * x[:, 2] > 0.3)).astype(np.float32)
    names = ("a", "b", "c", "d", "e")
    if regress:
        est = HistGradientBoostingRegressor(max_iter=30, max_leaf_nodes=7, random_state=0).fit(x, y)
        model = TreeModel.from_sklearn(est, names, link="identity")
        want = np.clip(est.predict(x), 0, 1)
    else:
        est = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7, random_state=0).fit(x, y)
        model = TreeModel.from_sklearn(est, names)
        want = est.predict_proba(x)[:, 1]
    again = model_from_dict(json.loads(json.dumps(model.to_dict())), names)
    assert np.allclose(model.proba(x), want, atol=1e-5)
    assert np.allclose(again.proba(x), want, atol=1e-4)
