"""scikit-learn's boosted trees as the answerer's ``TreeModel``: the one place that reads
``HistGradientBoosting*``'s private attributes (its fitted trees have no public accessor).

Tested on every run (``tests/test_answerer.py``): a scikit-learn that renames or reshapes these
attributes fails here, loudly, with the version named, rather than exporting wrong trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.trees import TreeModel

NODE_FIELDS = ("feature_idx", "num_threshold", "left", "right", "value", "is_leaf")


def fitted_trees(est: Any) -> tuple[float, list[np.ndarray]]:
    """(baseline prediction, each tree's node array) of a fitted single-output
    ``HistGradientBoostingClassifier`` (binary) or ``HistGradientBoostingRegressor``."""
    import sklearn

    try:
        predictors = est._predictors
        baseline = float(np.ravel(est._baseline_prediction)[0])
        trees = [p[0].nodes for p in predictors]
    except (AttributeError, IndexError, TypeError) as e:
        raise RuntimeError(
            f"scikit-learn {sklearn.__version__} no longer exposes the fitted trees as this project "
            f"reads them ({e}); see qa/training/sklearn_trees.py"
        ) from e
    missing = [f for f in NODE_FIELDS if trees and f not in (trees[0].dtype.names or ())]
    if missing:
        raise RuntimeError(
            f"scikit-learn {sklearn.__version__}: tree nodes lack {missing}; see qa/training/sklearn_trees.py"
        )
    return baseline, trees


def tree_model(est: Any, features: Sequence[str], link: str = "logistic") -> TreeModel:
    """The fitted estimator as a ``TreeModel`` (JSON-serialisable, scored without scikit-learn)."""
    baseline, trees = fitted_trees(est)
    width = max(len(t) for t in trees)

    def pad(name: str, dtype: type, fill: float) -> np.ndarray:
        out = np.full((len(trees), width), fill, dtype=dtype)
        for i, t in enumerate(trees):
            out[i, : len(t)] = t[name]
        return out

    return TreeModel(
        tuple(features),
        baseline,
        pad("feature_idx", np.int32, 0),
        pad("num_threshold", np.float32, 0.0),
        pad("left", np.int32, 0),
        pad("right", np.int32, 0),
        pad("value", np.float32, 0.0),
        pad("is_leaf", np.bool_, True),
        link,
    )
