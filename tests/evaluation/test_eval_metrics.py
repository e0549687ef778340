"""Metric functions of the eval harness against cases worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qa.evaluation import metrics as m
from qa.evaluation.compare import compare, format_deltas
from qa.evaluation.data import EvalItem, load_jsonl, load_squad, sample, wh_type
from qa.evaluation.runner import Prediction, gold_ranks, holds_gold
from qa.evaluation.scoring import score_predictions, system_metrics
from qa.types import Release

# ---------------------------------------------------------------- SQuAD normalization


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Eiffel Tower", "eiffel tower"),  # article and case
        ("a cat and an owl", "cat and owl"),  # every article, wherever it is
        ("theatre", "theatre"),  # an article inside a word stays
        ("Dr. Yaacob   Ibrahim\n", "dr yaacob ibrahim"),  # punctuation and whitespace
        ("$16 million.", "16 million"),
        ("U.S.-led", "usled"),  # punctuation is dropped, not turned into a space
        ("  ", ""),
        ("“Quoted”", "“quoted”"),  # only ASCII punctuation is dropped, as in SQuAD's script
        ("Thé end", "thé end"),
    ],
)
def test_normalize_answer(raw: str, normalized: str) -> None:
    assert m.normalize_answer(raw) == normalized


def test_exact_match_ignores_case_articles_punctuation() -> None:
    assert m.exact_match("the St. Regis Singapore hotel", "St Regis Singapore Hotel") == 1.0
    assert m.exact_match("St. Regis", "St. Regis Singapore") == 0.0


def test_token_f1_by_hand() -> None:
    # pred tokens: [st, regis, singapore]; gold: [st, regis, singapore, hotel]
    # precision 3/3, recall 3/4 -> F1 = 2 * 1 * 0.75 / 1.75
    assert m.token_f1("St. Regis Singapore", "the St. Regis Singapore hotel") == pytest.approx(1.5 / 1.75)
    assert m.token_f1("Paris", "London") == 0.0
    # repeated tokens count once per match: pred [a1 a1 b], gold [a1 b b] -> 2 common
    assert m.token_f1("x x y", "x y y") == pytest.approx(2 / 3)


def test_token_f1_empty_sides() -> None:
    assert m.token_f1("", "") == 1.0
    assert m.token_f1("the", "") == 1.0  # both normalize to nothing
    assert m.token_f1("", "Paris") == 0.0
    assert m.token_f1("Paris", "a") == 0.0


def test_best_over_golds_and_squad_scores() -> None:
    golds = ["Dr Yaacob Ibrahim", "Yaacob Ibrahim"]
    assert m.best_over_golds("Yaacob Ibrahim", golds, m.exact_match) == 1.0
    assert m.squad_scores("Ibrahim", golds) == (0.0, pytest.approx(2 / 3))
    assert m.squad_scores(None, golds) == (0.0, 0.0)
    assert m.squad_scores(None, []) == (1.0, 1.0)  # declining an unanswerable question is right
    assert m.squad_scores("anything", []) == (0.0, 0.0)


def test_holds_answer_on_whole_tokens() -> None:
    assert m.holds_answer("It was chaired by Dr Yaacob Ibrahim.", ["Yaacob Ibrahim"])
    assert not m.holds_answer("In 19730 nothing happened", ["1973"])
    assert not m.holds_answer(None, ["x"])
    assert not m.holds_answer("anything", [])


# ---------------------------------------------------------------- ranking


def test_recall_and_mrr_by_hand() -> None:
    ranks = [1, 3, None, 2]
    assert m.recall_at(ranks, 1) == 0.25
    assert m.recall_at(ranks, 2) == 0.5
    assert m.recall_at(ranks, 5) == 0.75
    assert m.mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert m.recall_at([], 5) == 0.0
    assert m.mean_reciprocal_rank([]) == 0.0


def _release(text: str, rid: str = "r1") -> Release:
    return Release(id=rid, text=text, title="t", path=f"{rid}.md")


def test_gold_ranks_respect_the_paragraph() -> None:
    text = "In 1973 oil rose.\n\nThe crisis of 1973 ended later."
    rel = _release(text)
    second = text.index("The crisis")
    item = EvalItem("q", "When?", ("1973",), "r1", span=(second, len(text)))
    # passage 1 is the first paragraph (holds "1973" but outside the gold paragraph),
    # passage 2 is another release, passage 3 the gold paragraph
    passages = [("r1", 0, 17), ("r2", 0, 10), ("r1", second, len(text))]
    assert gold_ranks(item, passages, {"r1": rel, "r2": _release("x", "r2")}) == (3, 1)
    assert not holds_gold(item, rel, 0, 17)
    assert holds_gold(item, rel, 0, len(text))


def test_gold_ranks_for_unanswerable_are_none() -> None:
    item = EvalItem("q", "Who?", (), None)
    assert gold_ranks(item, [("r1", 0, 5)], {"r1": _release("hello")}) == (None, None)


# ---------------------------------------------------------------- separation and calibration


def test_auc_by_hand() -> None:
    assert m.auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert m.auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    # pairs (pos, neg): (0.5, 0.5) tie = 0.5, (0.5, 0.1) = 1, (0.9, 0.5) = 1, (0.9, 0.1) = 1 -> 3.5 / 4
    assert m.auc([0.5, 0.9, 0.5, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert m.auc([0.3, 0.4], [True, True]) is None


def test_reliability_bins_and_ece_by_hand() -> None:
    scores = [0.05, 0.15, 0.95, 0.95, 1.0, 1.7]  # 1.0 and 1.7 (clipped) land in the last bin
    correct = [False, True, True, True, False, True]
    bins = m.reliability_bins(scores, correct, n_bins=10)
    assert [b.count for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 4]
    last = bins[-1]
    assert last.mean_score == pytest.approx((0.95 + 0.95 + 1.0 + 1.0) / 4)
    assert last.accuracy == 0.75
    # |0 - 0.05| * 1 + |1 - 0.15| * 1 + |0.75 - 0.975| * 4, over 6
    expected = (0.05 + 0.85 + 0.225 * 4) / 6
    assert m.expected_calibration_error(bins) == pytest.approx(expected)
    assert m.expected_calibration_error(m.reliability_bins([], [])) == 0.0


def test_perfectly_calibrated_scores_have_zero_ece() -> None:
    scores = [0.25] * 4 + [0.75] * 4
    correct = [True, False, False, False, True, True, True, False]
    assert m.expected_calibration_error(m.reliability_bins(scores, correct)) == pytest.approx(0.0)


# ---------------------------------------------------------------- abstention


def test_operating_point_by_hand() -> None:
    # q1 answerable (F1 1 if answered), q2 answerable (F1 0.5), q3 and q4 unanswerable
    scores = [0.9, 0.4, 0.6, 0.2]
    em = [1.0, 0.0, 0.0, 0.0]
    f1 = [1.0, 0.5, 0.0, 0.0]
    answerable = [True, True, False, False]
    p = m.operating_point(0.5, scores, em, f1, answerable)
    # answered: q1 (1), q3 (wrong, 0); declined: q2 (0), q4 (right, 1)
    assert p.f1 == pytest.approx(0.5)
    assert p.em == pytest.approx(0.5)
    assert p.has_ans_f1 == pytest.approx(0.5)
    assert p.no_ans_accuracy == pytest.approx(0.5)
    assert p.answer_rate == pytest.approx(0.5)


def test_threshold_sweep_finds_the_best_cut() -> None:
    scores = [0.9, 0.4, 0.6, 0.2]
    em = [1.0, 0.0, 0.0, 0.0]
    f1 = [1.0, 0.5, 0.0, 0.0]
    answerable = [True, True, False, False]
    sweep = m.threshold_sweep(scores, em, f1, answerable)
    # the cuts: every score (0.2 answers all), then just above 0.9 (answers nothing)
    assert [round(p.threshold, 6) for p in sweep] == [0.2, 0.4, 0.6, 0.9, 0.9]
    assert sweep[-1].threshold > 0.9 and sweep[-1].answer_rate == 0.0
    by_t = {round(p.threshold, 2): p.f1 for p in sweep[:-1]}
    assert by_t[0.2] == pytest.approx((1 + 0.5) / 4)  # answer all: both unanswerable wrong
    assert by_t[0.4] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert by_t[0.9] == pytest.approx((1 + 0 + 1 + 1) / 4)  # only q1 answered
    assert sweep[-1].f1 == pytest.approx(0.5)  # answer nothing: both unanswerable right
    best = m.best_operating_point(sweep)
    assert best is not None and best.threshold == pytest.approx(0.9) and best.f1 == pytest.approx(0.75)
    assert m.threshold_sweep([], [], [], []) == ()


def test_no_unanswerable_means_no_noans_accuracy() -> None:
    p = m.operating_point(0.0, [0.3], [1.0], [1.0], [True])
    assert p.no_ans_accuracy is None and p.f1 == 1.0


def test_percentile() -> None:
    assert m.percentile([1, 2, 3, 4, 5], 50) == 3
    assert m.percentile([10, 20], 95) == pytest.approx(19.5)
    assert m.percentile([], 50) == 0.0


# ---------------------------------------------------------------- question types and data


@pytest.mark.parametrize(
    ("question", "qtype"),
    [
        ("What did the ministers agree?", "what"),
        ("The crisis began in what month?", "what"),
        ("How many countries joined?", "how many"),
        ("How much did Anthem pay?", "how much"),
        ("How did it end?", "how"),
        ("Whose statement was it?", "who"),
        ("Name the hospital.", "other"),
    ],
)
def test_wh_type(question: str, qtype: str) -> None:
    assert wh_type(question) == qtype


SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Oil_crisis",
            "paragraphs": [
                {
                    "context": "  The crisis began in October 1973.  ",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "When did the crisis begin?",
                            "answers": [{"text": "October 1973", "answer_start": 23}],
                            "is_impossible": False,
                        }
                    ],
                },
                {
                    "context": "Prices\r\nquadrupled by 1974.",
                    "qas": [
                        {"id": "q2", "question": "Who set prices?", "answers": [], "is_impossible": True},
                        {
                            "id": "q3",
                            "question": "By when did prices quadruple?",
                            "answers": [{"text": "1974", "answer_start": 23}],
                        },
                    ],
                },
            ],
        }
    ],
}


def test_squad_loader_tracks_paragraph_offsets(tmp_path: Path) -> None:
    f = tmp_path / "mini.json"
    f.write_text(json.dumps(SQUAD), encoding="utf-8")
    ds = load_squad(f)
    (rel,) = ds.releases
    assert rel.title == "Oil crisis"
    assert rel.text == "The crisis began in October 1973.\n\nPrices\nquadrupled by 1974."
    q1, q2, q3 = ds.items
    assert rel.text[q1.span[0] : q1.span[1]] == "The crisis began in October 1973."
    assert rel.text[q3.span[0] : q3.span[1]] == "Prices\nquadrupled by 1974."
    assert q1.answers == ("October 1973",) and q1.answerable and q1.qtype == "when"
    assert not q2.answerable and q2.release_id == rel.id
    assert any(not i.answerable for i in ds.items)


def test_jsonl_loader_resolves_basenames_and_histories(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "amcc.md").write_text(
        "---\ntitle: AMCC\n---\nThe AMCC was chaired by Dr Yaacob Ibrahim. It was held at the St. Regis.\n",
        encoding="utf-8",
    )
    rows = [
        {
            "id": "a",
            "question": "Who chaired the AMCC?",
            "answers": ["Dr Yaacob Ibrahim"],
            "release": "amcc.md",
            "type": "who",
            "followup_of": None,
        },
        {
            "id": "b",
            "question": "Where was it held?",
            "answers": ["the St. Regis"],
            "release": "amcc.md",
            "type": "where",
            "followup_of": "a",
        },
        {
            "id": "c",
            "question": "And its budget?",
            "answers": [],
            "release": None,
            "type": "unanswerable",
            "followup_of": "b",
        },
    ]
    f = tmp_path / "set.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ds = load_jsonl(f, [corpus])
    a, b, c = ds.items
    assert a.release_id == ds.releases[0].id == b.release_id and a.span is None
    assert [t.answer for t in b.history] == ["Dr Yaacob Ibrahim"]
    assert [t.question for t in c.history] == ["Who chaired the AMCC?", "Where was it held?"]
    assert [t.answer for t in c.history] == ["Dr Yaacob Ibrahim", "the St. Regis"]
    assert c.release_id is None and not c.answerable
    assert len(sample(ds, 2).items) == 2 and sample(ds, 2) == sample(ds, 2)
    assert sample(ds, None) is ds


def test_jsonl_loader_refuses_unknown_release_and_forward_followup(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "x.txt").write_text("Some release text.\n", encoding="utf-8")
    f = tmp_path / "bad.jsonl"
    f.write_text(
        json.dumps({"id": "a", "question": "q", "answers": ["x"], "release": "nope.md"}), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="not in the corpus"):
        load_jsonl(f, [corpus])
    f.write_text(json.dumps({"id": "a", "question": "q", "answers": [], "release": None, "followup_of": "z"}))
    with pytest.raises(ValueError, match="earlier question"):
        load_jsonl(f, [corpus])


# ---------------------------------------------------------------- scoring, report and compare


def _toy_set(tmp_path: Path):  # type: ignore[no-untyped-def]
    f = tmp_path / "mini.json"
    f.write_text(json.dumps(SQUAD), encoding="utf-8")
    return load_squad(f)


def test_system_metrics_by_hand(tmp_path: Path) -> None:
    ds = _toy_set(tmp_path)
    rid = ds.releases[0].id
    preds = (
        Prediction("q1", "October 1973", "The crisis began in October 1973.", 0.9, False, rid, 20, 32, 1, 1),
        Prediction("q2", "Prices", "Prices", 0.2, True, rid, 0, 6),
        Prediction("q3", "quadrupled", "quadrupled by 1974.", 0.4, True, rid, 0, 5, None, 1),
    )
    from qa.evaluation.runner import SystemRun

    sm = system_metrics(ds, SystemRun("toy", "toy", preds, threshold=0.5))
    assert sm.answer is not None and sm.answer.n == 2
    assert sm.answer.em == 0.5  # q1 right, q3 wrong
    assert sm.answer.sentence_holds_gold == 1.0  # both quoted sentences hold the gold
    assert (
        sm.retrieval is not None
        and sm.retrieval.recall_at_1 == 0.5
        and sm.retrieval.release_recall_at_1 == 1.0
    )
    own = sm.abstention.own if sm.abstention else None
    assert own is not None and own.threshold == 0.5
    assert own.f1 == pytest.approx((1 + 1 + 0) / 3)  # q1 right, q2 declined (right), q3 declined
    assert own.no_ans_accuracy == 1.0
    scored = score_predictions(ds, preds)
    assert [s.correct for s in scored] == [True, False, False]


def test_compare_prints_deltas(tmp_path: Path) -> None:
    def report(f1: float) -> dict[str, object]:
        return {
            "datasets": [
                {
                    "name": "toy",
                    "gold_context": False,
                    "systems": [
                        {
                            "system": "pipeline",
                            "description": "",
                            "error": None,
                            "answer": {"n": 3, "em": 0.5, "f1": f1},
                            "calibration": {"ece": 0.1, "bins": []},
                            "latency": [{"stage": "total", "p50_ms": 10.0, "p95_ms": 20.0, "mean_ms": 12.0}],
                        }
                    ],
                }
            ]
        }

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text(json.dumps(report(0.6)))
    (tmp_path / "b.json").write_text(json.dumps(report(0.7)))
    deltas = {d.metric: d for d in compare(tmp_path / "a", tmp_path / "b.json")}
    assert deltas["answer.f1"].delta == pytest.approx(0.1) and deltas["answer.f1"].better
    assert deltas["answer.em"].delta == 0.0
    assert "latency.total.p95_ms" in deltas and "answer.n" not in deltas
    text = format_deltas(list(deltas.values()))
    assert "answer.f1" in text and "answer.em" not in text
    assert math.isclose(float(text.split("answer.f1")[1].split()[-1]), 0.1)


def test_by_turn_splits_followups() -> None:
    from qa.evaluation.data import EvalSet, Turn
    from qa.evaluation.scoring import by_turn

    first = EvalItem("a", "Who chaired it?", ("Ann",), "r1")
    follow = EvalItem(
        "b", "And where?", ("Oslo",), "r1", followup_of="a", history=(Turn("Who chaired it?", "Ann"),)
    )
    ds = EvalSet("toy", "jsonl", (_release("Ann met in Oslo."),), (first, follow))
    preds = (
        Prediction("a", "Ann", "Ann met in Oslo.", 0.9, False, "r1"),
        Prediction("b", "Ann", "Ann met.", 0.8, False),
    )
    turns = {t.qtype: t for t in by_turn(score_predictions(ds, preds), retrieval=False)}
    assert turns["first question"].f1 == 1.0 and turns["follow-up"].f1 == 0.0
    assert by_turn(score_predictions(ds, preds[:1]), retrieval=False) == ()


def test_as_users_see_it_counts_a_decline_as_a_miss() -> None:
    from qa.evaluation.data import EvalItem
    from qa.evaluation.runner import Prediction
    from qa.evaluation.scoring import ScoredPrediction, as_users_see

    def row(answerable: bool, declined: bool, f1: float, holds: bool, cites: bool) -> ScoredPrediction:
        item = EvalItem("q", "Who?", ("Ann",) if answerable else (), "r" if answerable else None)
        pred = Prediction(
            item_id="q",
            text=None if declined else "Ann",
            sentence=None,
            score=0.5,
            declined=declined,
            release_id="r",
            start=0,
            end=3,
            passage_rank=0,
            release_rank=0,
            resolved_question=None,
            stages=(),
        )
        return ScoredPrediction(item, pred, f1, f1, holds, holds, cites)

    rows = [
        row(True, False, 1.0, True, True),  # answered right
        row(True, True, 1.0, True, True),  # the best guess was right, but it declined: a miss
        row(True, False, 0.5, False, False),  # answered wrong, from another release
        row(True, False, 1.0, True, True),
        row(False, True, 0.0, False, False),  # unanswerable, declined
        row(False, False, 0.0, False, False),  # unanswerable, answered
    ]
    u = as_users_see(rows)
    assert u is not None and u.n_answerable == 4
    assert u.f1 == pytest.approx((1.0 + 0.0 + 0.5 + 1.0) / 4)
    assert u.quote_holds_gold == pytest.approx(0.5) and u.right_release == pytest.approx(0.5)
    assert u.answerable_declined == pytest.approx(0.25) and u.unanswerable_declined == pytest.approx(0.5)
    only_unanswerable = as_users_see(rows[4:])  # a held-out set of unanswerable questions
    assert only_unanswerable is not None and only_unanswerable.n_answerable == 0
    assert only_unanswerable.f1 is None and only_unanswerable.answerable_declined is None
    assert only_unanswerable.unanswerable_declined == pytest.approx(0.5)
    assert as_users_see([]) is None
