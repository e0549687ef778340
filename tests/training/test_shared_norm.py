"""The open-corpus reader's training: groups of gold + retrieved passages under one softmax."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.embedding import packaged_model_path
from qa.training.negatives import Mined, holds_answer, negatives_of, read_mined
from qa.training.shared_norm import (
    REWARM_WINDOWS,
    Group,
    SharedNormConfig,
    Streams,
    _lr,
    batches,
    collate,
    distill_loss,
    distill_weights,
    featurize,
    group_loss,
    train,
)

TOWNS = [("Oslo", "Berg"), ("Lima", "Soto"), ("Riga", "Ozols"), ("Kyiv", "Shevchenko"), ("Rome", "Conti")]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(packaged_model_path())


def _cfg(**kw: object) -> SharedNormConfig:
    return SharedNormConfig(train="x", negatives="y", out="z", max_length=64, stride=16, **kw)  # type: ignore[arg-type]


def test_negatives_never_hold_the_answer() -> None:
    texts = ["Chaired by Minister BERG.", "Held in Oslo.", "Held in Oslo.", "Nothing here.", "Berg again"]
    assert holds_answer(texts[0], ["Minister Berg"])
    assert negatives_of(texts, ["Minister Berg", "Berg"], 2) == ("Held in Oslo.", "Nothing here.")
    assert negatives_of(texts, [], 1) == ("Chaired by Minister BERG.",)


def test_mined_rows_round_trip(tmp_path: Path) -> None:
    rows = [Mined("a", ("x", "y")), Mined("b", ("z",), "gold text", 5)]
    p = tmp_path / "m.jsonl"
    p.write_text("".join(m.to_json() + "\n" for m in rows))
    assert read_mined(p) == {"a": rows[0], "b": rows[1]}


def test_the_group_targets_the_answer_in_the_gold_window_only(tokenizer) -> None:  # type: ignore[no-untyped-def]
    gold = "The Oslo summit of 2010 was chaired by Minister Berg."
    g = Group(
        "q",
        "Who chaired the Oslo summit?",
        gold,
        gold.index("Minister Berg"),
        "Minister Berg",
        ("The Lima summit was chaired by Minister Soto.", "Rome hosted the next one."),
    )
    wins = featurize(tokenizer, g, _cfg())
    assert len(wins) == 3
    ((s, e),) = wins[0].targets
    assert tokenizer.decode(wins[0].input_ids[s : e + 1]) == "minister berg"
    assert not wins[1].targets and not wins[2].targets


def test_headers_are_read_before_each_passage_and_the_target_follows(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """A run trained with headers reads each passage under its release's title and date, as the
    answerer will; the answer's tokens are still the target."""
    from qa.answer.span_reader import header_text

    gold = "The summit was chaired by Minister Berg."
    neg = "The Lima summit was chaired by Minister Soto."
    g = Group("q", "Who chaired the Oslo summit?", gold, gold.index("Minister Berg"), "Minister Berg", (neg,))
    heads = {gold: header_text("Oslo summit ends", None), neg: header_text("Lima summit", None)}
    wins = featurize(tokenizer, g, _cfg(), heads)
    ((s, e),) = wins[0].targets
    assert tokenizer.decode(wins[0].input_ids[s : e + 1]) == "minister berg"
    assert "oslo summit ends." in tokenizer.decode(wins[0].input_ids)
    assert "lima summit." in tokenizer.decode(wins[1].input_ids)
    assert featurize(tokenizer, g, _cfg(), {})[0].input_ids == featurize(tokenizer, g, _cfg())[0].input_ids


def test_a_group_without_the_gold_targets_no_answer(tokenizer) -> None:  # type: ignore[no-untyped-def]
    g = Group("q", "Who chaired the Oslo summit?", None, -1, "", ("Lima hosted it.", "Rome hosted the next."))
    wins = featurize(tokenizer, g, _cfg())
    assert [w.targets for w in wins] == [[(0, 0)], [(0, 0)]]


