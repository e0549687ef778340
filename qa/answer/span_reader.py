"""The span reader: a MiniLM span-extraction model, fine-tuned by the project on SQuAD v1.1 train.

It reads the question with each of the top passages (windowed when a passage is longer than the
model's window) and returns the best span that lies within one sentence, with its start+end logit
score and the window's no-answer score. Inference runs on ONNX Runtime: the shipped fp16 weights
(``qa/models/reader``) are exported to an fp32 ONNX file with fused attention once and cached
beside the encoder's, and quantized to int8 from it once when the settings ask for int8.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qa.text import MONTHS

logger = logging.getLogger(__name__)

READER_PATH = Path(__file__).parents[1] / "models" / "reader"

Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")


@dataclass(frozen=True, slots=True)
class SpanReaderSettings:
    """``max_length``/``stride``: the window the model reads; ``max_answer_tokens``: the longest span."""

    max_length: int = 256
    stride: int = 96
    max_answer_tokens: int = 30
    batch_size: int = 8
    """Windows per ONNX run at fp32 (int8 reads one at a time: ``SpanReader.logits``)."""
    max_question_tokens: int = 64
    """The reader reads at most this many of the question's word pieces (its follow-up context
    included), as in training; a longer question would leave no room for the passage."""
    precision: Precision = "fp32"
    """"int8": ONNX Runtime's dynamic quantization of the exported model (int8 weights per output
    channel, activations quantized on the fly), made once beside the float export."""

    def __post_init__(self) -> None:
        if not 64 <= self.max_length <= 512:
            raise ValueError(f"max_length must be in [64, 512], got {self.max_length!r}")
        if not 0 <= self.stride < self.max_length // 2:
            raise ValueError(f"stride must be in [0, max_length/2), got {self.stride!r}")
        if self.max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be >= 1, got {self.max_answer_tokens!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if not 8 <= self.max_question_tokens <= self.max_length // 2:
            raise ValueError(
                f"max_question_tokens must be in [8, max_length/2], got {self.max_question_tokens!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True, slots=True)
class ReadSpan:
    """The reader's best span of one text: character offsets into that text, its score, the
    no-answer score of the window it came from, and its share of all spans' probability mass."""

    start: int
    end: int
    score: float
    null: float
    prob: float


def reader_available(path: str | os.PathLike[str] = READER_PATH) -> bool:
    p = Path(path)
    return (p / "config.json").is_file() and any(p.glob("*.safetensors"))


EXPORT = "fused-attention-2"
"""How the ONNX file is made (part of its cache key, so a file of an older export is remade)."""


