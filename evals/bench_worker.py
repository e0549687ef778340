"""Benchmark worker in the project's venv: ``ours`` (Assistant.ask, split per stage) or
``bm25s`` (bm25s alone over the same passage texts). Spoken to by ``evals/bench.py``.

    python -m evals.bench_worker ours --index DIR
    python -m evals.bench_worker bm25s --passages FILE.jsonl
"""

from __future__ import annotations

import argparse
import os
import time

T0 = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from evals.bench_proto import Handler, peak_rss_mb, serve, take_stdout, timed_queries  # noqa: E402

STAGES = ("encode", "search", "answer")
READER_STAGES = {"tokenize": "tokenize", "logits": "onnx", "spans": "spans"}
"""The neural answerer's stage split: the reader's tokenising, its ONNX runs and its span search;
the rest of "answer" is the calibration (features and the calibrated score)."""


def _wrap(owner: Any, name: str, sink: dict[str, float]) -> None:
    """Time ``owner.name`` (an instance attribute shadows the method) into ``sink[name]``."""
    orig: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return orig(*args, **kwargs)
        finally:
            sink[name] = sink.get(name, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)


def ours(
    index: str, reader: str = "features", precision: str | None = None, reader_path: str | None = None
) -> tuple[dict[str, Any], dict[str, Handler]]:
    """``precision``: run the neural reader at it instead of its calibration's ("fp32" or "int8");
    ``reader_path``: a reader folder (weights and its calibration.json) instead of the shipped one."""
    t_import = time.perf_counter()
    from qa import Assistant, make_release
    from qa.embedding import SentenceTransformerEmbedder
    from qa.index import read_manifest

    t_load = time.perf_counter()
    emb = SentenceTransformerEmbedder.for_model(read_manifest(Path(index)).model)  # int8 or not
    assistant = Assistant.load(index, emb, reader=reader)
    if reader_path is not None and reader == "neural":
        from qa.answer.neural import Calibration, NeuralAnswerer
        from qa.answer.span_reader import SpanReader, SpanReaderSettings

        cal = Calibration.load(Path(reader_path) / "calibration.json")
        settings = SpanReaderSettings(precision=cal.precision)
        assistant.answerer = NeuralAnswerer(
            assistant.index, reader=SpanReader(reader_path, settings), calibration=cal
        )
    if precision is not None and reader == "neural":
        from dataclasses import replace

        from qa.answer.span_reader import SpanReader

        current = assistant.answerer.reader
        assistant.answerer.reader = SpanReader(current.path, replace(current.settings, precision=precision))
    t_model = time.perf_counter()
    emb.encode(["warm up the encoder"])
    t_first = time.perf_counter()
    assistant.ask("Who chaired the meeting?")
    t_done = time.perf_counter()
    ready = {
        "cold": {
            "imports_s": t_load - t_import,
            "load_index_s": t_model - t_load,
            "load_model_s": t_first - t_model,
            "first_ask_s": t_done - t_first,
            "process_to_first_answer_s": t_done - T0,
        },
        "passages": len(assistant.index.passages),
        "sentences": len(assistant.index.sentences),
        "encoder": f"{type(emb).__name__}/{emb.backend}",
        "reader": _reader_name(assistant),
        "rss_after_load_mb": peak_rss_mb(),
    }
    sink: dict[str, float] = {}
    _wrap(assistant.retriever, "encode", sink)
    _wrap(assistant.retriever, "search_encoded", sink)
    _wrap(assistant.answerer, "candidates", sink)  # the answerer's work: its candidate spans
    names = {"encode": "encode", "search_encoded": "search", "candidates": "answer"}
    split = hasattr(assistant.answerer, "reader")
    if split:  # the neural answerer: its reader's stages too
        for method in READER_STAGES:
            _wrap(assistant.answerer.reader, method, sink)
        names |= READER_STAGES

    def run(cmd: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"e2e_ms": [], **{s: [] for s in names.values()}, "answered": 0}
        if split:
            out["calibrate"] = []
        for q in cmd["questions"]:
            sink.clear()
            t = time.perf_counter()
            a = assistant.ask(q)
            out["e2e_ms"].append((time.perf_counter() - t) * 1e3)
            for k, v in names.items():
                out[v].append(sink.get(k, 0.0) * 1e3)
            if split:
                read = sum(sink.get(s, 0.0) for s in READER_STAGES)
                out["calibrate"].append((sink.get("candidates", 0.0) - read) * 1e3)
            out["answered"] += a.text is not None
        return out

    def add(cmd: dict[str, Any]) -> dict[str, Any]:
        """Two releases one after the other (the first used to load spaCy; the build no longer parses)."""
        first = make_release(
            f"{cmd['text']}\n\nIssued again for the record.",
            title=f"{cmd['title']} (first)",
            path="bench/first-release.md",
        )
        rel = make_release(cmd["text"], title=cmd["title"], path="bench/new-release.md")
        t = time.perf_counter()
        assistant.add_releases([first], save=False)
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        added = assistant.add_releases([rel], save=False)
        t_add = time.perf_counter() - t
        t = time.perf_counter()
        a = assistant.ask(cmd["question"])
        t_ask = time.perf_counter() - t
        with tempfile.TemporaryDirectory(dir=Path(index).parent) as tmp:
            t = time.perf_counter()
            assistant.index.save(Path(tmp) / "copy")
            t_save = time.perf_counter() - t
        return {
            "added": len(added),
            "first_add_s": t_first,
            "add_s": t_add,
            "save_full_snapshot_s": t_save,
            "ask_after_add_s": t_ask,
            "found_new": bool(a.citation and a.citation.release_id in (rel.id, first.id)),
            "peak_rss_mb": peak_rss_mb(),
        }

    def passages(cmd: dict[str, Any]) -> dict[str, Any]:
        """The passages the neural reader reads for each question (for the Haystack reader)."""
        n = getattr(assistant.answerer, "passages", 3)
        hits = assistant.retriever.search_batch(cmd["questions"])
        return {
            "items": [
                {"question": q, "passages": [h.passage.text for h in hs[:n]]}
                for q, hs in zip(cmd["questions"], hits, strict=True)
            ]
        }

    return ready, {"run": run, "add": add, "passages": passages}


