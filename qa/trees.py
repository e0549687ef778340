"""Gradient-boosted trees as plain arrays: fitted by scikit-learn (``qa.training.sklearn_trees``),
shipped as JSON, scored with numpy alone. The feature answerer's span and sentence models and the
retriever's reranker are such trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def _number_leaves(m: TreeModel, tree: int, values: np.ndarray) -> list[tuple[int, float, int]]:
    """Number tree ``tree``'s leaves left to right (their values into ``values``); return its
    splits as (feature, threshold, bits of the leaves kept when the split is failed)."""
    splits: list[tuple[int, float, int]] = []
    count = 0

    def walk(node: int) -> tuple[int, int]:
        """The bit range [lo, hi) of the leaves under ``node``."""
        nonlocal count
        if m.leaf[tree, node]:
            if count == 64:
                raise ValueError("a tree with more than 64 leaves; retrain with fewer")
            values[count] = m.value[tree, node]
            count += 1
            return count - 1, count
        lo, mid = walk(int(m.left[tree, node]))
        _, hi = walk(int(m.right[tree, node]))
        left_bits = ((1 << mid) - 1) ^ ((1 << lo) - 1)
        splits.append((int(m.feature[tree, node]), float(m.threshold[tree, node]), ~left_bits & (2**64 - 1)))
        return lo, hi

    walk(0)
    return splits


@dataclass(frozen=True, slots=True)
class _BitmaskScorer:
    """Trees scored without walking them (QuickScorer, Lucchese et al. 2015): each tree's leaves
    are numbered left to right and each split carries the bitmask of the leaves left of it; a
    row's leaf is the lowest bit left after AND-ing the masks of the splits it fails. All tests
    of all trees are one comparison, so a question's ~600 candidates x 150 trees cost a few
    array passes instead of a gather per tree level."""

    feature: np.ndarray  # (splits,) int64: all trees' splits, padded per tree to the same count
    threshold: np.ndarray  # (splits,) float32
    mask: np.ndarray  # (trees, splits per tree) uint16/32/64: leaves kept when the split is failed
    values: np.ndarray  # (trees, 64) float32: leaf values, left to right

    @classmethod
    def of(cls, m: TreeModel) -> _BitmaskScorer:
        n_trees = len(m.feature)
        values = np.zeros((n_trees, 64), dtype=np.float32)
        splits = [_number_leaves(m, t, values[t]) for t in range(n_trees)]
        width = max(1, max(len(s) for s in splits))
        most = max(len(s) + 1 for s in splits)  # leaves of the largest tree
        dtype = np.uint16 if most <= 16 else np.uint32 if most <= 32 else np.uint64
        full = int(np.iinfo(dtype).max)
        feature = np.zeros((n_trees, width), dtype=np.int64)
        threshold = np.full((n_trees, width), np.inf, dtype=np.float32)  # padding always passes
        mask = np.full((n_trees, width), full, dtype=dtype)
        for t, mine in enumerate(splits):
            for j, (f, thr, bits) in enumerate(mine):
                feature[t, j], threshold[t, j], mask[t, j] = f, thr, bits & full
        return cls(feature.ravel(), threshold.ravel(), mask, values)

    def leaf_values(self, x: np.ndarray) -> np.ndarray:
        """(rows, trees) values of the leaf each row reaches in each tree."""
        n_trees, width = self.mask.shape
        passed = (x[:, self.feature] <= self.threshold).reshape(len(x), n_trees, width)
        # A passed split keeps every leaf: OR-ing its mask with all ones is AND-ing nothing away.
        kind = self.mask.dtype.type
        ones = passed.view(np.uint8).astype(self.mask.dtype) * kind(np.iinfo(self.mask.dtype).max)
        kept = np.bitwise_and.reduce(self.mask | ones, axis=2)
        lowest = kept & (~kept + kind(1))
        leaf = np.frexp(lowest.astype(np.float64))[1] - 1
        return self.values[np.arange(n_trees), leaf]


@dataclass(frozen=True, slots=True)
class TreeModel:
    """Gradient-boosted trees (from scikit-learn's HistGradientBoostingClassifier) as plain
    arrays, so shipping them needs JSON, not pickle, and predicting needs only numpy."""

    features: tuple[str, ...]
    baseline: float
    feature: np.ndarray  # (trees, nodes) int32
    threshold: np.ndarray  # (trees, nodes) float32
    left: np.ndarray  # (trees, nodes) int32
    right: np.ndarray  # (trees, nodes) int32
    value: np.ndarray  # (trees, nodes) float32
    leaf: np.ndarray  # (trees, nodes) bool
    link: str = "logistic"  # "identity" for a regressor (its output is the estimate itself)
    _scorer: _BitmaskScorer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scorer", _BitmaskScorer.of(self))

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = columns(x, self.features)
        return self.baseline + self._scorer.leaf_values(x).sum(axis=1)

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        return np.clip(z, 0.0, 1.0) if self.link == "identity" else 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, object]:
        """Compact: a node is [feature, threshold, left, right], a leaf is [value]."""

        def node(t: int, n: int) -> list[float]:
            if self.leaf[t, n]:
                return [float(f"{self.value[t, n]:.5g}")]
            return [
                int(self.feature[t, n]),
                float(np.format_float_positional(self.threshold[t, n], unique=True)),
                int(self.left[t, n]),
                int(self.right[t, n]),
            ]

        width = self.feature.shape[1]
        return {
            "kind": "trees",
            "link": self.link,
            "features": list(self.features),
            "baseline": float(self.baseline),
            "trees": [[node(t, n) for n in range(width)] for t in range(len(self.feature))],
        }

    @classmethod
    def from_dict(cls, d: dict[str, object], expected: Sequence[str]) -> TreeModel:
        feats = tuple(d["features"])  # type: ignore[arg-type]
        check_features(feats, expected)
        trees: list[list[list[float]]] = d["trees"]  # type: ignore[assignment]
        shape = (len(trees), max(len(t) for t in trees))
        feature, left, right = (np.zeros(shape, np.int32) for _ in range(3))
        threshold, value = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        leaf = np.ones(shape, np.bool_)
        for t, nodes in enumerate(trees):
            for n, nd in enumerate(nodes):
                if len(nd) == 1:
                    value[t, n] = nd[0]
                else:
                    leaf[t, n] = False
                    feature[t, n], threshold[t, n], left[t, n], right[t, n] = (
                        int(nd[0]),
                        nd[1],
                        int(nd[2]),
                        int(nd[3]),
                    )
        link = str(d.get("link", "logistic"))
        return cls(feats, float(d["baseline"]), feature, threshold, left, right, value, leaf, link)  # type: ignore[arg-type]


def check_features(model: Sequence[str], expected: Sequence[str]) -> None:
    """A model may know fewer features than this version computes (features are only ever
    appended), never different ones."""
    if tuple(expected[: len(model)]) != tuple(model):
        raise ValueError("model features do not match this version's features; retrain it")


def columns(x: np.ndarray, features: Sequence[str]) -> np.ndarray:
    if x.shape[-1] < len(features):
        raise ValueError(f"expected {len(features)} features, got {x.shape[-1]}")
    return x[..., : len(features)]
