"""Training data for the reader: answer positions must point at the answer, in every window."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from qa.embedding import packaged_model_path
from qa.training.export import export_reader
from qa.training.reader import (
    ReaderTrainConfig,
    SquadExample,
    _batches,
    featurize,
    train_reader,
)

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


def test_a_continued_run_skips_the_windows_already_seen_and_the_card_tells_both(tmp_path: Path) -> None:
    paragraphs = [
        {
            "context": f"The {town} summit of 20{10 + i} was chaired by Minister {name}.",
            "qas": [
                {
                    "id": f"q{i}",
                    "question": f"Who chaired the {town} summit?",
                    "answers": [{"text": f"Minister {name}", "answer_start": 0}],
                }
            ],
        }
        for i, (town, name) in enumerate(
            [("Oslo", "Berg"), ("Lima", "Soto"), ("Riga", "Ozols"), ("Kyiv", "Shevchenko"), ("Rome", "Conti")]
        )
    ]
    for para in paragraphs:  # answer_start computed, not trusted
        a = para["qas"][0]["answers"][0]
        a["answer_start"] = para["context"].index(a["text"])
    data = tmp_path / "train.json"
    data.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    common = {"train": str(data), "dev": None, "max_length": 64, "stride": 16, "batch_size": 2, "threads": 1}
    first = train_reader(ReaderTrainConfig(out=str(tmp_path / "a"), **common))
    assert first["windows_seen"] == 5 and "previous" not in first
    second = train_reader(
        ReaderTrainConfig(out=str(tmp_path / "b"), base=str(tmp_path / "a"), skip_windows=2, **common)
    )
    # whole batches are skipped, as the first run saw whole batches of the same seeded order
    assert second["windows_skipped"] >= 2 and second["windows_skipped"] + second["windows_seen"] == 5
    assert second["previous"]["windows_seen"] == 5
    card = (export_reader(tmp_path / "b", tmp_path / "shipped") / "README.md").read_text()
    assert f"{5 + second['windows_seen']} training windows seen in all" in card and "in 2 run(s)" in card
    assert "--skip-windows 2" in card
    noted = export_reader(tmp_path / "b", tmp_path / "noted", note="\n## Which reader\n\n`x` held y.\n\n")
    assert (noted / "README.md").read_text() == card.rstrip("\n") + "\n\n## Which reader\n\n`x` held y.\n"
    with pytest.raises(ValueError, match="empty"):
        export_reader(tmp_path / "b", tmp_path / "bad", note=" \n")
    # blended with another reader of its shape (a's weights negated, so every weight moves)
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModelForQuestionAnswering

    other = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "a", dtype=torch.float32)
    other.load_state_dict({k: -v if v.is_floating_point() else v for k, v in other.state_dict().items()})
    other.save_pretrained(tmp_path / "other")
    blended = export_reader(tmp_path / "b", tmp_path / "blended", blend=tmp_path / "other", weight=0.25)
    assert "0.25 x the run's above + 0.75 x" in (blended / "README.md").read_text()
    assert json.loads((blended / "training.json").read_text())["blend"]["weight"] == 0.25
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    got = load_file(str(blended / "model.safetensors"))
    floats = [k for k in got if got[k].dtype.kind == "f"]
    assert floats and floats == [k for k in got if k in a]
    for k in floats:
        want = 0.25 * b[k].astype(np.float32) - 0.75 * a[k].astype(np.float32)
        assert np.allclose(got[k].astype(np.float32), want, atol=1e-2, rtol=1e-2), k
    with pytest.raises(ValueError, match="1.5"):
        export_reader(tmp_path / "b", tmp_path / "bad", blend=tmp_path / "a", weight=1.5)
    with pytest.raises(ValueError, match="0.5"):
        export_reader(tmp_path / "b", tmp_path / "bad", weight=0.5)  # nothing to blend with
