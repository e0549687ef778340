"""Speed and scale benchmark (issue 7): ``python -m evals.bench --out DIR [--quick]``.

Measures, in one run on this machine: the encoder lever (ONNX Runtime against torch), the index
build against the raw encoder on the same texts (with where the time goes), ``Assistant.ask``
per stage at 1k/10k/100k passages beside bm25s, txtai and Haystack (each in its own venv),
cold start, peak RSS, adding one release, and flat against HNSW search. Systems are interleaved
round by round and medians reported, because the 2 cores are shared. Writes ``bench.json`` and
``bench.md`` to DIR.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss
import numpy as np

from evals import bench_ann, bench_encoder
from evals.bench_build import raw_encoder, timed_build
from evals.bench_corpus import CACHE, US_GOV, question_set, squad_items
from evals.bench_peers import BESIDE, Worker, start
from evals.bench_report import render
from evals.bench_scale import base_index, sized_index
from evals.bench_stats import summary
from qa.answer.span_reader import reader_available
from qa.embedding import SentenceTransformerEmbedder
from qa.index import IVF_FROM, Index, vector_ids
from qa.text import passage_embedding_text

logger = logging.getLogger("evals.bench")

PEERS = ("bm25s", "txtai", "haystack", "haystack-reader")


def other_precision() -> str:
    """The reader precision the shipped calibration does not run (benched beside it)."""
    from qa.answer.neural import Calibration
    from qa.answer.span_reader import READER_PATH

    cal = READER_PATH / "calibration.json"
    shipped = Calibration.load(cal).precision if cal.is_file() else "fp32"
    return "int8" if shipped == "fp32" else "fp32"


def _load() -> list[float]:
    return list(os.getloadavg())


def sentence_vectors(index_path: Path) -> np.ndarray:
    """Every sentence vector of an index (flat or IVF), rows in id order."""
    vectors = Index.load(index_path).sentence_vectors
    return np.ascontiguousarray(vectors.reconstruct_batch(vector_ids(vectors)), dtype=np.float32)


def export_passages(index_path: Path, cache: Path = CACHE) -> tuple[Path, Path]:
    """The index's passages as the dense encoder sees them, and their vectors, for the peers."""
    out = cache / "peers" / index_path.name
    texts, vecs = out / "passages.jsonl", out / "vectors.npy"
    if not vecs.is_file():
        index = Index.load(index_path)
        fids = vector_ids(index.passage_vectors)
        all_vecs = index.passage_vectors.reconstruct_batch(fids)
        found = index.passages.get_many(fids.tolist())
        out.mkdir(parents=True, exist_ok=True)
        with texts.open("w", encoding="utf-8") as f:
            for fid in fids.tolist():
                p = found[fid]
                text = passage_embedding_text(index.releases[p.release_id], p)
                f.write(json.dumps({"fid": fid, "text": text}) + "\n")
        np.save(vecs, np.ascontiguousarray(all_vecs, dtype=np.float32))
    return texts, vecs


def real_questions(n: int) -> list[str]:
    """A seeded sample of press-train's questions (asked of wh-briefings releases; not a set
    anything is reported on), follow-ups left out."""
    path = Path(__file__).resolve().parent / "datasets" / "press-train.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    qs = [r["question"] for r in rows if not r.get("followup_of")]
    return random.Random(15).sample(qs, min(n, len(qs)))


def build_bench(n_releases: int, rounds: int, work: Path) -> dict[str, Any]:
    """The whole index build (both backends, interleaved) against the raw encoder, same texts."""
    files = sorted(str(p) for p in US_GOV.glob("*.md"))
    files = random.Random(7).sample(files, min(n_releases, len(files)))
    runs: dict[str, list[dict[str, Any]]] = {"onnx": [], "torch": []}
    for r in range(rounds):
        order = ["onnx", "torch"] if r % 2 == 0 else ["torch", "onnx"]
        for backend in order:
            emb = SentenceTransformerEmbedder(backend=backend)
            emb.encode(["warm up"])
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                b = timed_build(Path(tmp) / "idx", files, emb)
            texts, ptexts = b.pop("_texts"), b.pop("_passage_texts")
            b["raw_encoder_seconds_all_texts"] = raw_encoder(emb, texts)
            b["raw_encoder_seconds_passages"] = raw_encoder(emb, ptexts)
            runs[backend].append(b)
            logger.warning("build %s round %d: %.1f s", backend, r + 1, b["seconds"])
    return {"releases": len(files), "rounds": rounds, "runs": runs}


