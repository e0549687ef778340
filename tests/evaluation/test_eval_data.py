"""The eval datasets as the harness reads them: press-dev's labels hold against the releases
as ``qa.read_releases`` reads them, and the SQuAD loader's paragraph offsets are exact."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from qa import read_releases
from qa.evaluation.data import NO_ANSWER_REPLY, after_another, load_jsonl, load_squad
from tests.conftest import ROOT, SEED, SHARED, SHARED_CORPUS, need_shared

PRESS_DEV = ROOT / "evals" / "datasets" / "press-dev.jsonl"
TYPES = {"who", "when", "where", "how_many", "how_much", "what", "which", "why", "list", "unanswerable"}


def _rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in PRESS_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_press_dev_ids_unique_and_followups_point_back() -> None:
    rows = _rows()
    ids = [str(r["id"]) for r in rows]
    assert len(rows) >= 100
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    seen: set[str] = set()
    for r in rows:
        parent = r["followup_of"]
        assert parent is None or parent in seen, f"{r['id']}: followup_of {parent!r} is not an earlier id"
        seen.add(str(r["id"]))
        assert r["type"] in TYPES, r
        if r["release"] is None:
            assert r["answers"] == [] and r["type"] == "unanswerable", r
        else:
            assert r["answers"], r
    assert sum(1 for r in rows if r["release"] is None) >= 10
    assert sum(1 for r in rows if r["followup_of"] is not None) >= 10


def test_press_dev_gold_answers_are_verbatim_in_their_release() -> None:
    need_shared(SHARED_CORPUS)
    report = read_releases([SEED, SHARED_CORPUS])
    assert not report.skipped, report.skipped
    by_name = {Path(r.path).name: r for r in report.releases}
    missing = []
    for r in _rows():
        if r["release"] is None:
            continue
        release = by_name.get(str(r["release"]))
        assert release is not None, f"{r['id']}: release {r['release']!r} is not in the corpus"
        for a in r["answers"]:  # type: ignore[union-attr]
            if str(a) not in release.text:
                missing.append((r["id"], a))
    assert not missing, f"gold answers not found verbatim in Release.text: {missing}"


def test_press_dev_loads_with_histories() -> None:
    need_shared(SHARED_CORPUS)
    ds = load_jsonl(PRESS_DEV, [SEED, SHARED_CORPUS])
    assert len(ds.items) == len(_rows())
    by_id = {i.id: i for i in ds.items}
    for item in ds.items:
        assert (item.release_id is None) == (not item.answerable)
        if item.followup_of is not None:
            assert item.history, item.id
            assert item.history[-1].question == by_id[item.followup_of].question


def test_after_another_asks_each_first_question_after_one_on_another_release() -> None:
    need_shared(SHARED_CORPUS)
    ds = load_jsonl(PRESS_DEV, [SEED, SHARED_CORPUS])
    chat = after_another(ds)
    by_id = {i.id: i for i in ds.items}
    questions = {i.question: i for i in ds.items}
    assert [i.id for i in chat.items] == [i.id for i in ds.items]
    for item in chat.items:
        if item.followup_of is not None:
            assert item.history == by_id[item.id].history
            continue
        assert len(item.history) == 1, item.id
        prev = questions[item.history[0].question]
        assert prev.followup_of is None and prev.id != item.id
        assert prev.release_id is None or prev.release_id != item.release_id
        assert item.history[0].answer in (prev.answers[:1] or (NO_ANSWER_REPLY,))


@pytest.mark.parametrize("name", ["squad-v1.1-dev-shared.json", "squad-v2.0-dev-shared.json"])
def test_squad_paragraph_offsets_hold_the_answers(name: str) -> None:
    path = need_shared(SHARED / "evals") / name
    ds = load_squad(path)
    releases = {r.id: r for r in ds.releases}
    assert len({i.id for i in ds.items}) == len(ds.items)
    outside = []
    for item in ds.items:
        assert item.release_id in releases and item.span is not None
        para = releases[item.release_id].text[item.span[0] : item.span[1]]
        if item.answerable and not any(a in para for a in item.answers):
            outside.append(item.id)
    assert not outside, f"answers not in their paragraph: {outside[:10]}"
    if "v2.0" in name:
        assert 0.3 < sum(not i.answerable for i in ds.items) / len(ds.items) < 0.7
    else:
        assert all(i.answerable for i in ds.items)
