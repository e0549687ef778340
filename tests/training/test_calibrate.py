"""The decision rule the calibration ships: decline at most 10% of answerable questions like
press-tune's, and no more than it takes to decline 70% of unanswerable ones with confidence."""

from __future__ import annotations

import numpy as np
import pytest

from qa.answer.neural import CALIBRATION_FEATURES, Calibration
from qa.training.calibrate import (
    Question,
    best_of,
    decide,
    declinable_share,
    fit,
    required_declines,
    unanswerable_floor,
)

F = len(CALIBRATION_FEATURES)


def _question(source: str, margin: float, right: bool, answerable: bool = True) -> Question:
    x = np.zeros((2, F))
    x[0, 0], x[1, 0] = margin, margin - 3.0  # the first candidate has the higher margin
    return Question(source, answerable, x, np.array([right, False]), np.ones(2))


def _margin_only() -> Calibration:
    return Calibration((1.0,) + (0.0,) * (F - 1), 0.0, 0.5)


def test_the_threshold_declines_a_tenth_at_most_with_confidence() -> None:
    rng = np.random.default_rng(0)
    qs = [_question("press", float(m), bool(m > 0)) for m in rng.normal(1.0, 2.0, 200)]
    qs += [_question("press", float(m), False, answerable=False) for m in rng.normal(-1.5, 1.0, 40)]
    for confidence in (0.5, 0.9):
        d = decide(qs, _margin_only(), confidence=confidence)
        share = declinable_share(200, 0.10, confidence)
        assert 0.05 < share < 0.10
        # the smoothed quantile lands within an order statistic of the share
        assert share - 1 / 200 <= d.answerable_declined <= share + 1 / 200
        assert 0.0 < d.unanswerable_declined <= 1.0 and d.confident >= d.threshold
        assert 0.0 <= d.ece <= 1.0
    # more confidence declines fewer, a looser target more
    assert decide(qs, _margin_only(), confidence=0.9).threshold < decide(qs, _margin_only()).threshold
    assert decide(qs, _margin_only(), max_declined=0.2).threshold > decide(qs, _margin_only()).threshold


def test_the_declinable_share_is_the_clopper_pearson_bound() -> None:
    from scipy.stats import beta

    for n in (40, 328, 5000):
        k = round(declinable_share(n, 0.10, 0.90) * n)
        assert beta.ppf(0.90, k + 1, n - k) <= 0.10 < beta.ppf(0.90, k + 2, n - k - 1)
    # more questions, a tighter bound: the share allowed grows toward the target
    assert (
        declinable_share(40, 0.1, 0.9)
        < declinable_share(328, 0.1, 0.9)
        < declinable_share(5000, 0.1, 0.9)
        < 0.1
    )
    assert declinable_share(10, 0.1, 0.9) == 0.0  # too few to decline any with confidence
    with pytest.raises(ValueError, match="1.5"):
        declinable_share(100, 1.5, 0.9)


def test_the_required_declines_are_the_clopper_pearson_lower_bound() -> None:
    from scipy.stats import beta

    for n in (19, 249, 2000):
        k = required_declines(n, 0.70, 0.95)
        assert k is not None
        assert beta.ppf(0.05, k, n - k + 1) >= 0.70 > beta.ppf(0.05, k - 1, n - k + 2)
    # more questions, a tighter bound: the share needed falls toward the target
    shares = [required_declines(n, 0.7, 0.95) / n for n in (19, 249, 2000)]  # type: ignore[operator]
    assert shares[0] > shares[1] > shares[2] > 0.70
    assert required_declines(3, 0.7, 0.95) is None  # even all three cannot show 70% with confidence
    with pytest.raises(ValueError, match="1.2"):
        required_declines(100, 1.2, 0.95)
    with pytest.raises(ValueError, match="0.0"):
        required_declines(100, 0.7, 0.0)


