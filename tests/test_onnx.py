"""The ONNX Runtime encoder gives the torch model's vectors and token counts on real text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa import SentenceTransformerEmbedder, split_sentences
from qa.embedding import DEFAULT_MODEL, INT8, OnnxEmbedder, encoder_backend
from tests.conftest import SEED

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def texts() -> list[str]:
    text = (SEED / "csa-asean-ministerial-conference-on-cybersecurity-2017.md").read_text(encoding="utf-8")
    sents = [s.text for s in split_sentences(text)]
    return [*sents[:24], " ".join(sents), "Who chaired the AMCC?", "x", "U.S. $3000000 – 2017"]


@pytest.fixture(scope="module")
def onnx(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=tmp_path_factory.mktemp("onnx-cache"))


def test_vectors_match_torch(onnx: OnnxEmbedder, texts: list[str]) -> None:
    torch_vecs = SentenceTransformerEmbedder(backend="torch").encode(texts)
    onnx_vecs = onnx.encode(texts, batch_size=8)
    assert onnx_vecs.shape == torch_vecs.shape == (len(texts), 384)
    assert onnx_vecs.dtype == np.float32
    cos = (onnx_vecs * torch_vecs).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    # batching and order do not change a text's vector
    one = onnx.encode(texts[-4:-3], batch_size=1)[0]
    assert float(one @ onnx_vecs[-4]) >= 0.99999


def test_token_counts_match_torch(onnx: OnnxEmbedder, texts: list[str]) -> None:
    assert onnx.count_tokens(texts) == SentenceTransformerEmbedder(backend="torch").count_tokens(texts)


def test_same_identity_and_cached_export(onnx: OnnxEmbedder, tmp_path: Path) -> None:
    st = SentenceTransformerEmbedder(backend="torch")
    assert (onnx.name, onnx.dimension) == (st.name, st.dimension)
    first = onnx.onnx_path()
    mtime = first.stat().st_mtime_ns
    assert OnnxEmbedder(cache_dir=first.parents[2]).onnx_path() == first
    assert first.stat().st_mtime_ns == mtime  # exported once, then reused
    assert onnx.encode([]).shape == (0, 384)


def test_backend_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASE_QA_ENCODER", "torch")
    assert encoder_backend() == "torch" and SentenceTransformerEmbedder().backend == "torch"
    monkeypatch.setenv("RELEASE_QA_ENCODER", "tensorflow")
    with pytest.raises(ValueError, match="RELEASE_QA_ENCODER must be one of onnx, onnx-int8, torch"):
        encoder_backend()


def test_batches_cover_every_text_within_the_token_budget() -> None:
    e = OnnxEmbedder()
    lengths = [3, 5, 8, 8, 40, 120, 250, 256, 256]
    batches = list(e._batches(lengths, 4))
    assert [i for a, b in batches for i in range(a, b)] == list(range(len(lengths)))
    for a, b in batches:
        assert b - a <= 4
        assert b - a == 1 or (b - a) * lengths[b - 1] <= e.batch_tokens


def test_the_int8_encoder_is_close_and_named_apart(onnx: OnnxEmbedder, texts: list[str]) -> None:
    """int8 weights: vectors close to the float model's but not equal, so indexes record it."""
    int8 = SentenceTransformerEmbedder(backend="onnx-int8")
    assert int8.name == onnx.name + INT8 and int8.fresh(threads=1).name == int8.name
    assert int8._onnx is not None and int8._onnx.onnx_path().name == "model-int8.onnx"
    a, b = onnx.encode(texts), int8.encode(texts)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.95 and cos.mean() >= 0.98 and cos.min() < 0.99999, cos
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    # the same text's nearest neighbour among the others is mostly the same
    sims_a, sims_b = a[:24] @ a[:24].T, b[:24] @ b[:24].T
    np.fill_diagonal(sims_a, -1)
    np.fill_diagonal(sims_b, -1)
    assert (sims_a.argmax(1) == sims_b.argmax(1)).mean() >= 0.8