def test_the_loss_is_one_softmax_over_all_windows() -> None:
    import torch

    from qa.training.shared_norm import Window

    wins = [
        Window([101, 5, 6, 102, 7, 8, 102], [0, 0, 0, 0, 1, 1, 1], [(4, 5)]),
        Window([101, 5, 102, 9, 102], [0, 0, 0, 1, 1]),
    ]
    batch = collate(wins, 0)
    valid = batch["valid"]
    # [CLS] and the context tokens, never the question, the final [SEP] or padding
    assert valid.tolist() == [
        [True, False, False, False, True, True, False],
        [True, False, False, True, False, False, False],
    ]
    start = torch.randn(2, 7)
    end = torch.randn(2, 7)
    loss = group_loss(start, end, valid, [[0, 1]], wins)
    flat_s = torch.cat([start[0][valid[0]], start[1][valid[1]]])
    flat_e = torch.cat([end[0][valid[0]], end[1][valid[1]]])
    expect = (torch.logsumexp(flat_s, 0) - start[0, 4] + torch.logsumexp(flat_e, 0) - end[0, 5]) / 2
    assert torch.allclose(loss, expect, atol=1e-5)


def test_the_distillation_loss_is_zero_at_the_teacher_and_grows_away_from_it() -> None:
    import torch

    from qa.training.shared_norm import Window

    wins = [
        Window([101, 5, 102, 7, 8, 102], [0, 0, 0, 1, 1, 1], [(3, 4)]),
        Window([101, 5, 102, 9, 102], [0, 0, 0, 1, 1]),
    ]
    valid = collate(wins, 0)["valid"]
    teacher_s, teacher_e = torch.randn(2, 6), torch.randn(2, 6)
    same = distill_loss(teacher_s, teacher_e, teacher_s, teacher_e, valid, [[0, 1]], 2.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    # one softmax over the group's windows: shifting both windows' logits alike changes nothing
    assert (
        float(distill_loss(teacher_s + 3, teacher_e - 1, teacher_s, teacher_e, valid, [[0, 1]], 2.0)) < 1e-5
    )
    # moving one window against the other does
    moved = teacher_s.clone()
    moved[1] += 4
    assert float(distill_loss(moved, teacher_e, teacher_s, teacher_e, valid, [[0, 1]], 2.0)) > 0.1


def _loop_losses(start, end, ts, te, valid, groups, wins, temperature):  # type: ignore[no-untyped-def]
    """The losses group by group, as first written: what the batched forms must equal."""
    import torch

    ce, kl = [], []
    for g in groups:
        rows = list(g)
        for logits, teacher, which in ((start, ts, 0), (end, te, 1)):
            r, v = logits[rows], valid[rows]
            gold = torch.zeros_like(v)
            for k, wi in enumerate(g):
                for tgt in wins[wi].targets:
                    gold[k, tgt[which]] = True
            lse = torch.logsumexp(r.masked_fill(~v, -1e4).reshape(-1), 0)
            ce.append(lse - torch.logsumexp(r.masked_fill(~gold, -1e4).reshape(-1), 0))
            s = torch.log_softmax(r[v] / temperature, 0)
            t = torch.log_softmax(teacher[rows][v] / temperature, 0)
            kl.append((t.exp() * (t - s)).sum())
    n = 2 * len(groups)
    return torch.stack(ce).sum() / n, torch.stack(kl).sum() * temperature**2 / n


def test_the_batched_losses_equal_the_group_by_group_ones() -> None:
    """Groups of one to three windows of different lengths, answers in one window, in two, or
    "no answer" ([CLS] of every window): values and gradients as the per-group loop gives them."""
    import torch

    from qa.training.shared_norm import Window

    gen = torch.Generator().manual_seed(3)
    lengths = [9, 7, 12, 5, 8, 10, 6]
    groups = [[0, 1], [2], [3, 4, 5], [6]]
    targets = {0: [(4, 6)], 2: [(5, 5), (8, 9)], 3: [(0, 0)], 4: [(0, 0)], 5: [(0, 0)], 6: [(3, 4)]}
    wins = [
        Window([101] + [7] * 2 + [102] + [9] * (n - 5) + [102], [0] * 4 + [1] * (n - 4), targets.get(i, []))
        for i, n in enumerate(lengths)
    ]
    valid = collate(wins, 0)["valid"]
    shape = valid.shape
    start = torch.randn(shape, generator=gen, requires_grad=True)
    end = torch.randn(shape, generator=gen, requires_grad=True)
    ts, te = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    ref_ce, ref_kl = _loop_losses(start, end, ts, te, valid, groups, wins, 2.0)
    ce = group_loss(start, end, valid, groups, wins)
    kl = distill_loss(start, end, ts, te, valid, groups, 2.0)
    assert torch.allclose(ce, ref_ce, atol=1e-5) and torch.allclose(kl, ref_kl, atol=1e-5)
    got = torch.autograd.grad(ce + 0.5 * kl, (start, end))
    want = torch.autograd.grad(ref_ce + 0.5 * ref_kl, (start, end))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, want, strict=True))
    with pytest.raises(ValueError, match="belong to a group"):
        group_loss(start, end, valid, [[0, 1]], wins)


