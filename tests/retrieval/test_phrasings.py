from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa import ChunkerSettings, HashingEmbedder, Index, read_releases
from qa.retrieval.fusion import reciprocal_rank_fusion
from qa.retrieval.retriever import Retriever


@pytest.fixture
def retriever(corpus_dir: Path, embedder: HashingEmbedder) -> Retriever:
    index = Index.build(read_releases([corpus_dir]).releases, embedder, ChunkerSettings(max_tokens=24))
    return Retriever(index, embedder, k=4)


QUERIES = ["Who chaired the meeting in Geneva?", "Where will the next one be held?", "How much was the fine?"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_one_phrasing_a_question_searches_as_before(retriever: Retriever, mode: str) -> None:
    vecs = retriever.encode(QUERIES)
    plain = retriever.search_encoded(QUERIES, vecs, mode=mode)
    grouped = retriever.search_encoded(QUERIES, vecs, mode=mode, groups=[0, 1, 2])
    assert [[(h.passage.id, h.score) for h in row] for row in grouped] == [
        [(h.passage.id, h.score) for h in row] for row in plain
    ]


def test_phrasings_of_a_question_are_fused_by_rank(retriever: Retriever) -> None:
    vecs = retriever.encode(QUERIES)
    rows = retriever.search_encoded(QUERIES, vecs, groups=[0, 0, 1])
    assert len(rows) == 2
    d = retriever.depth
    rankings = [
        retriever._sparse(QUERIES[:1], d, None)[0],
        retriever._by_sentence(vecs[:1], d, None)[0],
        retriever._sparse(QUERIES[1:2], d, None)[0],
        retriever._by_sentence(vecs[1:2], d, None)[0],
    ]
    lw = retriever.lexical_weight
    want = reciprocal_rank_fusion(rankings, retriever.k, retriever.rrf_k, [lw, 1.0, lw, 1.0])
    assert [(h.passage.id, h.score) for h in rows[0]] == [
        (retriever.index.passages.get_many({f})[f].id, s) for f, s in want
    ]
    alone = retriever.search_encoded(QUERIES[2:], vecs[2:])[0]
    assert [h.passage.id for h in rows[1]] == [h.passage.id for h in alone]


@pytest.mark.parametrize("groups", [[0, 2, 2], [1, 1, 2], [0, 1], [0, 1, 0]])
def test_bad_groups_are_refused_with_their_value(retriever: Retriever, groups: list[int]) -> None:
    vecs = retriever.encode(QUERIES)
    with pytest.raises(ValueError, match="groups"):
        retriever.search_encoded(QUERIES, vecs, groups=groups)


def test_a_lexical_phrasing_is_searched_by_its_words_alone(retriever: Retriever) -> None:
    vecs = retriever.encode(QUERIES[:2])
    vecs[1] = np.nan  # never read
    rows = retriever.search_encoded(
        QUERIES[:2], vecs, groups=[0, 0], weights=[1.0, 0.5], lexical=[False, True]
    )
    d = retriever.depth
    rankings = [
        retriever._sparse(QUERIES[:1], d, None)[0],
        retriever._by_sentence(vecs[:1], d, None)[0],
        retriever._sparse(QUERIES[1:2], d, None)[0],
    ]
    lw = retriever.lexical_weight
    want = reciprocal_rank_fusion(rankings, retriever.k, retriever.rrf_k, [lw, 1.0, 0.5 * lw])
    assert [h.score for h in rows[0]] == [s for _, s in want]
    assert len({h.passage.id for h in rows[0]}) == len(want)
    with pytest.raises(ValueError, match="lexical"):
        retriever.search_encoded(QUERIES[:2], vecs, groups=[0, 0], lexical=[False])
    with pytest.raises(ValueError, match="weights"):
        retriever.search_encoded(QUERIES[:2], vecs, groups=[0, 0], weights=[1.0, 0.0])


def test_bm25_weighs_lexical_weight_in_the_hybrid_fusion(corpus_dir: Path, embedder: HashingEmbedder) -> None:
    index = Index.build(read_releases([corpus_dir]).releases, embedder, ChunkerSettings(max_tokens=24))
    vecs = Retriever(index, embedder).encode(QUERIES)
    for lw in (0.5, 1.0, 2.0):
        r = Retriever(index, embedder, k=4, lexical_weight=lw)
        rows = r.search_encoded(QUERIES, vecs)
        for n, row in enumerate(rows):
            rankings = [
                r._sparse(QUERIES[n : n + 1], r.depth, None)[0],
                r._by_sentence(vecs[n : n + 1], r.depth, None)[0],
            ]
            want = reciprocal_rank_fusion(rankings, 4, r.rrf_k, [lw, 1.0])
            assert [h.score for h in row] == [s for _, s in want]
    with pytest.raises(ValueError, match="lexical_weight must be > 0, got 0"):
        Retriever(index, embedder, lexical_weight=0)