def _key(path: Path) -> str:
    """What the ONNX file is made from: the export, the model's config and weights (not the
    calibration or the training log beside them: refitting the decision need not re-export)."""
    h = hashlib.sha256(EXPORT.encode())
    for f in sorted(path.glob("*")):
        if f.is_file() and (f.name == "config.json" or f.suffix == ".safetensors"):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def export_reader_onnx(model_dir: Path, out: Path) -> Path:
    """Export a question-answering checkpoint to ONNX (fp32) with ONNX Runtime's BERT fusions,
    atomically.

    Exported with eager attention, not PyTorch's SDPA: only that graph's attention is recognised
    by ``onnxruntime.transformers.optimizer``, which fuses each layer's attention, the embeddings'
    layer norm and GELU into single kernels. On 2 quiet cores, 3 windows of 180 tokens: int8 of the
    fused graph 0.75x the time of int8 of the SDPA graph (61 vs 82 ms); float logits within 1e-5
    of the unfused model's. The residual adds and their layer norms stay apart (2026-12-06: int8
    windows of 250 tokens 0.78x the time of the graph with them fused; ``SLOW_FUSIONS``)."""
    import torch
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModelForQuestionAnswering

    model = (
        AutoModelForQuestionAnswering.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation="eager"
        )
        .float()
        .eval()
    )

    class Wrapped(torch.nn.Module):
        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            o = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return o.start_logits, o.end_logits

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    dummy = torch.ones((1, 16), dtype=torch.long)
    axes = {0: "batch", 1: "seq"}
    with torch.inference_mode():
        torch.onnx.export(
            Wrapped(model),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["start_logits", "end_logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes},
            opset_version=17,
            dynamo=False,
        )
    try:
        cfg = model.config
        fusions = FusionOptions("bert")
        # residual adds stay apart from their layer norms: ONNX Runtime's fused SkipLayerNorm
        # kernel is the slow one (``SLOW_FUSIONS``)
        fusions.enable_skip_layer_norm = fusions.enable_bias_skip_layer_norm = False
        fused = optimize_model(
            str(tmp),
            model_type="bert",
            num_heads=cfg.num_attention_heads,
            hidden_size=cfg.hidden_size,
            optimization_options=fusions,
            opt_level=1,  # the fusions only: ONNX Runtime applies its own graph optimisations at load
        )
        logger.info("reader export fused: %s", fused.get_fused_operator_statistics())
        fused.save_model_to_file(str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


HEADER_WORDS = 20
"""How many of a title's words a passage's header keeps."""


def header_text(title: str, date: dt.date | None) -> str:
    """What a reader trained with headers reads before each passage: its release's title and
    date, where questions name the event and the year (2026-12-06: read so, the shipped reader's
    best guesses gained on SQuAD's tuning half and press-tune before any training). The span
    search never answers from it."""
    words = " ".join(title.split()[:HEADER_WORDS])
    when = f" ({MONTHS[date.month - 1]} {date.day}, {date.year})" if date else ""
    return f"{words}{when}.\n"


def reads_headers(path: str | os.PathLike[str]) -> bool:
    """Whether the reader in ``path`` was trained reading ``header_text`` before each passage
    (its last run's ``headers``, in the ``training.json`` beside the weights)."""
    p = Path(path) / "training.json"
    if not p.is_file():
        return False
    return json.loads(p.read_text(encoding="utf-8")).get("config", {}).get("headers") is not None


class SpanReader:
    """Reads (question, text) pairs; cheap to construct, the model loads on first use."""

    def __init__(
        self, path: str | os.PathLike[str] = READER_PATH, settings: SpanReaderSettings | None = None
    ):
        self.path = Path(path)
        if not reader_available(self.path):
            raise FileNotFoundError(f"no reader model in {self.path} (config.json and *.safetensors)")
        self.settings = settings if settings is not None else SpanReaderSettings()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    @functools.cached_property
    def reads_headers(self) -> bool:
        """Whether this reader reads each passage under ``header_text`` (how it was trained)."""
        return reads_headers(self.path)

    @functools.cached_property
    def onnx_path(self) -> Path:
        """The float export, keyed by a hash of the weights (read once: they are 45 MB)."""
        from qa.embedding import onnx_cache_dir

        return onnx_cache_dir() / f"reader-{_key(self.path)}.onnx"

    def model_file(self) -> Path:
        """The ONNX file this reader runs (its precision), exporting or quantizing it first if needed."""
        if not self.onnx_path.is_file():
            logger.info("exporting the reader to %s", self.onnx_path)
            export_reader_onnx(self.path, self.onnx_path)
        if self.settings.precision == "fp32":
            return self.onnx_path
        from qa.embedding import quantize_int8

        out = self.onnx_path.with_name(f"{self.onnx_path.stem}-int8.onnx")
        if not out.is_file():
            logger.info("quantizing the reader to int8 at %s", out)
            quantize_int8(self.onnx_path, out)
        return out

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                from transformers import AutoTokenizer

                from qa.embedding import onnx_session

                self._session = onnx_session(self.model_file(), min(2, os.cpu_count() or 1))
                self._tokenizer = AutoTokenizer.from_pretrained(self.path)
        return self._session, self._tokenizer

    def warm(self) -> None:
        """Load (exporting on first use) now, so the first question is as fast as the rest."""
        self._load()

    def read_spans(
        self,
        question: str,
        texts: Sequence[str],
        sentence_starts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[list[ReadSpan]]:
        """The best span in each sentence of each text, for one question, in text order.

        ``sentence_starts``: offsets where a text's sentences begin; a span never crosses one (None:
        the whole text is one sentence). ``prob`` is normalised over every span of every text, so
        it compares across texts."""
        if not texts:
            return []
        starts = list(sentence_starts) if sentence_starts is not None else [None] * len(texts)
        enc = self.tokenize(question, texts)
        start_logits, end_logits = self.logits(enc)
        return self.spans(enc, start_logits, end_logits, starts)

    def tokenize(self, question: str, texts: Sequence[str]) -> Any:
        """The question with each text as model windows (``windows``), the question cut to
        ``max_question_tokens`` word pieces."""
        _, tok = self._load()
        st = self.settings
        pieces = tok.tokenize(question)
        if len(pieces) > st.max_question_tokens:  # the question's start: where its subject is
            question = tok.convert_tokens_to_string(pieces[: st.max_question_tokens])
        return windows(tok, [question] * len(texts), texts, st.max_length, st.stride)

    def logits(self, enc: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start and end logits of every window, unpadded, in window order.

        Float windows run longest first, in batches of up to ``batch_size`` whose lengths are
        within ``PAD_SLACK`` of the batch's longest: padding costs as much as text (3 windows of
        120-180 tokens ran in 0.76x the time one at a time than padded together). Int8 windows
        run one at a time: the dynamic quantization scales activations over the whole batch, so
        a window batched with another read differently (a margin moved by 1.4 on the seed's
        caption), and an answer should not depend on which passages were read beside it."""
        session, _ = self._load()
        lengths = [len(ids) for ids in enc["input_ids"]]
        size = self.settings.batch_size if self.settings.precision == "fp32" else 1
        start_logits: list[np.ndarray] = [np.empty(0, np.float32)] * len(lengths)
        end_logits: list[np.ndarray] = [np.empty(0, np.float32)] * len(lengths)
        for rows in length_batches(lengths, size):
            width = lengths[rows[0]]
            ids = np.zeros((len(rows), width), dtype=np.int64)
            tt = np.zeros_like(ids)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                k = lengths[i]
                ids[r, :k] = enc["input_ids"][i]
                tt[r, :k] = enc["token_type_ids"][i]
                mask[r, :k] = 1
            s, e = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})
            for r, i in enumerate(rows):
                start_logits[i] = s[r, : lengths[i]]
                end_logits[i] = e[r, : lengths[i]]
        return start_logits, end_logits

    def spans(
        self,
        enc: Any,
        start_logits: Sequence[np.ndarray],
        end_logits: Sequence[np.ndarray],
        starts: Sequence[Sequence[int] | None],
    ) -> list[list[ReadSpan]]:
        """The best span of each sentence of each text over its windows, ``prob`` normalised over
        every window read."""
        best: list[dict[int, tuple[float, int, int, float]]] = [{} for _ in starts]
        mass: list[float] = []
        for w in range(len(start_logits)):
            t = enc["overflow_to_sample_mapping"][w]
            found, log_mass = spans_in_window(
                start_logits[w],
                end_logits[w],
                enc["offset_mapping"][w],
                enc.sequence_ids(w),
                starts[t],
                self.settings.max_answer_tokens,
            )
            if not found:
                continue
            null = float(start_logits[w][0] + end_logits[w][0])
            mass.append(log_mass)
            for score, a, b, sent in found:
                cur = best[t].get(sent)
                if cur is None or score > cur[0]:
                    best[t][sent] = (score, a, b, null)
        total = float(np.logaddexp.reduce(mass)) if mass else 0.0
        return [
            [
                ReadSpan(a, b, score, null, float(np.exp(score - total)))
                for _, (score, a, b, null) in sorted(d.items())
            ]
            for d in best
        ]


PAD_SLACK = 0.1
"""A window joins a batch when it is at most this much shorter than the batch's longest."""


def length_batches(lengths: Sequence[int], size: int, slack: float = PAD_SLACK) -> list[list[int]]:
    """Indices of ``lengths``, longest first, cut into batches of at most ``size`` whose members
    are within ``slack`` of the batch's first (longest) length."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        last = batches[-1] if batches else None
        if last is not None and len(last) < size and lengths[i] >= (1 - slack) * lengths[last[0]]:
            last.append(i)
        else:
            batches.append([i])
    return batches


def windows(
    tokenizer: Any,
    questions: Sequence[str],
    texts: Sequence[str],
    max_length: int,
    stride: int,
    **kwargs: Any,
) -> Any:
    """(question, text) pairs as model windows: a long text is cut into overlapping windows, with
    character offsets and the window -> pair mapping (how training and reading both see a text)."""
    return tokenizer(
        list(questions),
        list(texts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        **({"padding": False} | kwargs),
    )


def spans_in_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    seq_ids: Sequence[int | None],
    sentence_starts: Sequence[int] | None,
    max_answer_tokens: int,
) -> tuple[list[tuple[float, int, int, int]], float]:
    """The best valid span of each sentence in one window as (score, char start, char end, sentence
    index), and the log-sum-exp of every valid span's score (to normalise across windows)."""
    idx = np.flatnonzero(np.array([s == 1 for s in seq_ids], dtype=bool))
    if not len(idx):
        return [], 0.0
    sl, el = start_logits[idx], end_logits[idx]
    n = len(idx)
    i, j = np.indices((n, n))
    valid = (j >= i) & (j < i + max_answer_tokens)
    if sentence_starts:
        sent = np.array([bisect.bisect_right(sentence_starts, offsets[k][0]) for k in idx])
        valid &= sent[:, None] == sent[None, :]
    else:
        sent = np.zeros(n, dtype=np.int64)
    scores = np.where(valid, sl[:, None] + el[None, :], -np.inf)
    out: list[tuple[float, int, int, int]] = []
    for g in np.unique(sent):
        rows = np.flatnonzero(sent == g)
        sub = scores[rows]
        flat = int(np.argmax(sub))
        r, b = divmod(flat, n)
        if np.isfinite(sub[r, b]):
            out.append((float(sub[r, b]), offsets[idx[rows[r]]][0], offsets[idx[b]][1], int(g)))
    return out, float(np.logaddexp.reduce(scores[valid]))


def best_span_in_window(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    seq_ids: Sequence[int | None],
    sentence_starts: Sequence[int] | None,
    max_answer_tokens: int,
) -> tuple[float, int, int, float] | None:
    """(score, char start, char end, log-sum-exp of all valid spans) of the best valid span."""
    spans, log_mass = spans_in_window(
        start_logits, end_logits, offsets, seq_ids, sentence_starts, max_answer_tokens
    )
    if not spans:
        return None
    score, a, b, _ = max(spans)
    return score, a, b, log_mass