def _reader_name(assistant: Any) -> str | None:
    reader = getattr(assistant.answerer, "reader", None)
    return None if reader is None else f"{reader.path.name}/{reader.settings.precision}"


def bm25s_alone(passages: str) -> tuple[dict[str, Any], dict[str, Handler]]:
    import bm25s
    import Stemmer

    texts = [json.loads(line)["text"] for line in Path(passages).read_text(encoding="utf-8").splitlines()]
    stem = Stemmer.Stemmer("english").stemWords
    t = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False), show_progress=False
    )
    build_s = time.perf_counter() - t

    def ask(q: str) -> Any:
        toks = bm25s.tokenize([q], stopwords="en", stemmer=stem, show_progress=False)
        return retriever.retrieve(toks, k=10, show_progress=False, n_threads=1)

    ready = {
        "build_s": build_s,
        "passages": len(texts),
        "cold": {"process_to_ready_s": time.perf_counter() - T0},
    }
    return ready, {"run": lambda cmd: timed_queries(ask, cmd["questions"])}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("system", choices=["ours", "bm25s"])
    p.add_argument("--index")
    p.add_argument("--reader", default="features", choices=["features", "neural"])
    p.add_argument("--precision", choices=["fp32", "int8"], default=None)
    p.add_argument("--reader-path", default=None)
    p.add_argument("--passages")
    args = p.parse_args()
    out = take_stdout()
    if args.system == "ours":
        ready, handlers = ours(args.index, args.reader, args.precision, args.reader_path)
    else:
        ready, handlers = bm25s_alone(args.passages)
    serve(ready, handlers, out)


if __name__ == "__main__":
    main()