def test_the_floor_declines_just_enough_unanswerable_scores() -> None:
    scores = list(np.linspace(0.01, 0.99, 249))
    floor = unanswerable_floor(scores, 0.70, 0.95)
    k = required_declines(249, 0.70, 0.95)
    assert floor is not None and k is not None
    assert sum(p < floor for p in scores) == k  # enough, and not one more
    assert unanswerable_floor(scores, 0.0, 0.95) is None  # 0 turns the floor off
    assert unanswerable_floor([0.2, 0.3, 0.4], 0.70, 0.95) is None  # too few to show it


def _two_kinds(unanswerable_mean: float) -> list[Question]:
    rng = np.random.default_rng(1)
    qs = [_question("press", float(m), bool(m > 0)) for m in rng.normal(1.0, 2.0, 300)]
    qs += [
        _question("press", float(m), False, answerable=False) for m in rng.normal(unanswerable_mean, 1.0, 250)
    ]
    return qs


def test_a_reader_that_tells_unanswerable_questions_apart_answers_more() -> None:
    qs = _two_kinds(-6.0)  # unanswerable questions score far below the answerable ones
    ten = decide(qs, _margin_only(), min_unanswerable_declined=0.0)
    both = decide(qs, _margin_only())
    assert ten.limited_by == "answerable" and both.limited_by == "unanswerable"
    assert both.threshold < ten.threshold
    assert both.answerable_declined < ten.answerable_declined <= 0.10
    k = required_declines(250, 0.70, 0.95)
    assert k is not None and both.unanswerable_declined == pytest.approx(k / 250)
    assert both.answered_right >= ten.answered_right


def test_a_reader_that_confuses_them_keeps_the_answerable_bound() -> None:
    qs = _two_kinds(0.5)  # unanswerable questions score like answerable ones
    ten = decide(qs, _margin_only(), min_unanswerable_declined=0.0)
    both = decide(qs, _margin_only())
    assert both.limited_by == "answerable"
    assert both.threshold == ten.threshold and both.unanswerable_declined < 0.70


def test_squad_questions_do_not_move_the_threshold() -> None:
    press = [_question("press", float(m), True) for m in np.linspace(-2, 4, 50)]
    squad = [_question("squad", -5.0, False, answerable=False) for _ in range(500)]
    assert decide(press, _margin_only()).threshold == decide(press + squad, _margin_only()).threshold


def test_the_fit_learns_which_candidates_are_right() -> None:
    qs = [_question(s, float(m), bool(m > 1.0)) for s in ("press", "squad") for m in np.linspace(-3, 5, 80)]
    w, b = fit(qs, ["margin", "log_prob"])
    assert w[0] > 0  # a larger margin: more likely right
    cal = Calibration(w, b, 0.5, ("margin", "log_prob"))
    assert best_of(_question("press", 4.0, True), cal)[0] > best_of(_question("press", -2.0, True), cal)[0]


def test_no_answerable_press_question_is_an_error() -> None:
    with pytest.raises(ValueError, match="answerable press"):
        decide([_question("squad", 1.0, True)], _margin_only())


def test_platt_folding_keeps_the_order_and_fixes_overconfidence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qa.training.calibrate import fold_platt, held_out_ece, load_questions, save_questions

    rng = np.random.default_rng(1)
    # an overconfident scorer: right only 30% of the time whatever the margin says
    qs = [_question("press", float(m), bool(rng.random() < 0.3)) for m in rng.normal(3.0, 1.0, 300)]
    cal = _margin_only()
    folded = fold_platt(qs, cal)
    before, after = decide(qs, cal), decide(qs, folded)
    assert after.ece < before.ece and after.ece < 0.08
    assert after.answerable_declined == before.answerable_declined  # same order, same decisions
    assert 0.0 <= held_out_ece(qs, cal) < before.ece
    save_questions(qs, tmp_path / "c.npz")
    back = load_questions(tmp_path / "c.npz")
    assert len(back) == len(qs) and all(
        a.source == b.source and np.array_equal(a.x, b.x) and np.array_equal(a.right, b.right)
        for a, b in zip(qs, back, strict=True)
    )
    # one array in memory, the questions views of it (a fresh copy per question ran a 5 MB file of
    # 40,000 candidates out of 24 GiB)
    assert len({id(q.x.base) for q in back}) == 1 and back[0].x.base is not None
    old = dict(np.load(tmp_path / "c.npz"))
    old["x"] = old["x"][:, :-1]  # collected before a feature was added
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(ValueError, match="collect them again"):
        load_questions(tmp_path / "old.npz")


