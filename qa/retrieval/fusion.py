"""Reciprocal rank fusion: one ranking from several, by rank alone (scores of different kinds
do not compare)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[K, float]]],
    k: int,
    rrf_k: int = 10,
    weights: Sequence[float] | None = None,
) -> list[tuple[K, float]]:
    """The top ``k`` ids by the sum of w / (rrf_k + rank) over the rankings they appear in (rank
    from 1; w: the ranking's weight, 1 unless ``weights`` says); ties go to the smaller id, so
    the order is deterministic."""
    if weights is not None and len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: dict[K, float] = {}
    for n, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[n]
        for rank, (fid, _) in enumerate(ranking):
            fused[fid] = fused.get(fid, 0.0) + w / (rrf_k + rank + 1)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k]  # type: ignore[operator]
