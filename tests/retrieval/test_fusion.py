"""Reciprocal rank fusion, directly: by rank alone, summed over rankings, ties broken by id."""

from __future__ import annotations

import pytest

from qa.retrieval.fusion import reciprocal_rank_fusion


def test_an_id_ranked_well_in_several_rankings_wins() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.1)]
    bm25 = [(3, 12.0), (2, 11.0), (4, 3.0)]
    fused = reciprocal_rank_fusion([dense, bm25], k=4, rrf_k=10)
    # 3: ranks 3 and 1; 2: ranks 2 and 2; 1: rank 1 once; 4: rank 3 once
    assert [i for i, _ in fused] == [3, 2, 1, 4]
    assert fused[0][1] == pytest.approx(1 / 13 + 1 / 11)
    assert fused[1][1] == pytest.approx(1 / 12 + 1 / 12)


def test_scores_do_not_matter_only_ranks() -> None:
    a = reciprocal_rank_fusion([[(1, 100.0), (2, -5.0)], [(2, 0.0)]], k=2)
    b = reciprocal_rank_fusion([[(1, 0.001), (2, 0.0)], [(2, 1e9)]], k=2)
    assert a == b


def test_ties_go_to_the_smaller_id_and_k_cuts() -> None:
    fused = reciprocal_rank_fusion([[(7, 1.0)], [(5, 1.0)], [(9, 1.0)]], k=2)
    assert [i for i, _ in fused] == [5, 7]
    assert reciprocal_rank_fusion([], k=3) == []


def test_weighted_fusion_scales_each_rankings_share() -> None:
    a = [("x", 9.0), ("y", 8.0)]
    b = [("y", 1.0), ("x", 0.5)]
    assert [i for i, _ in reciprocal_rank_fusion([a, b], 2, rrf_k=10)] == ["x", "y"]  # a tie: smaller id
    assert [i for i, _ in reciprocal_rank_fusion([a, b], 2, rrf_k=10, weights=[1.0, 2.0])] == ["y", "x"]
    assert reciprocal_rank_fusion([a, b], 1, rrf_k=10, weights=[0.5, 0.5])[0][1] == pytest.approx(
        0.5 / 11 + 0.5 / 12
    )
    with pytest.raises(ValueError, match="2 weights for 1 rankings"):
        reciprocal_rank_fusion([a], 2, weights=[1.0, 1.0])