def test_weights_scale_each_groups_term_and_nothing_else() -> None:
    """Each loss with per-group weights is the weighted sum of the losses of its groups read alone."""
    import torch

    from qa.training.shared_norm import Window

    gen = torch.Generator().manual_seed(5)
    lengths = [9, 7, 12, 5, 8]
    groups = [[0, 1], [2], [3, 4]]
    targets = {0: [(4, 6)], 2: [(0, 0)], 4: [(3, 4)]}
    wins = [
        Window([101] + [7] * 2 + [102] + [9] * (n - 5) + [102], [0] * 4 + [1] * (n - 4), targets.get(i, []))
        for i, n in enumerate(lengths)
    ]
    valid = collate(wins, 0)["valid"]
    start, end = torch.randn(valid.shape, generator=gen), torch.randn(valid.shape, generator=gen)
    ts, te = torch.randn(valid.shape, generator=gen), torch.randn(valid.shape, generator=gen)
    alone_ce, alone_kl = [], []
    for g in groups:
        rows = torch.tensor(g)
        local = [list(range(len(g)))]
        sub = [wins[i] for i in g]
        alone_ce.append(float(group_loss(start[rows], end[rows], valid[rows], local, sub)))
        alone_kl.append(
            float(distill_loss(start[rows], end[rows], ts[rows], te[rows], valid[rows], local, 2.0))
        )
    w = torch.tensor([0.25, 0.0, 1.0])
    ce = float(group_loss(start, end, valid, groups, wins, w))
    kl = float(distill_loss(start, end, ts, te, valid, groups, 2.0, w))
    assert ce == pytest.approx(sum(a * b for a, b in zip(w.tolist(), alone_ce, strict=True)) / 3, rel=1e-5)
    assert kl == pytest.approx(sum(a * b for a, b in zip(w.tolist(), alone_kl, strict=True)) / 3, rel=1e-5)


def test_the_cards_command_gives_the_runs_settings_back() -> None:
    from qa.training.shared_norm import run_command

    cfg = asdict(_cfg(base="b", press="p.jsonl", press_every=4, lr=2e-5, distill_groups="squad"))
    cmd = run_command(cfg)
    assert cmd.startswith("release-qa train-open-reader --base b --press p.jsonl")
    assert "--press-every 4" in cmd and "--lr 2e-05" in cmd and "--seed 17" in cmd
    assert "distill" not in cmd  # no teacher, so nothing was distilled
    taught = run_command(dict(cfg, teacher="t", distill_weight=0.7))
    assert "--teacher t --distill-weight 0.7 --distill-groups squad" in taught
    assert "--decay-by-time" not in cmd and "--press-answer" not in cmd  # defaults stay out
    assert "--press-every 4 --press-answer any" in run_command(dict(cfg, press_answer="any"))
    timed = run_command(dict(cfg, max_minutes=5.0, decay_by_time=True))
    assert timed.endswith("--max-minutes 5.0 --decay-by-time")


