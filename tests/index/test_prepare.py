"""The per-release work of a build, and how it travels between processes."""

from __future__ import annotations

import numpy as np

from qa import HashingEmbedder
from qa.index import Index
from qa.index.prepare import from_row, prepare_locally, prepare_releases, to_row
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.releases import make_release

SETTINGS = ChunkerSettings(max_tokens=24, annotator=None)


def corpus() -> list:  # type: ignore[type-arg]
    return [
        make_release(
            " ".join(f"Line {j} of note {i}: the agency met {j} partners." for j in range(9)),
            title=f"Note {i}",
            path=f"n{i}.md",
            date="2024-03-0" + str(1 + i),
            url=f"https://example.gov/{i}",
            metadata={"category": "statements", "links": "a; b"},
        )
        for i in range(5)
    ]


def test_a_prepared_release_survives_the_trip_between_processes() -> None:
    emb = HashingEmbedder(64)
    for p in prepare_releases(corpus(), emb, SETTINGS):
        q = from_row(to_row(p), 64)
        assert q.release == p.release and q.passages == p.passages and q.sentences == p.sentences
        assert [x.sentences for x in q.passages] == [x.sentences for x in p.passages]
        assert all(p.release.text[s.start : s.end] == s.text for s in q.sentences)
        np.testing.assert_array_equal(q.passage_vectors, p.passage_vectors)
        np.testing.assert_array_equal(q.sentence_vectors, p.sentence_vectors)
        assert q.annotations == p.annotations


def test_prepared_in_batches_or_at_once_the_index_is_the_same() -> None:
    emb = HashingEmbedder(64)
    whole, parts = Index.empty(emb, SETTINGS), Index.empty(emb, SETTINGS)
    whole.add(corpus(), emb)
    parts.add(corpus(), emb, prepare=prepare_locally(emb, SETTINGS, batch=2))
    assert list(whole.releases) == list(parts.releases)
    assert dict(whole.passages.items()) == dict(parts.passages.items())
    ids = np.array(sorted(dict(whole.sentences.items())), dtype=np.int64)
    np.testing.assert_array_equal(
        whole.sentence_vectors.reconstruct_batch(ids), parts.sentence_vectors.reconstruct_batch(ids)
    )
