"""The neural reader's parts: span search, calibration, the answerer around it, the article split.

The shipped model itself is exercised in test_model.py (end to end) and here when installed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, ChunkerSettings, HashingEmbedder, Index, make_release
from qa.answer.base import answer
from qa.answer.neural import CALIBRATION_FEATURES, Calibration, NeuralAnswerer
from qa.answer.span_reader import (
    READER_PATH,
    ReadSpan,
    SpanReader,
    SpanReaderSettings,
    best_span_in_window,
    export_reader_onnx,
    length_batches,
    reader_available,
    spans_in_window,
)
from qa.assistant import resolve_reader
from qa.embedding import onnx_session
from qa.evaluation.data import EvalItem, EvalSet, article_half
from qa.index import vector_id

TEXT = "Ministers met in Geneva on Tuesday. The meeting was chaired by Dr. Jane Smith of the delegation."


def test_best_span_stays_inside_one_sentence() -> None:
    # tokens: [CLS] q [SEP] then context tokens at these character offsets
    offsets = [(0, 0), (0, 0), (0, 0), (0, 9), (10, 13), (14, 20), (21, 23), (24, 32), (36, 39), (40, 47)]
    seq = [None, 0, None, 1, 1, 1, 1, 1, 1, 1]
    start = np.full(10, -5.0)
    end = np.full(10, -5.0)
    start[5], end[9] = 4.0, 4.0  # best pair crosses the sentence boundary at 36
    end[7] = 3.0
    score, a, b, _ = best_span_in_window(start, end, offsets, seq, [0, 36], max_answer_tokens=30)
    assert (a, b) == (14, 32) and score == pytest.approx(7.0)
    score, a, b, _ = best_span_in_window(start, end, offsets, seq, None, max_answer_tokens=30)
    assert (a, b) == (14, 47)
    _, a, b, _ = best_span_in_window(start, end, offsets, seq, None, max_answer_tokens=2)
    assert b - a < 47 - 14  # a short limit forbids the long pair


def test_no_context_tokens_means_no_span() -> None:
    assert best_span_in_window(np.zeros(3), np.zeros(3), [(0, 0)] * 3, [None, 0, None], None, 30) is None


def test_settings_and_calibration_validate() -> None:
    with pytest.raises(ValueError, match="'x'"):
        resolve_reader("x")
    with pytest.raises(ValueError, match="stride"):
        SpanReaderSettings(max_length=128, stride=64)
    with pytest.raises(ValueError, match="weights"):
        Calibration((1.0,), 0.0, 0.5)
    with pytest.raises(ValueError, match="1.5"):
        Calibration((0.0,) * len(CALIBRATION_FEATURES), 0.0, 1.5)
    with pytest.raises(ValueError, match="'int4'"):
        SpanReaderSettings(precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'fp16'"):
        Calibration((1.0,), 0.0, 0.5, ("margin",), precision="fp16")  # type: ignore[arg-type]


def test_calibration_round_trips(tmp_path: Path) -> None:
    c = Calibration(
        (0.5, 1.0, 0.2, -0.3, 0.1, 0.5, -0.7, 0.2, 1.0, 0.5, 0.5, 0.3, 0.8, 0.4), -1.0, 0.4, precision="int8"
    )
    c.save(tmp_path / "c.json", note="test")
    back = Calibration.load(tmp_path / "c.json")
    assert back == c
    x = np.array(
        [
            [2.0, -0.1, 1.0, 0.0, 0.0, 1.0, 0.1, 1.0, 0.6, 0.5, 0.9, -1.0, 0.9, 1.0],
            [-3.0, -4.0, -2.0, 2.0, -5.0, 0.0, 0.9, 1.0, 0.1, 0.0, 0.1, -5.0, 0.1, 0.2],
        ]
    )
    p = back.proba(x)
    assert 0 < p[1] < p[0] < 1


class FakeReader:
    """Picks the first occurrence of a fixed word in each text, with a fixed score."""

    reads_headers = False

    def __init__(self, word: str, score: float):
        self.word, self.score, self.path = word, score, Path("/nonexistent")

    def read_spans(
        self,
        question: str,
        texts: Sequence[str],
        sentence_starts: Sequence[Sequence[int] | None] | None = None,
    ) -> list[list[ReadSpan]]:
        out: list[list[ReadSpan]] = []
        for t in texts:
            i = t.find(self.word)
            out.append([] if i < 0 else [ReadSpan(i, i + len(self.word), self.score, 0.0, 0.9)])
        return out


def _index() -> tuple[Index, HashingEmbedder]:
    emb = HashingEmbedder(dimension=64)
    rel = make_release(TEXT, path="a.md", title="Ministers meet")
    return Index.build([rel], emb, ChunkerSettings(max_tokens=64, annotator=None)), emb


@pytest.mark.parametrize("word", ["Jane Smith", "Geneva"])
def test_neural_answer_quotes_the_release_and_cites_its_sentence(word: str) -> None:
    index, emb = _index()
    cal = Calibration((1.0,) + (0.0,) * (len(CALIBRATION_FEATURES) - 1), 0.0, 0.5)  # p = sigmoid(margin)
    ans = NeuralAnswerer(index, reader=FakeReader(word, 3.0), calibration=cal)  # type: ignore[arg-type]
    a = Assistant(index, emb, reader="features")
    a.answerer = ans
    out = a.ask("Who chaired the meeting?")
    assert out.text == word and out.citation is not None
    rel = index.releases[out.citation.release_id]
    assert rel.text[out.citation.start : out.citation.end] == word
    assert out.sentence_start is not None and out.sentence_end is not None
    assert out.sentence == rel.text[out.sentence_start : out.sentence_end]
    assert out.sentence_start <= out.citation.start < out.citation.end <= out.sentence_end
    assert out.score == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_a_reader_trained_with_headers_reads_them_and_never_quotes_them() -> None:
    """The header (title and date) is read before each passage; a span in it is dropped, and the
    quote's offsets are the release's own."""
    from qa.answer.span_reader import header_text

    index, emb = _index()
    seen: list[str] = []

    class HeadedReader(FakeReader):
        reads_headers = True

        def read_spans(self, question, texts, sentence_starts=None):  # type: ignore[no-untyped-def]
            seen.extend(texts)
            return super().read_spans(question, texts, sentence_starts)

    cal = Calibration((1.0,) + (0.0,) * (len(CALIBRATION_FEATURES) - 1), 0.0, 0.5)
    a = Assistant(index, emb, reader="features")
    a.answerer = NeuralAnswerer(index, reader=HeadedReader("Geneva", 3.0), calibration=cal)  # type: ignore[arg-type]
    out = a.ask("Where did the ministers meet?")
    assert seen and all(t.startswith(header_text("Ministers meet", None)) for t in seen)
    assert out.text == "Geneva" and out.citation is not None
    assert index.releases[out.citation.release_id].text[out.citation.start : out.citation.end] == "Geneva"
    a.answerer = NeuralAnswerer(index, reader=HeadedReader("Ministers", 3.0), calibration=cal)  # type: ignore[arg-type]
    assert a.ask("Who met?").text is None  # its one span is the header's "Ministers": dropped


def test_header_text_and_whether_a_reader_reads_it(tmp_path: Path) -> None:
    import datetime as dt

    from qa.answer.span_reader import HEADER_WORDS, header_text, reads_headers

    assert header_text("Pulaski Day", dt.date(2023, 10, 11)) == "Pulaski Day (October 11, 2023).\n"
    assert header_text(" ".join(["w"] * 50), None).count("w") == HEADER_WORDS
    assert not reads_headers(tmp_path)
    (tmp_path / "training.json").write_text(json.dumps({"config": {"headers": None}}))
    assert not reads_headers(tmp_path)
    (tmp_path / "training.json").write_text(json.dumps({"config": {"headers": "heads.json"}}))
    assert reads_headers(tmp_path)


def test_neural_answer_declines_below_its_threshold() -> None:
    index, emb = _index()
    cal = Calibration((1.0,) + (0.0,) * (len(CALIBRATION_FEATURES) - 1), 0.0, 0.5)
    ans = NeuralAnswerer(index, reader=FakeReader("Geneva", -2.0), calibration=cal)  # type: ignore[arg-type]
    vec = emb.encode(["Where did they meet?"])[0]
    hits = Assistant(index, emb, reader="features").search("Where did they meet?")
    assert answer(ans, "Where did they meet?", vec, hits).text is None
    assert answer(ans, "Where did they meet?", vec, hits, threshold=0.1).text == "Geneva"
    missing = NeuralAnswerer(index, reader=FakeReader("Paris", 5.0), calibration=cal)  # type: ignore[arg-type]
    assert answer(missing, "Where did they meet?", vec, hits).text is None


def test_article_half_splits_questions_not_corpus() -> None:
    rels = tuple(make_release(f"Article {i} text.", path=f"{i}.md") for i in range(10))
    items = tuple(EvalItem(f"q{i}", "q?", ("a",), rels[i % 10].id) for i in range(40))
    es = EvalSet("toy", "squad", rels, items)
    a, b = article_half(es, 0), article_half(es, 1)
    assert a.releases == b.releases == rels
    assert {i.id for i in a.items}.isdisjoint({i.id for i in b.items})
    assert len(a.items) + len(b.items) == 40 and a.items and b.items
    assert not {i.release_id for i in a.items} & {i.release_id for i in b.items}
    with pytest.raises(ValueError, match="2"):
        article_half(es, 2)


@pytest.mark.skipif(not reader_available(), reason="no reader model installed in qa/models/reader")
def test_shipped_reader_finds_the_chair() -> None:
    reader = SpanReader()
    q = "Who chaired the meeting?"
    (first, second), (other,) = reader.read_spans(q, [TEXT, "Nothing to see here at all."], [[0, 36], [0]])
    # one span per sentence; the chair's sentence holds the best one
    assert first.end <= 36 <= second.start and second.score > first.score
    assert "Jane Smith" in TEXT[second.start : second.end]
    # probabilities are shared across the texts read together
    assert first.prob + second.prob + other.prob <= 1.0 + 1e-6


@pytest.mark.skipif(not reader_available(), reason="no reader model installed in qa/models/reader")
def test_the_int8_reader_reads_like_the_float_one(tmp_path: Path) -> None:
    """The quantized model is a file of its own beside the float export, and finds the same spans."""
    fp32, int8 = (SpanReader(settings=SpanReaderSettings(precision=p)) for p in ("fp32", "int8"))
    assert int8.model_file() != fp32.model_file() and int8.model_file().is_file()
    q, texts, starts = "Who chaired the meeting?", [TEXT, "Nothing to see here at all."], [[0, 36], None]
    a, b = fp32.read_spans(q, texts, starts), int8.read_spans(q, texts, starts)
    assert [len(t) for t in a] == [len(t) for t in b]  # one span per sentence, both
    # the answer is the same span; within a sentence that answers nothing the scores are near-flat,
    # and int8's rounding may pick another span there ("Ministers" or the whole first sentence)
    best_a, best_b = (max((s for t in r for s in t), key=lambda s: s.score) for r in (a, b))
    assert (best_a.start, best_a.end) == (best_b.start, best_b.end)
    assert TEXT[best_b.start : best_b.end] == "Dr. Jane Smith"
    assert abs(a[0][1].score - b[0][1].score) < 1.0
    # the answerer runs its default reader at the precision its calibration was fitted with
    cal = Calibration((1.0,), 0.0, 0.5, ("margin",), precision="int8")
    index, _ = _index()
    assert NeuralAnswerer(index, calibration=cal).reader.settings.precision == "int8"


@pytest.mark.skipif(not reader_available(), reason="no reader model installed in qa/models/reader")
def test_the_onnx_export_fuses_attention_and_reads_like_torch(tmp_path: Path) -> None:
    """The export's fused kernels (what makes it fast) give the checkpoint's own logits, padding
    included."""
    import onnx
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    out = export_reader_onnx(READER_PATH, tmp_path / "reader.onnx")
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"Attention", "LayerNormalization"} <= ops and "SkipLayerNormalization" not in ops, ops
    # ONNX Runtime would fuse them again at load (its slow kernel); the project's sessions do not
    onnx_session(out, 1, optimized_to=tmp_path / "loaded.onnx")
    loaded = {n.op_type for n in onnx.load(str(tmp_path / "loaded.onnx")).graph.node}
    assert "LayerNormalization" in loaded and "SkipLayerNormalization" not in loaded, loaded
    plain = ort.SessionOptions()
    plain.optimized_model_filepath = str(tmp_path / "plain.onnx")
    ort.InferenceSession(str(out), plain, providers=["CPUExecutionProvider"])
    assert "SkipLayerNormalization" in {n.op_type for n in onnx.load(str(tmp_path / "plain.onnx")).graph.node}
    tok = AutoTokenizer.from_pretrained(READER_PATH)
    enc = tok(["Who chaired it?"] * 2, [TEXT, "Nothing."], padding=True, return_tensors="np")
    feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feed)
    model = AutoModelForQuestionAnswering.from_pretrained(READER_PATH, dtype=torch.float32).float().eval()
    with torch.inference_mode():
        want = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
    real = feed["attention_mask"].astype(bool)
    for g, w in zip(got, (want.start_logits, want.end_logits), strict=True):
        assert np.abs(g[real] - w.numpy()[real]).max() < 1e-3


def test_windows_are_batched_by_length_longest_first() -> None:
    assert length_batches([120, 180, 175, 60, 178], 8) == [[1, 4, 2], [0], [3]]
    assert length_batches([100] * 5, 2) == [[0, 1], [2, 3], [4]]
    assert length_batches([], 8) == []
    got = length_batches([50, 200, 90, 199, 120, 201], 3)
    assert sorted(i for b in got for i in b) == list(range(6))  # every window once
    lengths = [50, 200, 90, 199, 120, 201]
    assert all(lengths[i] >= 0.9 * lengths[b[0]] for b in got for i in b)


@pytest.mark.skipif(not reader_available(), reason="no reader model installed in qa/models/reader")
def test_windows_read_alike_batched_or_one_by_one() -> None:
    """Batching by length is only about speed: every window's logits, in window order, as read
    alone (float model: int8's activation scale depends on what shares its batch)."""
    reader = SpanReader(settings=SpanReaderSettings(precision="fp32"))
    texts = [TEXT, "Nothing to see here at all.", TEXT + " " + TEXT, "Dr. Jane Smith chaired it."]
    enc = reader.tokenize("Who chaired the meeting?", texts)
    together = reader.logits(enc)
    alone = SpanReader(settings=SpanReaderSettings(precision="fp32", batch_size=1)).logits(enc)
    for a, b in zip(together, alone, strict=True):
        assert [len(x) for x in a] == [len(x) for x in b] == [len(x) for x in enc["input_ids"]]
        assert max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)) < 1e-3