def test_the_rate_decays_over_the_time_budget_when_that_comes_first() -> None:
    """On a machine of unknown speed the schedule still reaches 0 when the time is up."""
    cfg = _cfg(lr=1e-4, target_windows=100_000, max_minutes=5.0, decay_by_time=True)
    assert _lr(cfg, 1_000, time_frac=0.5) == pytest.approx(1e-4 * 0.5 / 0.97)
    assert _lr(cfg, 1_000, time_frac=1.0) == 0.0
    assert _lr(cfg, 60_000, time_frac=0.5) == _lr(cfg, 60_000)  # the windows further along
    with pytest.raises(ValueError, match="needs max_minutes"):
        _cfg(decay_by_time=True)


def test_only_squad_groups_learn_from_the_teacher_when_asked() -> None:
    press = [False, True, False]
    assert distill_weights(_cfg(distill_weight=0.6), press).tolist() == pytest.approx([0.6, 0.6, 0.6])
    squad = _cfg(distill_weight=0.6, distill_groups="squad")
    assert distill_weights(squad, press).tolist() == pytest.approx([0.6, 0.0, 0.6])
    with pytest.raises(ValueError, match="'press'"):
        _cfg(distill_groups="press")


def test_a_batch_says_which_of_its_groups_are_press_groups(tokenizer) -> None:  # type: ignore[no-untyped-def]
    class Alternating:  # every third group from the press stream, as Streams.take does with press_every 3
        heads = None

        def take(self, state: dict[str, int]) -> Group:
            k = state["groups"]
            state["groups"] = k + 1
            key = "press" if k % 3 == 2 else "squad"
            state[key] += 1
            town, name = TOWNS[k % len(TOWNS)]
            ctx = f"The {town} summit was chaired by Minister {name}."
            return Group(
                f"{key}{k}",
                f"Who chaired the {town} summit?",
                ctx,
                ctx.index("Minister"),
                f"Minister {name}",
                (),
            )

    cfg = _cfg(groups_per_batch=4)
    got = batches(Alternating(), tokenizer, cfg, {"squad": 0, "press": 0, "groups": 0})  # type: ignore[arg-type]
    first, second = next(got), next(got)
    assert first.press == [False, False, True, False] and second.press == [False, True, False, False]
    assert len(first.groups) == 4 and first.streams == {"squad": 3, "press": 1, "groups": 4}


def test_a_student_keeps_the_layers_asked_and_learns_from_its_teacher(tmp_path: Path) -> None:
    from safetensors.numpy import load_file
    from transformers import AutoConfig

    from qa.training.export import export_reader

    common = _tiny_run(tmp_path)
    teacher = common["base"]
    cfg = dict(common, teacher=str(teacher), layers=(0, 2, 4), target_windows=12)
    meta = train(SharedNormConfig(out=str(tmp_path / "s"), stop_after_windows=4, **cfg))
    assert AutoConfig.from_pretrained(tmp_path / "s").num_hidden_layers == 3
    student = load_file(tmp_path / "s" / "model.safetensors")
    assert not any(".layer.3." in k for k in student) and math.isfinite(meta["history"][-1]["loss"])
    done = train(SharedNormConfig(out=str(tmp_path / "s"), **cfg), resume=True)  # resumes as a student
    assert done["done"] and AutoConfig.from_pretrained(tmp_path / "s").num_hidden_layers == 3
    card = (export_reader(tmp_path / "s", tmp_path / "shipped") / "README.md").read_text()
    assert "Distilled from" in card and "[0, 2, 4]" in card
    assert f"`release-qa train-open-reader --base {teacher} --teacher {teacher} --layers 0,2,4 " in card
    with pytest.raises(ValueError, match="has 6"):
        train(SharedNormConfig(out=str(tmp_path / "t"), **dict(cfg, layers=(0, 7))))