def test_an_embedder_for_the_model_an_index_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELEASE_QA_ENCODER", raising=False)
    e = SentenceTransformerEmbedder.for_model(DEFAULT_MODEL + INT8)
    assert (e.backend, e.name) == ("onnx-int8", DEFAULT_MODEL + INT8)
    assert SentenceTransformerEmbedder.for_model(DEFAULT_MODEL).backend == "onnx"
    monkeypatch.setenv("RELEASE_QA_ENCODER", "onnx-int8")  # never int8 for a float index
    assert SentenceTransformerEmbedder.for_model(DEFAULT_MODEL).name == DEFAULT_MODEL


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_counting_in_one_thread_while_encoding_in_another(backend: str, texts: list[str]) -> None:
    """What a build does (the next batch chunked while this one is encoded): both succeed and
    give what they give alone."""
    from concurrent.futures import ThreadPoolExecutor

    emb = SentenceTransformerEmbedder(backend=backend)
    alone_counts, alone_vecs = emb.count_tokens(texts), emb.encode(texts)
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = [pool.submit(emb.count_tokens, texts) for _ in range(20)]
        vecs = [pool.submit(emb.encode, texts) for _ in range(3)]
        assert all(c.result() == alone_counts for c in counts)
        for v in vecs:  # the same batches as alone (int8 vectors depend on a batch's neighbours)
            np.testing.assert_allclose(v.result(), alone_vecs, atol=1e-5)


def test_spans_read_in_context_are_their_sentences(onnx: OnnxEmbedder, texts: list[str]) -> None:
    """Late chunking: one pass over a passage gives its vector (what ``encode`` gives) and each
    sentence's, close to the sentence encoded alone."""
    sents = texts[6:12]  # the body's first sentences (before them: front matter, a caption)
    passage = "  " + " ".join(sents)  # leading space: ``encode`` strips it, the spans must follow
    spans, pos = [], 2
    for s in sents:
        spans.append((pos, pos + len(s)))
        pos += len(s) + 1
    assert [passage[a:b] for a, b in spans] == sents
    got = onnx.encode_spans([passage, "x"], [spans, [(5, 9)]])
    np.testing.assert_allclose(got.texts, onnx.encode([passage, "x"]), atol=1e-5)
    assert got.spans.shape == (7, 384) and got.found.tolist() == [True] * 6 + [False]
    assert not got.spans[6].any()  # nothing of "x" lies at 5..9
    alone = onnx.encode(sents)
    sim = got.spans[:6] @ alone.T
    own, other = np.diag(sim), sim[~np.eye(6, dtype=bool)]
    # read in context, a sentence carries some of its neighbours: near itself, nearer than others
    assert own.min() > 0.6 and own.mean() > other.mean() + 0.15, sim.round(2)
    assert (sim.argmax(axis=1) == np.arange(6)).sum() >= 4, sim.round(2)
    np.testing.assert_allclose(np.linalg.norm(got.spans[:6], axis=1), 1.0, atol=1e-5)


def test_a_span_past_the_truncation_is_not_read(onnx: OnnxEmbedder) -> None:
    text = "The minister spoke. " * 200  # far past 256 tokens
    got = onnx.encode_spans([text], [[(0, 19), (len(text) - 20, len(text) - 1)]])
    assert got.found.tolist() == [True, False]


def test_torch_reads_spans_as_onnx_does(onnx: OnnxEmbedder, texts: list[str]) -> None:
    passage = " ".join(texts[:4])
    spans = [(0, len(texts[0])), (len(texts[0]) + 1, len(texts[0]) + 1 + len(texts[1]))]
    a = onnx.encode_spans([passage], [spans])
    b = SentenceTransformerEmbedder(backend="torch").encode_spans([passage], [spans])
    assert ((a.spans * b.spans).sum(axis=1) >= 0.9999).all()
    assert float(a.texts[0] @ b.texts[0]) >= 0.9999
