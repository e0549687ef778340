"""The per-release work of a build, and how it travels between processes."""

from __future__ import annotations

import numpy as np

from qa import HashingEmbedder
from qa.index import Index
from qa.index.prepare import from_row, prepare_locally, prepare_releases, to_row
from qa.ingest.annotate import EMPTY
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


def test_annotations_are_the_same_made_at_build_or_when_first_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The default build skips spaCy; the sentences an answerer reads are annotated then, and
    equal what a build with ``annotate`` stores (saved and loaded, and after a later add)."""
    emb = HashingEmbedder(64)
    spacy = ChunkerSettings(max_tokens=24)  # the default annotator
    rels = corpus()
    eager = Index.empty(emb, spacy)
    eager.annotate = True
    eager.add(rels[:3], emb)
    lazy = Index.empty(emb, spacy)
    lazy.add(rels[:3], emb)
    assert len(dict(eager.annotations.items())) == len(eager.sentences) > 0
    assert dict(lazy.annotations.items()) == {}  # nothing parsed while building
    lazy.save(tmp_path / "lazy")
    lazy = Index.load(tmp_path / "lazy")
    lazy.add(rels[3:], emb)  # a later add to a loaded index
    eager.add(rels[3:], emb)
    sents = sorted(eager.sentences.values(), key=lambda s: (s.release_id, s.start))
    made = lazy.annotations_of(sents)
    assert made == eager.annotations_of(sents)
    assert all(a.tokens for a in made) and sum(len(a.candidates) for a in made) > len(sents)
    # mixed: stored ones read, missing ones made, in the order asked
    mixed = Index.empty(emb, spacy)
    mixed.annotate = True
    mixed.add(rels[:2], emb)
    mixed.annotate = False
    mixed.add(rels[2:], emb)
    assert 0 < len(dict(mixed.annotations.items())) < len(mixed.sentences)
    assert mixed.annotations_of(sents[::-1]) == made[::-1]


def test_an_index_without_annotator_reads_empty_annotations() -> None:
    emb = HashingEmbedder(64)
    index = Index.empty(emb, SETTINGS)
    index.add(corpus()[:1], emb)
    sents = list(index.sentences.values())
    assert index.annotations_of(sents) == [EMPTY] * len(sents)


def test_each_distinct_text_is_encoded_once() -> None:
    """Recurring lines ("###", signatures) cost one encoding, in a call and across a build's calls."""
    from qa.index.prepare import VectorMemo, encode_distinct

    seen: list[str] = []

    class Counting(HashingEmbedder):
        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            seen.extend(texts)
            return super().encode(texts, **kw)

    emb = Counting(64)
    texts = ["###", "Talks went well.", "###", "JOSEPH R. BIDEN JR.", "###", "Talks went well."]
    memo = VectorMemo(size=2)
    got = encode_distinct(emb, texts, memo)
    np.testing.assert_allclose(got, HashingEmbedder(64).encode(texts), atol=1e-6)
    assert sorted(seen) == sorted(set(texts))
    seen.clear()
    again = encode_distinct(emb, ["###", "JOSEPH R. BIDEN JR.", "New line."], memo)
    assert seen == ["###", "New line."]  # the memo kept the last 2 distinct texts
    np.testing.assert_allclose(again[1], got[3], atol=1e-6)
    assert encode_distinct(emb, [], memo).shape == (0, 64)