def _tiny_run(tmp_path: Path) -> dict[str, Any]:
    """Settings of a tiny run over synthetic questions, each with three mined negatives."""
    paragraphs, mined = [], []
    for i, (town, name) in enumerate(TOWNS):
        ctx = f"The {town} summit of 20{10 + i} was chaired by Minister {name}."
        paragraphs.append(
            {
                "context": ctx,
                "qas": [
                    {
                        "id": f"q{i}",
                        "question": f"Who chaired the {town} summit?",
                        "answers": [{"text": f"Minister {name}", "answer_start": ctx.index("Minister")}],
                    }
                ],
            }
        )
        others = [f"The {t} summit was chaired by Minister {n}." for t, n in TOWNS if t != town]
        mined.append(Mined(f"q{i}", tuple(others[:3])))
    data = tmp_path / "train.json"
    data.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    negs = tmp_path / "neg.jsonl"
    negs.write_text("".join(m.to_json() + "\n" for m in mined))
    base = packaged_model_path()
    common: dict[str, Any] = dict(
        train=str(data),
        negatives=str(negs),
        base=str(base),
        max_length=64,
        stride=16,
        groups_per_batch=2,
        threads=1,
        no_answer_share=0.3,
    )
    return common


def test_a_stopped_run_resumes_where_it_was(tmp_path: Path) -> None:
    common = _tiny_run(tmp_path)
    first = train(
        SharedNormConfig(out=str(tmp_path / "a"), target_windows=20, stop_after_windows=6, **common)
    )
    assert first["state"]["steps"] == 1 and not first["done"]
    assert (tmp_path / "a" / "optimizer.safetensors").is_file()
    resumed = train(SharedNormConfig(out=str(tmp_path / "a"), target_windows=20, **common), resume=True)
    whole = train(SharedNormConfig(out=str(tmp_path / "b"), target_windows=20, **common))
    assert resumed["done"] and whole["done"] and whole["state"]["steps"] >= 3
    # the same data in the same order, whether stopped or not, and the same weights
    assert resumed["state"] == whole["state"]
    from safetensors.numpy import load_file

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(abs(a[k] - b[k]).max() < 1e-5 for k in a)