def test_each_sentence_gets_its_own_best_span() -> None:
    offsets = [(0, 0), (0, 0), (0, 0), (0, 9), (10, 13), (14, 20), (21, 23), (24, 32), (36, 39), (40, 47)]
    seq = [None, 0, None, 1, 1, 1, 1, 1, 1, 1]
    start = np.full(10, -5.0)
    end = np.full(10, -5.0)
    start[4], end[5], start[8], end[9] = 2.0, 2.0, 1.0, 1.0
    spans, mass = spans_in_window(start, end, offsets, seq, [0, 36], max_answer_tokens=30)
    assert [(a, b) for _, a, b, _ in spans] == [(10, 20), (36, 47)]
    assert len({g for *_, g in spans}) == 2
    assert spans[0][0] == pytest.approx(4.0) and mass > spans[0][0]


LONG = " ".join(["What did the ministers of the member states agree about coordination"] * 14)  # ~140 words


@pytest.mark.skipif(not reader_available(), reason="no reader model installed in qa/models/reader")
def test_a_long_question_or_context_never_breaks_the_reader() -> None:
    """Probe 2026-12-02: ~900 characters panicked the tokenizer (a BaseException that hung the
    chat), ~1,600 gave a bare "Truncation error"."""
    reader = SpanReader()
    long_text = " ".join([TEXT] * 30)  # a passage read in several windows
    for q in (LONG[:900], LONG[:1300], LONG[:1600], LONG * 3):
        (spans,) = reader.read_spans(q, [long_text])
        assert spans and all(0 <= s.start < s.end <= len(long_text) for s in spans)