def query_bench(
    sizes: dict[str, Path],
    questions: list[str],
    rounds: int,
    peers: tuple[str, ...],
    logs: Path,
    add_doc: dict[str, str],
    *,
    peers_embed: bool,
    beside: Path | None = None,
) -> dict[str, Any]:
    """Per size: start every system's worker, then interleave rounds of the same questions."""
    out: dict[str, Any] = {}
    warm = questions[:5]
    for label, path in sizes.items():
        texts, vecs = export_passages(path)
        res: dict[str, Any] = {"index": path.name, "systems": {}}
        workers: dict[str, Worker] = {}
        try:
            logger.warning("size %s: starting workers", label)
            workers["ours"] = start("ours", index=path, passages=texts, vectors=None, logs=logs)
            if reader_available():
                workers["ours-neural"] = start(
                    "ours-neural", index=path, passages=texts, vectors=None, logs=logs
                )
                other = f"ours-neural-{other_precision()}"  # the same weights at the other precision
                workers[other] = start(other, index=path, passages=texts, vectors=None, logs=logs)
                if beside is not None:  # e.g. the teacher beside a shipped student
                    workers[BESIDE] = start(
                        BESIDE, index=path, passages=texts, vectors=None, logs=logs, reader_path=beside
                    )
            for peer in peers:
                if peer == "haystack-reader" and "ours-neural" not in workers:
                    continue  # no reader shipped: nothing to compare with
                # peers embed the base corpus themselves (their build is timed); larger sizes get
                # the same model's vectors so only their query path is measured
                own = peers_embed and label == "1k" and peer != "bm25s"
                try:
                    workers[peer] = start(
                        peer, index=path, passages=texts, vectors=None if own else vecs, logs=logs
                    )
                except Exception as e:  # a peer that fails is reported, not fatal
                    res["systems"][peer] = {"error": str(e)}
                    logger.warning("peer %s failed at %s: %s", peer, label, e)
            for w in workers.values():
                w.ask({"cmd": "run", "questions": warm})
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in workers}
            for r in range(rounds):
                names = list(workers)
                names = names[r % len(names) :] + names[: r % len(names)]
                for name in names:
                    runs[name].append(workers[name].ask({"cmd": "run", "questions": questions}))
                logger.warning("size %s round %d done", label, r + 1)
            if "haystack-reader" in workers:
                # the same reader weights on the very passages our reader read
                items = workers["ours-neural"].ask({"cmd": "passages", "questions": questions})["items"]
                read = workers["haystack-reader"].ask({"cmd": "read", "items": items})
                res["reader_alone"] = {
                    "haystack_read_ms": summary(read["read_ms"]),
                    "passages_per_question": max(len(i["passages"]) for i in items),
                }
            add = workers["ours"].ask({"cmd": "add", **add_doc})
            for name, w in workers.items():
                merged: dict[str, list[float]] = {}
                for run in runs[name]:
                    for key, vals in run.items():
                        if isinstance(vals, list) and vals and isinstance(vals[0], float):
                            merged.setdefault(key, []).extend(vals)
                res["systems"][name] = {
                    "ready": w.ready,
                    "ms": {key: summary(v) for key, v in merged.items()},
                    "peak_rss_mb": runs[name][-1]["peak_rss_mb"] if runs[name] else None,
                    "answered": [run.get("answered") for run in runs[name]],
                }
            res["add_one_release"] = add
        finally:
            for w in workers.values():
                w.close()
        vectors = np.load(vecs)
        qv = SentenceTransformerEmbedder().encode(questions)
        res["ann"] = bench_ann.compare(vectors, qv)
        if label != "1k":
            res["ann_near_duplicates"] = bench_ann.compare(bench_ann.near_duplicates(vectors), qv)
        svecs = sentence_vectors(path)
        if len(svecs) >= IVF_FROM:  # where the index itself switched to IVF
            res["ivf_sentences"] = bench_ann.ivf_check(svecs, qv)
            res["ivf_sentences_near_duplicates"] = bench_ann.ivf_check(bench_ann.near_duplicates(svecs), qv)
        del svecs
        out[label] = res
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="evals/reports/bench", help="folder for bench.json and bench.md")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    p.add_argument("--sizes", help="comma-separated passage counts (default 1000,10000,100000)")
    p.add_argument("--no-peers", action="store_true", help="skip txtai and Haystack (bm25s stays)")
    p.add_argument(
        "--peers",
        default=None,
        help=f"comma-separated peers to run (default all: {','.join(PEERS)}), e.g. bm25s,haystack-reader",
    )
    p.add_argument(
        "--real",
        type=Path,
        help="an index of the real archive (evals/bench_archive.py builds one): every system asked "
        "press-train questions over it, beside the synthetic sizes",
    )
    p.add_argument("--real-only", action="store_true", help="with --real: skip the synthetic sizes")
    p.add_argument(
        "--beside",
        type=Path,
        default=None,
        help="a reader folder (weights + calibration.json) benched beside the shipped one, e.g. the teacher",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("faiss.loader", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    quick = args.quick
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([1000, 10000] if quick else [1000, 10000, 100000])
    )
    n_questions, rounds = (20, 1) if quick else (60, 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=CACHE))
    report: dict[str, Any] = {
        "quick": quick,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": _load(),
            "faiss": faiss.__version__,
        },
    }
    t0 = time.perf_counter()
    peers = ("bm25s",) if args.no_peers else PEERS
    if args.peers is not None:
        peers = tuple(x.strip() for x in args.peers.split(",") if x.strip())
        unknown = [x for x in peers if x not in PEERS]
        if unknown:
            p.error(f"unknown peers {unknown!r}; known: {', '.join(PEERS)}")
    if args.real is not None:
        real_q = real_questions(n_questions)
        add_real = {"title": "A new statement on the archive", "text": real_q[0], "question": real_q[0]}
        logger.warning("the real archive: %s", args.real)
        report["real"] = query_bench(
            {"real archive": args.real},
            real_q,
            rounds,
            peers,
            out / "logs",
            add_real,
            peers_embed=False,
            beside=args.beside,
        )
        report["real_questions"] = {"n": len(real_q), "sample": real_q[:6]}
        built = out / "bench-archive.json"  # the build in the same `make bench` run
        if built.is_file():
            report["real_build"] = json.loads(built.read_text(encoding="utf-8"))
    if args.real_only:
        report["questions"] = report.get("real_questions", {"n": 0, "sample": []})
        return _write(report, out, t0)
    emb = SentenceTransformerEmbedder()
    base_path, base_info = base_index(emb, 1000)
    report["base_build"] = {k: v for k, v in base_info.items() if k not in ("squad_questions",)}
    questions = question_set(base_info["squad_questions"], n_questions)
    report["questions"] = {"n": len(questions), "sample": questions[:6]}

    base = Index.load(base_path)
    ptexts = [
        passage_embedding_text(base.releases[p.release_id], p) for p in list(base.passages.values())[:64]
    ]
    logger.warning("encoder lever: torch against ONNX Runtime")
    report["encoder"] = bench_encoder.compare(ptexts[: 16 if quick else 64], questions, 1 if quick else 3)
    logger.warning("index build against the raw encoder")
    report["build"] = build_bench(4 if quick else 12, 1 if quick else 2, work)

    labels = {1000: "1k", 10000: "10k", 100000: "100k"}
    paths = {labels.get(n, str(n)): sized_index(base_path, n) for n in sizes}
    extra = squad_items()[-1]
    add_doc = {
        "title": f"{extra.title}: a new statement",
        "text": extra.context,
        "question": extra.questions[0] if extra.questions else extra.title,
    }
    report["queries"] = query_bench(
        paths, questions, rounds, peers, out / "logs", add_doc, peers_embed=not quick, beside=args.beside
    )
    return _write(report, out, t0)


def _write(report: dict[str, Any], out: Path, t0: float) -> int:
    report["machine"]["load_after"] = _load()
    report["seconds"] = time.perf_counter() - t0
    (out / "bench.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "bench.md").write_text(render(report), encoding="utf-8")
    print(f"wrote {out / 'bench.md'} and {out / 'bench.json'} in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
