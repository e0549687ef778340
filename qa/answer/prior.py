"""How likely a sentence of a release is to hold what a user asks about, before the question is
known: photo captions, "About <agency>" boilerplate, datelines, contact blocks and "Click here"
lines rarely do. Nothing here names those: a logistic regression over hashed surface tokens of the
sentence (its words, its first word, its length, where it sits, its capitals, links and
punctuation) learns it from which sentences press-train's questions are answered in
(``qa.training.prior``). The neural answerer's calibration takes its log-odds as a feature
(``sentence_prior``), so the ablation shows what it adds.

Persistence: ``weights.npy`` (float32, one per hash bucket) and ``prior.json`` (bias, bits and how it
was trained), no pickle.
"""

from __future__ import annotations

import json
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PRIOR_PATH = Path(__file__).parents[1] / "models" / "sentence_prior"

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d")
_END = (".", "!", "?", '"', "\u201d", "'", "\u2019", ")")


def sentence_tokens(text: str, position: float) -> list[str]:
    """The surface tokens a sentence is scored on: lowercased words (digits as 0), the first word,
    and shape tokens. ``position``: where the sentence starts in its release, 0 to 1."""
    words = _WORD.findall(text)
    out = [_DIGITS.sub("0", w.lower()) for w in words]
    if words:
        out.append("^" + out[0])
    n = len(words)
    capital = sum(w[:1].isupper() for w in words) / n if n else 0.0
    out += [
        f"#len:{min(int(math.log2(n + 1)), 7)}",
        f"#pos:{min(int(position * 10), 9)}",
        f"#capitals:{int(capital * 4)}",
    ]
    stripped = text.rstrip()
    if not stripped.endswith(_END):
        out.append("#no-end-stop")
    if stripped.endswith(":"):
        out.append("#ends-colon")
    if "@" in text:
        out.append("#at-sign")
    if "http" in text or "www." in text:
        out.append("#link")
    if "\n" in text.strip():
        out.append("#lines")
    return out


def hashed(tokens: Sequence[str], bits: int) -> np.ndarray:
    """Bucket ids of the tokens (crc32, stable across runs and machines)."""
    mask = (1 << bits) - 1
    return np.fromiter((zlib.crc32(t.encode()) & mask for t in tokens), dtype=np.int64, count=len(tokens))


@dataclass(frozen=True, slots=True, eq=False)
class SentencePrior:
    """Log-odds that a sentence holds an asked-about answer, from its surface alone."""

    weights: np.ndarray
    bias: float
    bits: int
    info: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not 8 <= self.bits <= 24:
            raise ValueError(f"bits must be in [8, 24], got {self.bits!r}")
        if self.weights.shape != (1 << self.bits,):
            raise ValueError(f"weights of shape {self.weights.shape} for {self.bits} bits")

    def log_odds(self, texts: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """One log-odds per sentence."""
        out = np.empty(len(texts), dtype=np.float64)
        for i, (t, p) in enumerate(zip(texts, positions, strict=True)):
            out[i] = self.bias + float(self.weights[hashed(sentence_tokens(t, p), self.bits)].sum())
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``weights.npy`` and ``prior.json`` into the folder ``path``, each atomically."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".weights.{os.getpid()}.npy"
        np.save(tmp, self.weights.astype(np.float32))
        os.replace(tmp, d / "weights.npy")
        meta = {
            "bits": self.bits,
            "bias": self.bias,
            "tokens": "qa.answer.prior.sentence_tokens",
            **(self.info or {}),
        }
        tmp = d / f".prior.{os.getpid()}.json"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, d / "prior.json")
        return d

    @classmethod
    def load(cls, path: str | os.PathLike[str] = PRIOR_PATH) -> SentencePrior:
        d = Path(path)
        meta = json.loads((d / "prior.json").read_text())
        weights = np.load(d / "weights.npy")  # numpy refuses pickled objects by default
        info = {k: v for k, v in meta.items() if k not in ("bits", "bias", "tokens")}
        return cls(weights.astype(np.float32), float(meta["bias"]), int(meta["bits"]), info)


def prior_available(path: str | os.PathLike[str] = PRIOR_PATH) -> bool:
    d = Path(path)
    return (d / "prior.json").is_file() and (d / "weights.npy").is_file()