def test_the_confident_level_is_where_answers_scored_alike_are_mostly_right() -> None:
    from qa.training.calibrate import confident_level

    # right half the time below 0.6, always above: 85% right overall, yet the low ones are not
    answers = [(0.3 + i / 100, i % 2 == 0) for i in range(30)] + [(0.6 + i / 1000, True) for i in range(170)]
    c = confident_level(answers, 0.8, 20)
    assert 0.59 <= c <= 0.62
    assert sum(ok for p, ok in answers if p >= c) / sum(p >= c for p, _ in answers) >= 0.95
    # all right: every answer is confident; all wrong: none
    assert confident_level([(p, True) for p, _ in answers], 0.8, 20) == 0.3
    assert confident_level([(p, False) for p, _ in answers], 0.8, 20) == 1.0
    assert confident_level([], 0.8, 20) == 1.0


def _offset_questions(n: int, seed: int) -> list[Question]:
    """Three candidates each, the right one the highest ``retrieval`` of its question, every
    question's retrieval shifted by its own large offset: only the comparison within a question
    tells which is right, which a per-candidate fit cannot learn and a selection model can."""
    rng = np.random.default_rng(seed)
    m, r = CALIBRATION_FEATURES.index("margin"), CALIBRATION_FEATURES.index("retrieval")
    out = []
    for _ in range(n):
        x = np.zeros((3, F))
        x[:, m] = rng.normal(0.0, 1.0, 3)  # noise
        x[:, r] = rng.normal(0.0, 10.0) + np.array([1.0, 0.0, -1.0]) + rng.normal(0.0, 0.2, 3)
        order = rng.permutation(3)
        right = np.array([True, False, False])
        out.append(Question("press", True, x[order], right[order], np.ones(3)))
    return out


def test_a_selection_model_picks_what_a_per_candidate_fit_cannot() -> None:
    from qa.training.calibrate import fit_select

    train, test = _offset_questions(300, 0), _offset_questions(300, 1)
    feats = ("margin", "retrieval")
    w, b = fit(train, feats)
    select = fit_select(train, feats)
    assert select[1] > 0 and abs(select[1]) > 5 * abs(select[0])
    plain = Calibration(w, b, 0.5, feats)
    chosen = Calibration(w, b, 0.5, feats, select_features=feats, select=select)
    right_plain = np.mean([best_of(q, plain)[1] for q in test])
    right_chosen = np.mean([best_of(q, chosen)[1] for q in test])
    assert right_chosen > 0.9 and right_plain < 0.6
    for q in test[:20]:
        p, k = chosen.proba(q.x), int(np.argmax(q.x[:, CALIBRATION_FEATURES.index("retrieval")]))
        # the pick keeps its own probability; the others fall below it
        assert int(np.argmax(p)) == k and p[k] == pytest.approx(plain.proba(q.x[k : k + 1])[0])
    with pytest.raises(ValueError, match="no question has both"):
        fit_select([_question("press", 1.0, False)] * 3, feats)  # none right


def test_a_selection_model_is_saved_and_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cal = Calibration(
        (1.0,), 0.0, 0.4, ("margin",), select_features=("margin", "retrieval"), select=(0.5, 2.0)
    )
    cal.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json") == cal
    plain = Calibration((1.0,), 0.0, 0.4, ("margin",))
    plain.save(tmp_path / "plain.json")
    assert Calibration.load(tmp_path / "plain.json").select == ()
    assert cal.uses("retrieval") and not plain.uses("retrieval")
    with pytest.raises(ValueError, match="1 select weights for 2 features"):
        Calibration((1.0,), 0.0, 0.4, ("margin",), select_features=("margin", "retrieval"), select=(0.5,))
    with pytest.raises(ValueError, match="unknown calibration features"):
        Calibration((1.0,), 0.0, 0.4, ("margin",), select_features=("nope",), select=(0.5,))
