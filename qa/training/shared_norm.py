"""Train the reader for open-corpus answering: shared normalisation over the passages it reads.

Each training example is a *group*: a question with its gold passage and the passages the
project's own retrieval returns that lack the answer (``qa.training.negatives``), read as
separate windows but scored under one softmax over every token of every window, plus each
window's [CLS] as "no answer" (Clark and Gardner 2018; Wang et al. 2019). A share of the groups
drop the gold passage: their target is "no answer", so the no-answer score learns to mean "these
passages do not answer", not "this one window does not".

The run is defined by its config and data; the order of groups is fixed by the seed, and a
checkpoint (every ``checkpoint_minutes``) holds the weights, the optimiser and how far each
data stream got, so ``--resume`` continues exactly where a stopped run left off. The learning
rate warms up and decays linearly over ``target_windows`` (not over time), so a run spread over
several sessions follows one schedule.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import random
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qa.answer.span_reader import windows
from qa.training.reader import ReaderTrainConfig, SquadExample, evaluate_reader, read_squad, swap_in
from qa.training.stopping import StopRequest

log = logging.getLogger(__name__)


PRECISIONS = ("fp32", "bf16")
DISTILL_GROUPS = ("all", "squad")
PRESS_ANSWERS = ("first", "any")


@dataclass(frozen=True, slots=True)
class SharedNormConfig:
    train: str
    negatives: str
    out: str
    base: str | None = None
    dev: str | None = None
    press: str | None = None
    """Press QA rows (``evals.press_data`` format) with their mined negatives in ``press_negatives``."""
    press_negatives: str | None = None
    press_every: int = 6
    """One press group after every ``press_every - 1`` SQuAD groups (press-train is cycled: up-weighted)."""
    press_answer: str = "first"
    """Which of a press row's answers a visit targets: "first", or "any" of those lying inside the
    first (chosen by a hash of the position). Press-train's writers put the fullest form first
    ("28 million doses", then "28 million"), so "first" teaches longer spans than SQuAD's minimal
    ones and than most users' questions want."""
    max_length: int = 256
    stride: int = 96
    max_question_tokens: int = 64
    groups_per_batch: int = 8
    negatives_per_group: int = 2
    no_answer_share: float = 0.2
    max_windows_per_passage: int = 2
    lr: float = 5e-5
    warmup: float = 0.03
    weight_decay: float = 0.01
    target_windows: int = 120_000
    max_minutes: float | None = None
    decay_by_time: bool = False
    """The rate decays over ``max_minutes`` of this run's wall time as well as ``target_windows``,
    whichever is further along: a run on a lent machine whose speed is not known beforehand still
    ends at rate 0 when its time is up (one call; a resumed run counts its time afresh)."""
    stop_after_windows: int | None = None
    """Stop (checkpointed) once this run has read this many windows; ``--resume`` goes on."""
    checkpoint_minutes: float = 10.0
    dev_questions: int = 300
    seed: int = 17
    threads: int | None = None
    precision: str = "fp32"
    """"bf16": the forward and backward in bfloat16 autocast (weights, optimiser and loss stay
    float32): 1.4x a step on this machine's AMX cores (Sapphire Rapids and later), more on a GPU."""
    teacher: str | None = None
    """Distillation: a reader whose span distributions (shared-normalised over the group's windows,
    softened by ``temperature``) the model also learns, weighted ``distill_weight`` against the gold."""
    layers: tuple[int, ...] | None = None
    """A student: keep only these encoder layers of the base (e.g. (0, 2, 4) of the teacher's six)."""
    distill_weight: float = 0.7
    distill_groups: str = "all"
    """Which groups learn from the teacher: "all", or "squad" only, so the teacher anchors what the
    reader already does on SQuAD while press groups learn from their gold alone (learning without
    forgetting, Li and Hoiem 2017): distilling every group halved stage 4's press gain."""
    temperature: float = 2.0
    headers: str | None = None
    """A JSON map of passage text -> header (``qa.answer.span_reader.header_text``: the release's title
    and date) read before each passage, as the answerer does for a reader trained so."""
    freeze_word_embeddings: bool = False
    """Keep the word embeddings the run starts from fixed (a student keeps its teacher's): a third
    of a 3-layer student's weights not learned, and shipped as the teacher's own."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight!r}")
        if self.distill_groups not in DISTILL_GROUPS:
            raise ValueError(f"distill_groups must be one of {DISTILL_GROUPS}, got {self.distill_groups!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValueError(f"layers must be non-empty indices >= 0, got {self.layers!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.no_answer_share < 1.0:
            raise ValueError(f"no_answer_share must be in [0, 1), got {self.no_answer_share!r}")
        if self.groups_per_batch < 1 or self.negatives_per_group < 0:
            raise ValueError(
                f"groups_per_batch >= 1 and negatives_per_group >= 0, got "
                f"{self.groups_per_batch!r}, {self.negatives_per_group!r}"
            )
        if self.press_answer not in PRESS_ANSWERS:
            raise ValueError(f"press_answer must be one of {PRESS_ANSWERS}, got {self.press_answer!r}")
        if self.press_every < 2:
            raise ValueError(f"press_every must be >= 2, got {self.press_every!r}")
        if not self.lr > 0 or self.target_windows < 1:
            raise ValueError(f"lr > 0 and target_windows >= 1, got {self.lr!r}, {self.target_windows!r}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes!r}")
        if self.decay_by_time and self.max_minutes is None:
            raise ValueError("decay_by_time needs max_minutes (the time the rate decays over), got None")


@dataclass(frozen=True, slots=True)
class Group:
    """A question and the passages read together; ``answer_start`` < 0: no passage answers."""

    id: str
    question: str
    gold: str | None
    answer_start: int
    answer: str
    negatives: tuple[str, ...]
    alternatives: tuple[tuple[int, str], ...] = ()
    """Other answers found inside ``answer``, with their starts in ``gold`` (press rows)."""


@dataclass
class Window:
    input_ids: list[int]
    token_type_ids: list[int]
    targets: list[tuple[int, int]] = field(default_factory=list)
    """(start token, end token) of the answer in this window; [(0, 0)] marks a no-answer target."""


def _answer_tokens(
    offsets: Sequence[tuple[int, int]], seq: Sequence[int | None], a0: int, a1: int
) -> tuple[int, int] | None:
    ctx = [t for t, s in enumerate(seq) if s == 1]
    if not ctx or offsets[ctx[0]][0] > a0 or offsets[ctx[-1]][1] < a1:
        return None
    s = next(t for t in ctx if offsets[t][1] > a0)
    e = next(t for t in reversed(ctx) if offsets[t][0] < a1)
    return (s, e) if s <= e else None


def featurize(
    tokenizer: Any, group: Group, cfg: SharedNormConfig, heads: dict[str, str] | None = None
) -> list[Window]:
    """The group's windows: the gold passage's (with the answer's tokens where it lies inside),
    then each negative's; a no-answer group targets every window's [CLS]."""
    q = tokenizer.convert_tokens_to_string(tokenizer.tokenize(group.question)[: cfg.max_question_tokens])
    texts = ([group.gold] if group.gold is not None else []) + list(group.negatives)
    shift = 0
    if heads:
        if group.gold is not None:
            shift = len(heads.get(group.gold, ""))
        texts = [heads.get(t, "") + t for t in texts]
    enc = windows(tokenizer, [q] * len(texts), texts, cfg.max_length, cfg.stride)
    out: list[Window] = []
    per_text: dict[int, int] = {}
    for w, t in enumerate(enc["overflow_to_sample_mapping"]):
        if per_text.get(t, 0) >= cfg.max_windows_per_passage:
            continue
        win = Window(list(enc["input_ids"][w]), list(enc["token_type_ids"][w]))
        if group.gold is not None and t == 0 and group.answer_start >= 0:
            pos = _answer_tokens(
                enc["offset_mapping"][w],
                enc.sequence_ids(w),
                shift + group.answer_start,
                shift + group.answer_start + len(group.answer),
            )
            if pos is not None:
                win.targets.append(pos)
        per_text[t] = per_text.get(t, 0) + 1
        out.append(win)
    if not any(w.targets for w in out):
        if group.answer_start >= 0:
            return []  # the answer fell outside the windows kept: skip rather than teach "no answer"
        for w in out:
            w.targets.append((0, 0))
    return out


def _group_of(groups: Sequence[Sequence[int]], n_windows: int, device: Any) -> Any:
    """Each window's group index (a window belongs to exactly one group)."""
    import torch

    gid = torch.full((n_windows,), -1, dtype=torch.long)
    for k, g in enumerate(groups):
        gid[list(g)] = k
    if bool((gid < 0).any()):
        raise ValueError("every window must belong to a group")
    return gid.to(device)


def _group_lse(x: Any, gid: Any, n_groups: int) -> Any:
    """log-sum-exp of ``x`` ([windows, tokens]) over each group's windows: one value per group.

    The per-window log-sum-exps are combined by a scatter, so a batch of any number of groups
    costs a handful of kernels (the per-group loop it replaces launched hundreds on a GPU)."""
    import torch

    w = torch.logsumexp(x, dim=1)
    m = torch.full((n_groups,), -math.inf, dtype=w.dtype, device=w.device)
    m = m.scatter_reduce(0, gid, w.detach(), reduce="amax").detach()
    s = torch.zeros(n_groups, dtype=w.dtype, device=w.device).index_add(0, gid, torch.exp(w - m[gid]))
    return m + torch.log(s)


def gold_masks(wins: Sequence[Window], shape: tuple[int, int]) -> tuple[Any, Any]:
    """Boolean [windows, tokens] masks of the gold start and end positions of every window."""
    import torch

    gs = torch.zeros(shape, dtype=torch.bool)
    ge = torch.zeros(shape, dtype=torch.bool)
    for r, w in enumerate(wins):
        for s, e in w.targets:
            gs[r, s] = True
            ge[r, e] = True
    return gs, ge


def group_loss(
    start: Any,
    end: Any,
    mask: Any,
    groups: Sequence[Sequence[int]],
    wins: Sequence[Window],
    weights: Any = None,
) -> Any:
    """Mean over groups of -log P(gold start) - log P(gold end), each a softmax over every valid
    position (context tokens and [CLS]) of all the group's windows, summed over gold positions;
    each group's term times its ``weights`` entry when given."""
    gid = _group_of(groups, start.shape[0], start.device)
    gs, ge = (m.to(start.device) for m in gold_masks(wins, tuple(start.shape)))
    per_group = start.new_zeros(len(groups))
    for logits, gold in ((start, gs), (end, ge)):
        all_lse = _group_lse(logits.masked_fill(~mask, -1e4), gid, len(groups))
        gold_lse = _group_lse(logits.masked_fill(~gold, -1e4), gid, len(groups))
        per_group = per_group + (all_lse - gold_lse)
    if weights is not None:
        per_group = per_group * weights
    return per_group.sum() / (2 * len(groups))


def distill_loss(
    start: Any,
    end: Any,
    teacher_start: Any,
    teacher_end: Any,
    mask: Any,
    groups: Sequence[Sequence[int]],
    temperature: float,
    weights: Any = None,
) -> Any:
    """Mean over groups of KL(teacher || student) for the start and the end distributions, each a
    softmax at ``temperature`` over every valid position of the group's windows (as ``group_loss``
    normalises), times temperature² so its gradients keep their scale (Hinton et al. 2015); each
    group's term times its ``weights`` entry when given."""
    import torch

    gid = _group_of(groups, start.shape[0], start.device)
    per_window = start.new_zeros(start.shape[0])
    for student, teacher in ((start, teacher_start), (end, teacher_end)):
        s = (student / temperature).masked_fill(~mask, -1e4)
        t = (teacher / temperature).masked_fill(~mask, -1e4)
        log_s = s - _group_lse(s, gid, len(groups))[gid][:, None]
        log_t = t - _group_lse(t, gid, len(groups))[gid][:, None]
        kl = torch.where(mask, log_t.exp() * (log_t - log_s), torch.zeros_like(log_s))
        per_window = per_window + kl.sum(dim=1)
    if weights is not None:
        per_window = per_window * weights[gid]
    return per_window.sum() * temperature**2 / (2 * len(groups))


def distill_weights(cfg: SharedNormConfig, press: Sequence[bool]) -> Any:
    """Each group's share of the teacher in its loss: ``distill_weight``, or 0 for a press group
    when only SQuAD groups are distilled."""
    import torch

    squad_only = cfg.distill_groups == "squad"
    return torch.tensor([0.0 if squad_only and p else cfg.distill_weight for p in press])


def keep_layers(model: Any, layers: Sequence[int]) -> Any:
    """The model with only these encoder layers, in this order (a student initialised from its teacher)."""
    import torch

    n = model.config.num_hidden_layers
    if max(layers) >= n:
        raise ValueError(f"layers {tuple(layers)!r}: the base model has {n}")
    model.bert.encoder.layer = torch.nn.ModuleList([model.bert.encoder.layer[i] for i in layers])
    model.config.num_hidden_layers = len(layers)
    return model


def collate(wins: Sequence[Window], pad_id: int) -> dict[str, Any]:
    import torch

    n = max(len(w.input_ids) for w in wins)
    ids = torch.full((len(wins), n), pad_id, dtype=torch.long)
    tt = torch.zeros((len(wins), n), dtype=torch.long)
    att = torch.zeros((len(wins), n), dtype=torch.long)
    for r, w in enumerate(wins):
        k = len(w.input_ids)
        ids[r, :k] = torch.tensor(w.input_ids)
        tt[r, :k] = torch.tensor(w.token_type_ids)
        att[r, :k] = 1
    valid = (tt == 1) & (att == 1)
    valid[:, 0] = True  # [CLS]: no answer
    # the final [SEP] has token type 1 but is no answer token
    for r, w in enumerate(wins):
        valid[r, len(w.input_ids) - 1] = False
    return {"input_ids": ids, "token_type_ids": tt, "attention_mask": att, "valid": valid}


class Streams:
    """The groups in training order: SQuAD questions shuffled by the seed, a share of them with the
    gold dropped, and press questions interleaved (cycled) when given. Positions are counters, so
    a resumed run, or one that gains press data later, continues each stream where it was."""

    def __init__(self, cfg: SharedNormConfig):
        from qa.training.negatives import read_mined

        self.cfg = cfg
        rng = random.Random(cfg.seed)
        examples = [e for e in read_squad(cfg.train) if e.answers]
        rng.shuffle(examples)
        mined = read_mined(cfg.negatives)
        # the mined prefix of the seeded order: mining more later extends it, never reorders it
        self.squad: list[SquadExample] = []
        for e in examples:
            if e.id not in mined:
                break
            self.squad.append(e)
        self.mined = mined
        self.drop = random.Random(cfg.seed + 1)
        self.heads: dict[str, str] | None = None
        if cfg.headers is not None:
            self.heads = json.loads(Path(cfg.headers).read_text(encoding="utf-8"))
        self.press: list[Group] = []
        if cfg.press is not None and cfg.press_negatives is not None:
            self.press = press_groups(cfg.press, cfg.press_negatives)
            random.Random(cfg.seed + 2).shuffle(self.press)
        log.info(
            "streams: %d SQuAD questions with negatives, %d press groups", len(self.squad), len(self.press)
        )

    def squad_group(self, i: int) -> Group:
        e: SquadExample = self.squad[i % len(self.squad)]
        negs = self.mined[e.id].negatives
        n = self.cfg.negatives_per_group
        # drop the gold for a fixed share, chosen by a hash of the position (stable on resume)
        if random.Random(self.cfg.seed * 1_000_003 + i).random() < self.cfg.no_answer_share and len(negs) > n:
            return Group(e.id, e.question, None, -1, "", negs[: n + 1])
        return Group(e.id, e.question, e.context, e.answer_start, e.answers[0], negs[:n])

    def take(self, state: dict[str, int]) -> Group:
        """The next group; advances ``state`` ("squad", "press", "groups")."""
        k = state["groups"]
        state["groups"] = k + 1
        if self.press and k % self.cfg.press_every == self.cfg.press_every - 1:
            g = self.press[state["press"] % len(self.press)]
            state["press"] += 1
            if self.cfg.press_answer == "any" and g.alternatives:
                # a hash of the position picks the target (stable on resume)
                pick = random.Random(self.cfg.seed * 1_000_003 + 7 + k).randrange(len(g.alternatives) + 1)
                if pick:
                    start, text = g.alternatives[pick - 1]
                    g = replace(g, answer_start=start, answer=text)
            return g
        g = self.squad_group(state["squad"])
        state["squad"] += 1
        return g


def press_groups(rows_path: str, mined_path: str) -> list[Group]:
    """Press rows as groups: the gold passage (the project's passage that holds the evidence) and
    mined negatives; unanswerable rows read their negatives only and target "no answer"."""
    from qa.training.negatives import read_mined

    mined = read_mined(mined_path)
    out: list[Group] = []
    for line in Path(rows_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        m = mined.get(r["id"])
        if m is None:
            continue
        q = m.query if m.query is not None else r["question"]
        if r["answers"] and m.gold is not None and m.gold_start >= 0:
            first = r["answers"][0]
            alts = tuple(
                (m.gold_start + first.find(a), a)
                for a in dict.fromkeys(r["answers"][1:])
                if a.strip() and a != first and a in first
            )
            out.append(Group(r["id"], q, m.gold, m.gold_start, first, m.negatives[:2], alts))
        elif not r["answers"]:
            out.append(Group(r["id"], q, None, -1, "", m.negatives[:3]))
    return out


STREAM_KEYS = ("squad", "press", "groups")
"""The parts of a run's state that say how far each data stream got (``Streams.take``)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """A step's groups, featurised and collated, and the streams' state once they were taken."""

    wins: list[Window]
    groups: list[list[int]]
    press: list[bool]
    """Per group: whether it came from the press stream."""
    tensors: dict[str, Any]
    streams: dict[str, int]


def batches(
    streams: Streams, tokenizer: Any, cfg: SharedNormConfig, state: dict[str, int]
) -> Iterator[Batch]:
    """The run's batches from ``state`` on, in the seeded order (``state`` itself is not changed:
    the loop takes a batch's stream positions when it has trained on it)."""
    at = {k: state[k] for k in STREAM_KEYS}
    pad_id = tokenizer.pad_token_id or 0
    while True:
        wins: list[Window] = []
        groups: list[list[int]] = []
        press: list[bool] = []
        while len(groups) < cfg.groups_per_batch:
            before = at["press"]
            g = featurize(tokenizer, streams.take(at), cfg, streams.heads)
            if g:
                groups.append(list(range(len(wins), len(wins) + len(g))))
                press.append(at["press"] != before)
                wins.extend(g)
        yield Batch(wins, groups, press, collate(wins, pad_id), dict(at))


class Prefetch:
    """Items of an iterator made ahead on a thread (``depth`` at most waiting), so featurising the
    next batch on the host overlaps the model's step: an H200 read only 503 windows/s when the two
    took turns (2026-12-04). An error on the thread is raised by ``get``."""

    def __init__(self, items: Iterator[Any], depth: int = 2):
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            self._put(_Failed(e))

    def get(self) -> Any:
        item = self._queue.get()
        if isinstance(item, _Failed):
            raise item.error
        return item

    def close(self) -> None:
        self._closed.set()
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


REWARM_WINDOWS = 2000
"""Windows over which a run resumed without optimizer state warms its rate up again."""


def _lr(cfg: SharedNormConfig, seen: int, *, rewarm_from: int | None = None, time_frac: float = 0.0) -> float:
    """The rate after ``seen`` windows: linear warm-up, then linear decay to 0 at the target (or,
    ``time_frac`` > 0, at the time budget if that comes first)."""
    if rewarm_from is not None:
        return _lr(cfg, seen, time_frac=time_frac) * min(1.0, (seen - rewarm_from + 1) / REWARM_WINDOWS)
    frac = max(seen / cfg.target_windows, time_frac)
    if frac < cfg.warmup:
        return cfg.lr * frac / cfg.warmup
    return cfg.lr * max(0.0, (1 - frac) / (1 - cfg.warmup))


OPTIMIZER = "optimizer.safetensors"
"""The optimiser's moments and the RNG state, as tensors (nothing pickled)."""


def _optimizer_state(opt: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import torch

    sd = opt.state_dict()
    tensors = {
        f"state.{pid}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
        for pid, st in sd["state"].items()
        for k, v in st.items()
    }
    tensors["rng"] = torch.get_rng_state()
    return tensors, sd["param_groups"]


def _restore_optimizer(opt: Any, tensors: dict[str, Any], groups: list[dict[str, Any]]) -> None:
    import torch

    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng"].cpu())


def _save(model: Any, tokenizer: Any, opt: Any, out: Path, meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    # the optimiser and the RNG (dropout): a resumed run continues exactly as an unstopped one
    tensors, groups = _optimizer_state(opt)
    save_file(tensors, tmp / OPTIMIZER)
    meta = {**meta, "optimizer_groups": groups}
    (tmp / "training.json").write_text(json.dumps(meta, indent=2))
    swap_in(tmp, out)


def train(cfg: SharedNormConfig, *, resume: bool = False) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from qa.answer.span_reader import READER_PATH

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    meta_prev: dict[str, Any] = {}
    if resume and (out / "training.json").is_file():
        meta_prev = json.loads((out / "training.json").read_text())
        if meta_prev.get("done"):
            log.info("the run in %s is done", out)
            return meta_prev
        src = out
    else:
        if resume and out.is_dir() and any(out.iterdir()):
            log.warning("%s has no training.json: not a whole checkpoint, starting over from the base", out)
        src = Path(cfg.base) if cfg.base is not None else READER_PATH
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModelForQuestionAnswering.from_pretrained(src, dtype=torch.float32).float()
    if cfg.layers is not None and not meta_prev:  # a resumed student has its layers already
        model = keep_layers(model, cfg.layers)
    model = model.to(device)
    model.train()
    teacher = None
    if cfg.teacher is not None:
        teacher = AutoModelForQuestionAnswering.from_pretrained(cfg.teacher, dtype=torch.float32).float()
        teacher = teacher.to(device).eval()
    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    from safetensors.torch import load_file

    rewarm = False
    if meta_prev and (out / OPTIMIZER).is_file():
        _restore_optimizer(opt, load_file(out / OPTIMIZER, device=device), meta_prev["optimizer_groups"])
    elif meta_prev:
        # an exported reader copied back as a checkpoint: its weights and place in the schedule, but
        # AdamW's moments are gone; fresh moments at full rate jolt the weights, so warm up again
        rewarm = True
        log.warning("%s has no optimizer state: fresh AdamW moments, the rate warmed up again", out)
    state = dict(meta_prev.get("state", {"squad": 0, "press": 0, "groups": 0, "windows": 0, "steps": 0}))
    history: list[dict[str, Any]] = list(meta_prev.get("history", []))
    seconds = float(meta_prev.get("seconds", 0.0))
    base_meta = meta_prev.get("base_training")
    if base_meta is None and (src / "training.json").is_file() and not meta_prev:
        base_meta = json.loads((src / "training.json").read_text())

    streams = Streams(cfg)
    dev: list[SquadExample] = []
    if cfg.dev is not None:
        dev = [e for e in read_squad(cfg.dev) if e.answers]
        random.Random(13).shuffle(dev)  # the same 300 questions as the first reader's curve
        dev = dev[: cfg.dev_questions]
    start = time.monotonic()
    last_ckpt = start
    budget = cfg.max_minutes * 60 if cfg.max_minutes is not None else math.inf
    loss_avg = float(history[-1]["loss"]) if history else 0.0
    windows_before = state["windows"]
    waited = 0.0

    def meta(done: bool) -> dict[str, Any]:
        return {
            "kind": "shared-norm",
            "config": asdict(cfg),
            "base_training": base_meta,
            "device": device,
            "state": state,
            "seconds": round(seconds + time.monotonic() - start, 1),
            "history": history,
            "done": done,
        }

    def checkpoint(done: bool) -> None:
        if history and history[-1]["windows"] == state["windows"]:  # nothing read since: save only
            _save(model, tokenizer, opt, out, meta(done))
            return
        scores: dict[str, float] = {}
        if dev:
            rc = ReaderTrainConfig(
                train=cfg.train, dev=cfg.dev, out=cfg.out, max_length=cfg.max_length, stride=cfg.stride
            )
            scores = evaluate_reader(model, tokenizer, dev, rc)
        history.append(
            {
                "windows": state["windows"],
                "groups": state["groups"],
                "loss": loss_avg,
                "precision": cfg.precision,
                **scores,
            }
        )
        log.info("checkpoint at %d windows: loss %.3f %s", state["windows"], loss_avg, scores)
        _save(model, tokenizer, opt, out, meta(done))

    stop_at = windows_before + cfg.stop_after_windows if cfg.stop_after_windows else math.inf
    # the batches are made on a thread with a tokenizer of its own (a fast tokenizer's settings
    # are not safe to change from two threads, and the checkpoint's dev score uses this one)
    ahead = Prefetch(batches(streams, AutoTokenizer.from_pretrained(src), cfg, state))
    with ahead, StopRequest() as stop:  # SIGTERM/SIGINT: finish the step, save below, return
        while (
            state["windows"] < min(cfg.target_windows, stop_at)
            and time.monotonic() - start < budget
            and not stop.requested
        ):
            t0 = time.perf_counter()
            b = ahead.get()
            waited += time.perf_counter() - t0
            wins, groups, batch = b.wins, b.groups, dict(b.tensors)
            timed = (time.monotonic() - start) / budget if cfg.decay_by_time else 0.0
            lr = _lr(cfg, state["windows"], rewarm_from=windows_before if rewarm else None, time_frac=timed)
            for pg in opt.param_groups:
                pg["lr"] = lr
            valid = batch.pop("valid").to(device)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                o = model(**{k: v.to(device) for k, v in batch.items()})
            w = None if teacher is None else distill_weights(cfg, b.press).to(device)
            gold_share = None if w is None else 1 - w
            loss = group_loss(o.start_logits.float(), o.end_logits.float(), valid, groups, wins, gold_share)
            if teacher is not None:
                with (
                    torch.no_grad(),
                    torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"),
                ):
                    t = teacher(**{k: v.to(device) for k, v in batch.items()})
                loss = loss + distill_loss(
                    o.start_logits.float(),
                    o.end_logits.float(),
                    t.start_logits.float(),
                    t.end_logits.float(),
                    valid,
                    groups,
                    cfg.temperature,
                    w,
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            state.update(b.streams)
            state["steps"] += 1
            state["windows"] += len(wins)
            loss_avg = 0.98 * loss_avg + 0.02 * loss.item() if loss_avg else loss.item()
            if state["steps"] % 10 == 0:
                el = time.monotonic() - start
                rate = (state["windows"] - windows_before) / max(el, 1e-9)
                # the share of the time the step waited for the host to featurise a batch (made
                # ahead on a thread): near 0 when the model's step is the bottleneck
                log.info(
                    "step %d  windows %d  groups %d  loss %.3f  lr %.2e  %.2f windows/s  host wait %.0f%%",
                    *(state["steps"], state["windows"], state["groups"], loss_avg, lr, rate),
                    100 * waited / max(el, 1e-9),
                )
            if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                checkpoint(False)
                last_ckpt = time.monotonic()
    checkpoint(state["windows"] >= cfg.target_windows)
    return meta(state["windows"] >= cfg.target_windows)


CARD_HEAD = """# release-qa neural reader

A span-extraction reader (BertForQuestionAnswering, MiniLM-L6) trained by this project in {stages} stages.

## Stage 1: single windows of SQuAD v1.1 train

{base}
"""

SHARED_NORM_INTRO = """\
Each example is a group: a question with its gold passage and passages the project's own
hybrid retrieval returned that lack the answer, scored under one softmax over every token of every
window and each window's [CLS] ("no answer"); {no_answer:.0%} of the SQuAD groups drop the gold
passage and target "no answer". Press QA rows of press-train (written for this project over the
White House archive; unanswerable ones target "no answer") are interleaved, one group in
{press_every}.

- Data: SQuAD v1.1 train (CC BY-SA 4.0) questions in a seeded order with mined negatives
  (`release-qa mine-negatives`); press-train with its passages (`release-qa mine-press`)."""

RUN_SECTION = """
## Stage {stage}: open-corpus answering (shared normalisation){cont}

{intro}
- Seen: {windows:,} windows in {groups:,} groups ({squad:,} SQuAD, {press:,} press), {steps:,}
  steps of {gpb} groups, one press group in {press_every}; schedule over {target:,} windows (lr {lr},
  linear warm-up and decay).
- Trained on: {device} ({precision}), {minutes:.0f} minutes; {state}.
- Command: `{command}` (`--resume` continues a run; `make train-reader` runs the schedule).{distilled}

Learning curve (300 SQuAD v1.1 dev-shared questions, gold paragraph):

| windows seen | train loss | EM | F1 |
|---|---|---|---|
{curve}
"""


COMMAND_FLAGS = (
    ("base", "--base"),
    ("teacher", "--teacher"),
    ("layers", "--layers"),
    ("distill_weight", "--distill-weight"),
    ("distill_groups", "--distill-groups"),
    ("press", "--press"),
    ("press_negatives", "--press-negatives"),
    ("press_every", "--press-every"),
    ("press_answer", "--press-answer"),
    ("groups_per_batch", "--groups-per-batch"),
    ("lr", "--lr"),
    ("target_windows", "--target-windows"),
    ("precision", "--precision"),
    ("seed", "--seed"),
    ("headers", "--headers"),
)
"""The settings a model card's command shows, in this order (the rest are paths, defaults and a
session's time budget: the card's "Seen" line says where a run stopped)."""


def run_command(cfg: dict[str, Any]) -> str:
    """The ``release-qa train-open-reader`` call that makes a run with these settings."""
    parts = ["release-qa train-open-reader"]
    for key, flag in COMMAND_FLAGS:
        v = cfg.get(key)
        if v is None or (key in ("distill_weight", "distill_groups") and not cfg.get("teacher")):
            continue
        if key == "press_answer" and v == "first":  # the default, and every run before it existed
            continue
        if key == "layers":
            v = ",".join(str(i) for i in v)
        parts.append(f"{flag} {v}")
    if cfg.get("freeze_word_embeddings"):
        parts.append("--freeze-word-embeddings")
    if cfg.get("decay_by_time"):  # the schedule's length is then partly the time budget
        parts.append(f"--max-minutes {cfg['max_minutes']} --decay-by-time")
    return " ".join(parts)


def _teacher(cfg: dict[str, Any]) -> str:
    """The teacher as a card names it: a path, or the reader the run started from."""
    if cfg.get("teacher") == cfg.get("base"):
        return f"the reader it started from (`{cfg['teacher']}`)"
    return f"`{cfg['teacher']}`"


def _precision_story(history: Sequence[dict[str, Any]]) -> str:
    """ "fp32", or where the run changed precision: "fp32, bf16 from 16,409 windows"."""
    parts: list[str] = []
    last: str | None = None
    for h in history:
        p = h.get("precision", "fp32")  # rows before the setting existed were float32
        if p != last:
            parts.append(p if last is None else f"{p} from {h['windows']:,} windows")
            last = p
    return ", ".join(parts) or "fp32"


def shared_norm_runs(meta: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The shared-norm runs behind a reader, oldest first (a run can start from another's export,
    whose log it keeps as ``base_training``), and the stage-1 log they started from (or None)."""
    runs: list[dict[str, Any]] = []
    m: dict[str, Any] | None = meta
    while m is not None and m.get("kind") == "shared-norm":
        runs.insert(0, m)
        m = m.get("base_training")
    return runs, m


def _run_section(meta: dict[str, Any], stage: int) -> str:
    cfg, st = meta["config"], meta["state"]
    nan = float("nan")
    # a run saved twice at the same windows (before 2d932a7) logged its last row twice: show it once
    history = [
        h
        for i, h in enumerate(meta["history"])
        if i == 0 or h["windows"] != meta["history"][i - 1]["windows"]
    ]
    curve = [
        f"| {h['windows']:,} | {h['loss']:.2f} | {h.get('em', nan):.3f} | {h.get('f1', nan):.3f} |"
        for h in history
    ]
    first = stage == 2
    return RUN_SECTION.format(
        stage=stage,
        cont="" if first else ", continued",
        intro=SHARED_NORM_INTRO.format(no_answer=cfg["no_answer_share"], press_every=cfg["press_every"])
        if first
        else f"From the stage {stage - 1} reader's weights: groups of the same kind, a new schedule.\n",
        windows=st["windows"],
        groups=st["groups"],
        squad=st["squad"],
        press=st["press"],
        steps=st["steps"],
        gpb=cfg["groups_per_batch"],
        press_every=cfg["press_every"],
        target=cfg["target_windows"],
        lr=cfg["lr"],
        device=meta["device"],
        precision=_precision_story(meta["history"]),
        minutes=meta["seconds"] / 60,
        state="done" if meta["done"] else "in progress (a checkpoint of a longer run)",
        command=run_command(cfg),
        curve="\n".join(curve) or "| – | – | – | – |",
        distilled=(
            f"\n- Distilled from {_teacher(cfg)} (weight {cfg.get('distill_weight')} on "
            f"{cfg.get('distill_groups', 'all')} groups, temperature "
            f"{cfg.get('temperature')})"
            + (f"; encoder layers {list(cfg['layers'])} of its base kept" if cfg.get("layers") else "")
            + "; its train loss includes the teacher's term."
            if cfg.get("teacher")
            else ""
        ),
    )


def open_reader_card(meta: dict[str, Any]) -> str:
    from qa.training.reader import model_card

    runs, base = shared_norm_runs(meta)
    head = CARD_HEAD.format(
        stages=len(runs) + 1,
        base=model_card(base).split("\n", 2)[2].strip()
        if base
        else "(none: started from the packaged MiniLM)",
    )
    return head + "".join(_run_section(r, k) for k, r in enumerate(runs, 2))