def test_a_run_asked_to_stop_saves_its_step_and_resumes_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (a session's end) mid-run: the step finishes, a checkpoint is written, the run
    returns instead of dying, and resuming continues the same data order."""
    import signal

    import qa.training.shared_norm as sn

    common = _tiny_run(tmp_path)
    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL alone, or a handler an earlier test (Ray) installed
    real_collate = sn.collate
    calls = []

    def collate_then_signal(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGTERM)
        return real_collate(*a, **kw)

    monkeypatch.setattr(sn, "collate", collate_then_signal)
    stopped = train(SharedNormConfig(out=str(tmp_path / "a"), target_windows=20, **common))
    assert stopped["state"]["steps"] == 1 and not stopped["done"]
    assert json.loads((tmp_path / "a" / "training.json").read_text())["state"] == stopped["state"]
    assert signal.getsignal(signal.SIGTERM) == before  # ours is gone after the run
    monkeypatch.setattr(sn, "collate", real_collate)
    resumed = train(SharedNormConfig(out=str(tmp_path / "a"), target_windows=20, **common), resume=True)
    whole = train(SharedNormConfig(out=str(tmp_path / "b"), target_windows=20, **common))
    assert resumed["done"] and resumed["state"] == whole["state"]


def test_a_checkpoint_without_optimizer_state_resumes_with_the_rate_warmed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new machine keeps only the exported reader (weights and training.json): resuming from it
    continues the data order and the schedule, with fresh AdamW moments brought in gently."""
    common = _tiny_run(tmp_path)
    first = train(
        SharedNormConfig(out=str(tmp_path / "a"), target_windows=20, stop_after_windows=6, **common)
    )
    (tmp_path / "a" / "optimizer.safetensors").unlink()
    with caplog.at_level("INFO", logger="qa.training.shared_norm"):
        resumed = train(SharedNormConfig(out=str(tmp_path / "a"), target_windows=20, **common), resume=True)
    whole = train(SharedNormConfig(out=str(tmp_path / "b"), target_windows=20, **common))
    assert "no optimizer state" in caplog.text
    assert resumed["done"] and resumed["state"] == whole["state"]
    assert resumed["state"]["steps"] > first["state"]["steps"]
    cfg = SharedNormConfig(out="x", target_windows=100_000, **common)
    assert _lr(cfg, 50_000, rewarm_from=50_000) < 0.001 * _lr(cfg, 50_000)
    assert _lr(cfg, 50_000 + REWARM_WINDOWS, rewarm_from=50_000) == _lr(cfg, 50_000 + REWARM_WINDOWS)


def test_a_bf16_run_learns_in_float32_weights(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    common = _tiny_run(tmp_path)
    meta = train(SharedNormConfig(out=str(tmp_path / "a"), target_windows=12, precision="bf16", **common))
    assert meta["done"] and meta["history"][-1]["precision"] == "bf16"
    assert math.isfinite(meta["history"][-1]["loss"])
    after = load_file(tmp_path / "a" / "model.safetensors")
    before = load_file(Path(common["base"]) / "model.safetensors")
    assert all(v.dtype == np.float32 for v in after.values())
    # the encoder's weights moved: the optimiser stepped on gradients computed in bfloat16
    shared = [k for k in before if f"bert.{k}" in after and before[k].dtype == np.float32]
    assert len(shared) > 90
    assert any(abs(after[f"bert.{k}"] - before[k]).max() > 0 for k in shared)
    # and in bfloat16: the same run in float32 ends near, not at, the same weights
    train(SharedNormConfig(out=str(tmp_path / "b"), target_windows=12, **common))
    fp32 = load_file(tmp_path / "b" / "model.safetensors")
    gaps = [float(abs(after[k] - fp32[k]).max()) for k in after]
    assert 0 < max(gaps) < 0.05


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="'fp16'"):
        _cfg(precision="fp16")


def test_press_rows_get_their_gold_passage_and_negatives(tmp_path: Path) -> None:
    from qa import HashingEmbedder
    from qa.training.negatives import mine_press
    from qa.training.shared_norm import press_groups

    archive = tmp_path / "archive"
    archive.mkdir()
    for town, name in TOWNS:
        body = (
            f"The {town} summit was chaired by Minister {name}. " + f"Delegates toured {town} harbour. " * 30
        )
        (archive / f"{town}.md").write_text(f'---\ntitle: "{town} summit"\n---\n\n{body}\n')
    rows = [
        {
            "id": "a",
            "question": "Who chaired the Oslo summit?",
            "answers": ["Minister Berg", "Berg", "Mr Berg"],
            "evidence": "The Oslo summit was chaired by Minister Berg.",
            "release": "Oslo.md",
            "near": "Oslo.md",
            "type": "who",
            "followup_of": None,
        },
        {
            "id": "b",
            "question": "And what did delegates tour?",
            "answers": ["Oslo harbour"],
            "evidence": "Delegates toured Oslo harbour.",
            "release": "Oslo.md",
            "near": "Oslo.md",
            "type": "what",
            "followup_of": "a",
        },
        {
            "id": "c",
            "question": "Who chaired the Paris summit?",
            "answers": [],
            "evidence": None,
            "release": None,
            "near": "Rome.md",
            "type": "unanswerable",
            "followup_of": None,
        },
    ]
    rows_path = tmp_path / "rows.jsonl"
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "mined.jsonl"
    assert mine_press(rows, archive, out, tmp_path / "cache", HashingEmbedder(dimension=64)) == 3
    mined = read_mined(out)
    a = mined["a"]
    assert a.gold is not None and a.gold[a.gold_start :].startswith("Minister Berg")
    assert a.negatives and not any("Minister Berg" in t for t in a.negatives)
    assert mined["b"].query == "Who chaired the Oslo summit? And what did delegates tour?"
    assert mined["c"].gold is None and mined["c"].negatives  # its top passages, whatever they hold
    groups = {g.id: g for g in press_groups(str(rows_path), str(out))}
    assert groups["c"].gold is None and groups["c"].answer_start == -1
    assert groups["b"].question.startswith("Who chaired the Oslo summit?")
    # the other answers that lie inside the first, where they stand in the gold passage
    a_group = groups["a"]
    assert a_group.answer == "Minister Berg" and [t for _, t in a_group.alternatives] == ["Berg"]
    start, text = a_group.alternatives[0]
    assert a_group.gold is not None and a_group.gold[start : start + len(text)] == "Berg"
    assert groups["b"].alternatives == ()

    def targets(answer: str) -> set[str]:
        cfg = SharedNormConfig(
            **{k: v for k, v in _tiny_run(tmp_path).items() if k in ("train", "negatives", "base")},
            out=str(tmp_path / "o"),
            press=str(rows_path),
            press_negatives=str(out),
            press_every=2,
            press_answer=answer,
        )
        streams, state = Streams(cfg), {"squad": 0, "press": 0, "groups": 0}
        seen = [streams.take(state) for _ in range(60)]
        return {
            g.gold[g.answer_start : g.answer_start + len(g.answer)] for g in seen if g.id == "a" and g.gold
        }

    assert targets("first") == {"Minister Berg"}
    assert targets("any") == {"Minister Berg", "Berg"}  # each visit one of them, both over the run
    with pytest.raises(ValueError, match="'last'"):
        _cfg(press_answer="last")


def test_an_exported_open_reader_has_a_card_with_both_stages(tmp_path: Path) -> None:
    from qa.training.export import export_reader

    paragraphs = [
        {
            "context": f"The {t} summit was chaired by Minister {n}.",
            "qas": [
                {
                    "id": f"q{i}",
                    "question": f"Who chaired the {t} summit?",
                    "answers": [
                        {"text": f"Minister {n}", "answer_start": len(f"The {t} summit was chaired by ")}
                    ],
                }
            ],
        }
        for i, (t, n) in enumerate(TOWNS)
    ]
    data = tmp_path / "train.json"
    data.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    negs = tmp_path / "neg.jsonl"
    negs.write_text(
        "".join(Mined(f"q{i}", ("Nothing here.", "Rome hosted it.")).to_json() + "\n" for i in range(5))
    )
    cfg = SharedNormConfig(
        train=str(data),
        negatives=str(negs),
        out=str(tmp_path / "ck"),
        base=str(packaged_model_path()),
        max_length=64,
        stride=16,
        groups_per_batch=2,
        threads=1,
        target_windows=6,
    )
    train(cfg)
    card = (export_reader(tmp_path / "ck", tmp_path / "shipped") / "README.md").read_text()
    assert "Stage 2: open-corpus answering" in card and "windows in" in card
    assert (tmp_path / "shipped" / "model.safetensors").is_file()


def test_the_card_says_where_a_run_changed_precision() -> None:
    from qa.training.shared_norm import _precision_story

    rows = [
        {"windows": 2_000},
        {"windows": 4_000, "precision": "fp32"},
        {"windows": 16_409, "precision": "bf16"},
    ]
    assert _precision_story(rows) == "fp32, bf16 from 16,409 windows"
    assert _precision_story(rows[:2]) == "fp32"
    assert _precision_story([]) == "fp32"


def test_a_student_can_keep_its_teachers_word_embeddings_and_resume(tmp_path: Path) -> None:
    """Frozen word embeddings stay the base's bit for bit, through a stop and a resume, while the
    rest learns: the student ships beside its teacher without a second copy of them."""
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as load_torch

    common = _tiny_run(tmp_path)
    key = "bert.embeddings.word_embeddings.weight"
    base = load_file(Path(common["base"]) / "model.safetensors")
    base_key = next(k for k in base if k.endswith("word_embeddings.weight"))
    cfg = dict(common, layers=(0, 2), target_windows=12, freeze_word_embeddings=True)
    train(SharedNormConfig(out=str(tmp_path / "s"), stop_after_windows=4, **cfg))
    moments = {k.split(".")[1] for k in load_torch(tmp_path / "s" / "optimizer.safetensors") if "." in k}
    assert train(SharedNormConfig(out=str(tmp_path / "s"), **cfg), resume=True)["done"]
    student = load_file(tmp_path / "s" / "model.safetensors")
    assert len(moments) == len(student) - 1  # AdamW holds no moments for the frozen table
    assert np.array_equal(student[key], base[base_key].astype(student[key].dtype))
    layer = next(k for k in student if k.endswith("layer.0.attention.self.query.weight"))
    assert not np.allclose(
        student[layer], base[next(k for k in base if k.endswith(layer.split("bert.")[-1]))]
    )


def test_a_run_from_an_exported_open_reader_adds_a_stage_to_the_card() -> None:
    """A GPU run from the shipped reader keeps its log as ``base_training``: the card tells both."""
    from qa.training.shared_norm import open_reader_card, shared_norm_runs

    def run(windows: int, base: dict[str, Any] | None, device: str) -> dict[str, Any]:
        cfg = asdict(SharedNormConfig(train="t", negatives="n", out="o", base="b" if base else None))
        state = {"squad": windows // 4, "press": 1, "groups": windows // 3, "windows": windows, "steps": 9}
        history = [{"windows": windows, "loss": 1.5, "em": 0.6, "f1": 0.75}]
        return {"kind": "shared-norm", "config": cfg, "base_training": base, "device": device,
                "state": state, "seconds": 600.0, "history": history, "done": True}  # fmt: skip

    first = run(50_487, None, "cpu")
    second = run(330_000, first, "cuda")
    runs, stage1 = shared_norm_runs(second)
    assert runs == [first, second] and stage1 is None
    card = open_reader_card(second)
    assert "in 3 stages" in card
    two, three = card.index("## Stage 2: open-corpus"), card.index("## Stage 3: open-corpus")
    assert two < three and "50,487 windows" in card[two:three] and "330,000 windows" in card[three:]
    assert "cuda (fp32)" in card[three:] and "`release-qa train-open-reader --base b " in card[three:]
    assert "--base" not in card[two:three]  # stage 2 started from the stage-1 reader, not a --base


def test_the_card_shows_a_checkpoint_logged_twice_once() -> None:
    """Runs saved twice at the same windows (before the fix) logged the last row twice."""
    from qa.training.shared_norm import open_reader_card

    cfg = asdict(SharedNormConfig(train="t", negatives="n", out="o"))
    state = {"squad": 9, "press": 1, "groups": 10, "windows": 14_012, "steps": 9}
    rows = [
        {"windows": w, "loss": 0.8, "em": 0.6, "f1": f}
        for w, f in ((7_000, 0.77), (14_012, 0.78), (14_012, 0.78))
    ]
    meta = {"kind": "shared-norm", "config": cfg, "base_training": None, "device": "cpu",
            "state": state, "seconds": 60.0, "history": rows, "done": True}  # fmt: skip
    card = open_reader_card(meta)
    assert card.count("| 14,012 | 0.80 | 0.600 | 0.780 |") == 1 and "| 7,000 | 0.80 | 0.600 | 0.770 |" in card
