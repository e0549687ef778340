"""Reciprocal rank fusion: one ranking from several, by rank alone (scores of different kinds
do not compare)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[K, float]]], k: int, rrf_k: int = 10
) -> list[tuple[K, float]]:
    """The top ``k`` ids by the sum of 1 / (rrf_k + rank) over the rankings they appear in (rank
    from 1); ties go to the smaller id, so the order is deterministic."""
    fused: dict[K, float] = {}
    for ranking in rankings:
        for rank, (fid, _) in enumerate(ranking):
            fused[fid] = fused.get(fid, 0.0) + 1.0 / (rrf_k + rank + 1)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k]  # type: ignore[operator]