def test_the_next_batch_is_chunked_while_this_one_is_encoded() -> None:
    """The text work of batch 2 runs in another thread while batch 1 is in the encoder; the
    result is what preparing each batch on its own gives."""
    import threading

    counted_second = threading.Event()

    class Watching(HashingEmbedder):
        def count_tokens(self, texts):  # type: ignore[no-untyped-def]
            if any("note 2" in t for t in texts):
                counted_second.set()
            return super().count_tokens(texts)

        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            if any("note 0" in t for t in texts):  # batch 1 waits until batch 2 is being chunked
                assert counted_second.wait(10), "batch 2 was not chunked while batch 1 was encoded"
            return super().encode(texts, **kw)

    emb = Watching(64)
    got = list(prepare_locally(emb, SETTINGS, batch=2)(corpus()))
    plain = HashingEmbedder(64)
    want = [p for lo in (0, 2, 4) for p in prepare_releases(corpus()[lo : lo + 2], plain, SETTINGS)]
    assert [p.release for p in got] == [p.release for p in want]
    assert [p.passages for p in got] == [p.passages for p in want]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.sentence_vectors, b.sentence_vectors, atol=1e-6)
        np.testing.assert_allclose(a.passage_vectors, b.passage_vectors, atol=1e-6)


def test_a_chunking_failure_reaches_the_caller_and_a_stream_stopped_early_ends() -> None:
    class Failing(HashingEmbedder):
        def count_tokens(self, texts):  # type: ignore[no-untyped-def]
            if any("note 3" in t for t in texts):
                raise ValueError("cannot count note 3")
            return super().count_tokens(texts)

    stream = iter(prepare_locally(Failing(64), SETTINGS, batch=2)(corpus()))
    assert [next(stream).release.title for _ in range(2)] == ["Note 0", "Note 1"]
    try:
        list(stream)
    except ValueError as e:
        assert "note 3" in str(e)
    else:
        raise AssertionError("the failure in the chunking thread was lost")
    early = iter(prepare_locally(HashingEmbedder(64), SETTINGS, batch=1)(corpus()))
    assert next(early).release.title == "Note 0"
    early.close()  # no hang: the thread's pending batch finishes and the pool shuts down


def test_late_sentence_vectors_are_the_mean_of_each_passage_s_reading() -> None:
    """A sentence two overlapping passages share is read in both; a context-free embedder (the
    fake) then gives exactly the separately encoded vectors, so only the plumbing differs."""
    import dataclasses

    emb = HashingEmbedder(64)
    late = prepare_releases(corpus(), emb, SETTINGS)
    separate = prepare_releases(corpus(), emb, dataclasses.replace(SETTINGS, sentence_vectors="separate"))
    assert SETTINGS.sentence_vectors == "late"
    assert any(
        len(set(p.sentences) & set(q.sentences))
        for x in late
        for p, q in zip(x.passages, x.passages[1:], strict=False)
    )
    for a, b in zip(late, separate, strict=True):
        assert a.sentences == b.sentences
        np.testing.assert_allclose(a.sentence_vectors, b.sentence_vectors, atol=1e-6)
        np.testing.assert_allclose(a.passage_vectors, b.passage_vectors, atol=1e-6)


def test_a_sentence_no_passage_read_is_encoded_on_its_own() -> None:
    """Where a passage's tokens ran out before a sentence (the encoder truncates), the sentence
    gets a vector of its own rather than none."""
    from qa.embedding import SpanVectors

    class Short(HashingEmbedder):
        def encode_spans(self, texts, spans, *, progress=False):  # type: ignore[no-untyped-def]
            got = super().encode_spans(texts, spans)
            found = got.found.copy()
            found[-1] = False  # the last reading of the last passage was cut off
            rows = got.spans.copy()
            rows[-1] = 0
            return SpanVectors(got.texts, rows, found)

    one = corpus()[:1]
    got = prepare_releases(one, Short(64), SETTINGS)[0]
    want = prepare_releases(one, HashingEmbedder(64), SETTINGS)[0]
    np.testing.assert_allclose(got.sentence_vectors, want.sentence_vectors, atol=1e-6)


def test_late_vectors_need_an_embedder_that_reads_spans() -> None:
    import pytest

    class Plain:
        name, dimension = "plain", 8

        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            return np.ones((len(texts), 8), dtype=np.float32)

        def count_tokens(self, texts):  # type: ignore[no-untyped-def]
            return [len(t.split()) for t in texts]

    with pytest.raises(TypeError, match="'plain' has none"):
        prepare_releases(corpus()[:1], Plain(), SETTINGS)  # type: ignore[arg-type]
