"""The press QA data written for this project: every row checked against what the library reads."""

from __future__ import annotations

from collections import Counter

import pytest

from evals import press_data as pd
from tests.conftest import SHARED, need_shared


def test_every_row_holds_on_the_text_the_library_reads() -> None:
    need_shared(SHARED / "corpus" / "wh-briefings")
    problems = [p for f in pd.dataset_files() for p in pd.check_rows(pd.read_rows(f), f.name)]
    assert not problems, "\n".join(map(str, problems[:20]))


def test_the_data_has_the_promised_shape() -> None:
    train, tune, _ = (pd.read_rows(f) for f in pd.dataset_files())
    assert len(train) >= 900 and len(tune) >= 300
    rows = train + tune
    assert len({r["near"] for r in rows}) >= 400
    kinds = Counter(r["type"] for r in rows)
    assert set(kinds) == set(pd.TYPES)
    assert kinds["unanswerable"] >= 0.15 * len(rows)
    assert sum(r["followup_of"] is not None for r in rows) >= 0.10 * len(rows)
    # split by release: no release, and no chain, in both
    assert not {r["near"] for r in train} & {r["near"] for r in tune}
    for part in (train, tune):
        ids = {r["id"] for r in part}
        assert all(r["followup_of"] in ids for r in part if r["followup_of"] is not None)
    # written on other releases than the eval's distractors
    distractors = set(pd.DISTRACTORS.read_text().split())
    assert len(distractors) == 2000 and not distractors & {r["near"] for r in rows}


def test_the_checker_catches_bad_rows() -> None:
    need_shared(SHARED / "corpus" / "wh-briefings")
    good = pd.read_rows(pd.dataset_files()[0])
    row = next(r for r in good if r["answers"] and r["followup_of"] is None)
    bad = [
        {**row, "answers": [row["answers"][0] + " not in the text"]},
        {**row, "id": "x2", "evidence": row["evidence"].replace(" ", "  ", 1)},
        {**row, "id": "x3", "followup_of": "nowhere"},
        {**row, "id": "x4", "answers": [], "type": "unanswerable"},
    ]
    problems = pd.check_rows(bad, "bad")
    assert {p.where for p in problems} == {"bad:1", "bad:2", "bad:3", "bad:4"}


def test_the_split_rule_holds_for_every_row_and_keeps_round_4_in_train() -> None:
    train, tune, out = (pd.read_rows(f) for f in pd.dataset_files())
    assert all(pd.held_out(r["id"]) for r in out)
    assert not [r["id"] for r in train + tune if pd.held_out(r["id"])]
    roots = pd.root_near(train + tune)
    assert not [r["id"] for r in train if pd.goes_to_tune(r["id"], roots[r["id"]])]
    assert not [r["id"] for r in tune if not pd.goes_to_tune(r["id"], roots[r["id"]])]
    near_tune = next(roots[r["id"]] for r in tune)  # a release the hash sends to press-tune
    assert pd.goes_to_tune("pq18-001", near_tune) and not pd.goes_to_tune("pq19-001", near_tune)
    assert pd.part_of("pq21-040") == 21
    with pytest.raises(ValueError, match="x-1"):
        pd.part_of("x-1")


def test_the_tuning_corpus_is_rounds_1_to_3_of_press_train() -> None:
    train, tune, _ = (pd.read_rows(f) for f in pd.dataset_files())
    listed = (pd.DATASETS / "press-tune-distractors.txt").read_text().split()
    assert listed == sorted({r["near"] for r in train if pd.part_of(r["id"]) < pd.TRAIN_ONLY_FROM})
    assert len(listed) == 977 and not set(listed) & {r["near"] for r in tune}


def test_the_held_out_unanswerable_questions_ask_of_press_tunes_releases() -> None:
    """Round 7: unanswerable questions, one per press-tune release, none asked before there, so
    the tuning corpus answers for them and nothing was fitted on them."""
    _, tune, out = (pd.read_rows(f) for f in pd.dataset_files())
    assert len(out) >= 300 and len({r["near"] for r in out}) == len(out)
    assert all(r["type"] == "unanswerable" and r["followup_of"] is None for r in out)
    assert {r["near"] for r in out} <= {r["near"] for r in tune}
    asked = {" ".join(r["question"].lower().split()) for r in tune}
    assert not [r["id"] for r in out if " ".join(r["question"].lower().split()) in asked]