def test_a_question_too_long_to_read_is_refused_with_its_length() -> None:
    emb = HashingEmbedder(dimension=64)
    rel = make_release(TEXT, path="t.md", title="Ministers")
    a = Assistant(Index.build([rel], emb, ChunkerSettings()), emb, reader="features")
    with pytest.raises(ValueError, match=r"the limit is 128"):
        a.ask(LONG)
    with pytest.raises(ValueError, match=r"the limit is 128"):
        a.search(LONG)
    # a long earlier turn is history, not the question: it is read, truncated, never refused
    ans = a.ask("And who chaired it?", history=[{"role": "user", "content": LONG[:1900]}])
    assert ans.question == "And who chaired it?"


def test_retrieval_and_release_features_of_each_candidate() -> None:
    """dense is the question-passage cosine, title_overlap the question's words in the title, and
    release_share sums to 1 over the releases read."""
    emb = HashingEmbedder(dimension=64)
    rels = [
        make_release(TEXT, path="a.md", title="Ministers meet in Geneva"),
        make_release(
            "Officials said Geneva hosted a second, smaller meeting. " * 3, path="b.md", title="Other news"
        ),
    ]
    index = Index.build(rels, emb, ChunkerSettings(max_tokens=64, annotator=None))
    cal = Calibration((1.0,) + (0.0,) * (len(CALIBRATION_FEATURES) - 1), 0.0, 0.5)
    ans = NeuralAnswerer(index, reader=FakeReader("Geneva", 3.0), calibration=cal)  # type: ignore[arg-type]
    q = "Where did the ministers meet?"
    vec = emb.encode([q])[0]
    hits = Assistant(index, emb, reader="features").search(q)
    cands = ans.candidates(q, vec, hits)
    col = {f: CALIBRATION_FEATURES.index(f) for f in ("dense", "title_overlap", "release_share")}
    assert len({c.release.id for c in cands}) == 2
    share = {c.release.id: c.features[col["release_share"]] for c in cands}
    assert sum(share.values()) == pytest.approx(1.0)
    for c in cands:
        pv = index.passage_vectors.reconstruct(vector_id(c.hit.passage.id))
        assert c.features[col["dense"]] == pytest.approx(float(pv @ vec), abs=1e-5)
    titled = {c.release.title: c.features[col["title_overlap"]] for c in cands}
    assert titled["Ministers meet in Geneva"] > titled["Other news"] == 0.0
    # retrieval_top reads alike whatever scored the passages (BM25's raw scores, say, at any scale)
    top, raw = CALIBRATION_FEATURES.index("retrieval_top"), CALIBRATION_FEATURES.index("retrieval")
    lexical = Assistant(index, emb, reader="features").search(q, mode="bm25")
    read = lexical[: ans.passages]
    scaled = [replace(h, score=40.0 * h.score) for h in lexical]
    for c, d in zip(ans.candidates(q, vec, lexical), ans.candidates(q, vec, scaled), strict=True):
        assert c.features[top] == pytest.approx(c.hit.score / max(h.score for h in read))
        assert 0.0 < c.features[top] <= 1.0 and d.features[top] == pytest.approx(c.features[top])
        assert d.features[raw] == pytest.approx(40.0 * c.features[raw])


def test_a_span_read_as_given_is_answered_with_every_feature() -> None:
    """``answer_from`` (the eval's gold-paragraph mode) reads a passage the index does not hold:
    its dense feature comes from its sentences' vectors instead of failing."""
    emb = HashingEmbedder(dimension=64)
    index = Index.build(
        [make_release(TEXT, path="a.md")], emb, ChunkerSettings(max_tokens=24, annotator=None)
    )
    cal = Calibration((1.0,) + (0.0,) * (len(CALIBRATION_FEATURES) - 1), 0.0, 0.5)  # every feature computed
    assistant = Assistant(index, emb, reader="features")
    assistant.answerer = NeuralAnswerer(index, reader=FakeReader("Geneva", 3.0), calibration=cal)  # type: ignore[arg-type]
    rid = next(iter(index.releases))
    release = index.releases[rid]
    first = release.text.index("Tuesday.") + len("Tuesday.")  # the first sentence: no indexed passage
    a = assistant.answer_from("Where did the ministers meet?", rid, 0, first, threshold=0.0)
    assert a.text == "Geneva" and a.citation is not None
    assert release.text[a.citation.start : a.citation.end] == "Geneva"
