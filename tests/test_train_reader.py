"""Training data for the reader: answer positions must point at the answer, in every window."""

from __future__ import annotations

import random

import pytest

from qa.embedding import packaged_model_path
from qa.train_reader import ReaderTrainConfig, SquadExample, _batches, featurize

CONTEXT = (
    "Ministers from thirty countries met in Geneva on Tuesday. "
    + "They discussed many other things at length. " * 40
    + "The meeting was chaired by Dr. Jane Smith of the delegation."
)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(packaged_model_path())


def test_answer_positions_point_at_the_answer(tokenizer) -> None:  # type: ignore[no-untyped-def]
    cfg = ReaderTrainConfig(train="x", dev=None, out="y", max_length=128, stride=32)
    examples = [
        SquadExample("a", "Where did they meet?", CONTEXT, ("Geneva",), CONTEXT.index("Geneva")),
        SquadExample("b", "Who chaired it?", CONTEXT, ("Dr. Jane Smith",), CONTEXT.index("Dr. Jane Smith")),
    ]
    feats = featurize(tokenizer, examples, cfg)
    assert len(feats) > 4  # the long context is windowed
    assert all(len(f["input_ids"]) <= 128 for f in feats)
    found = {
        tokenizer.decode(f["input_ids"][f["start"] : f["end"] + 1])
        for f in feats
        if (f["start"], f["end"]) != (0, 0)
    }
    assert found == {"geneva", "dr. jane smith"}
    # windows that do not hold the answer point at [CLS]
    assert sum((f["start"], f["end"]) == (0, 0) for f in feats) >= len(feats) - 4


def test_batches_cover_every_window_once() -> None:
    feats = [{"input_ids": [0] * random.Random(i).randint(5, 50)} for i in range(333)]
    batches = _batches(feats, 16, random.Random(0))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(333)) and max(len(b) for b in batches) == 16


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="300"):
        ReaderTrainConfig(train="x", dev=None, out="y", max_length=512, stride=300)
    with pytest.raises(ValueError, match="-1"):
        ReaderTrainConfig(train="x", dev=None, out="y", lr=-1)
