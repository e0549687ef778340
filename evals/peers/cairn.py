"""Adapter for the peer cairn-pipeline 0.1.0, run with the peer's own venv (evals/.peers/cairn).

    evals/.peers/cairn/bin/python evals/peers/cairn.py REQUEST.json

REQUEST.json: {"corpus_dir": folder of <release_id>.txt files (each release's text exactly),
"questions": [{"id", "question"}], "model_path": the packaged MiniLM folder, "work_dir": where
cairn keeps its index and config, "output": the JSONL to write, "depth": passages retrieved
for the retrieval metrics, "mode": hybrid | dense | bm25}.

Output, one line per question: {"id", "answer" (the cited sentence, or null), "abstained"
(cairn's own decision), "confidence", "doc" (release id), "start", "end" (offsets in the
release text), "passages": [[doc, start, end], ...], "ms": {stage: milliseconds}}.

Cairn is configured as its README's local configuration without the reranker
(hybrid-local-norerank): sentence_window chunks of 6 sentences (overlap 2), the
sentence-transformers embedder pointed at the packaged model, a FAISS index, hybrid
retrieval with k=8, the deterministic extractive "stub" provider (cairn's offline answerer:
the sentence of highest question-word overlap), the weighted confidence. It has no chat
history, so follow-ups are asked as written. Imports only the standard library and cairn:
this file never runs in the project's venv.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# this file is named like the package it drives: keep its own folder off the import path
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIG = """\
name: {name}
description: release-qa eval peer ({mode}, local MiniLM, no reranker, stub extractive answerer)
corpus: {corpus}
golden: golden.jsonl
ingest:
  chunker: {{name: sentence_window, params: {{window: 6, overlap: 2}}}}
  include: ["**/*.txt"]
embedding:
  name: sentence_transformers
  params: {{model: {model}}}
index: {{backend: faiss, dir: {index}}}
retrieval:
  mode: {mode}
  k: 8
  candidates: 40
  rrf_k: 60
generation:
  provider: {{name: stub}}
calibration: {{alpha: 0.35, split: 0.4, seed: 7, dir: {calibration}}}
judge: {{name: stub}}
confidence:
  name: weighted
  params: {{w_retrieval: 0.4, w_rerank: 0.3, w_self: 0.2, w_citation: 0.1}}
"""


STUB_ABSTAIN_BELOW = 0.2
"""The stub provider's own abstain flag (its ``abstain_below`` default), cairn's decision when
nothing was calibrated."""


def _doc_id(chunk: object) -> str:
    return Path(str(getattr(chunk, "source", ""))).stem


def main(request_path: str) -> int:
    from cairn import __version__
    from cairn.core.config import load_config
    from cairn.core.errors import CairnError
    from cairn.pipeline import Pipeline

    req = json.loads(Path(request_path).read_text(encoding="utf-8"))
    work = Path(req["work_dir"]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    mode = req.get("mode", "hybrid")
    cfg_path = work / f"cairn-{mode}.yaml"
    cfg_path.write_text(
        CONFIG.format(
            name=f"release-qa-{mode}",
            mode=mode,
            corpus=json.dumps(str(Path(req["corpus_dir"]).resolve())),
            model=json.dumps(str(req["model_path"])),
            index=json.dumps(str(work / "index")),
            calibration=json.dumps(str(work / "calibration")),
        ),
        encoding="utf-8",
    )
    pipeline = Pipeline.from_config(load_config(cfg_path))
    t0 = time.perf_counter()
    try:
        manifest = pipeline.load_index()
        built = False
    except CairnError:
        manifest = pipeline.ingest()
        built = True
    ingest_s = time.perf_counter() - t0
    depth = int(req.get("depth", 20))
    k = pipeline.cfg.retrieval.k
    with Path(req["output"]).open("w", encoding="utf-8") as out:
        questions = req["questions"]
        for n, q in enumerate(questions, 1):
            if n % 250 == 0 or n == len(questions):
                print(f"cairn: {n}/{len(questions)} questions", file=sys.stderr, flush=True)
            t = time.perf_counter()
            passages, timings = pipeline.retrieve_timed(q["question"], max(depth, k))
            # threshold 0 keeps cairn's best guess for every question (for the threshold sweep);
            # its own decision without calibration is the stub's flag: overlap below 0.2
            answer = pipeline.answer(
                q["question"], threshold=0.0, passages=passages[:k], use_calibration=False
            )
            total = (time.perf_counter() - t) * 1000
            answered = answer.status.value == "answered"
            own_overlap = answer.confidence_components.get("self", 0.0)
            cited = next((c for claim in answer.claims for c in claim.citations if c.end > c.start), None)
            doc = start = end = best = None
            if answered:
                best = answer.text
            if answered and cited is not None:
                chunk = pipeline.chunk_store.get(cited.chunk_id)
                doc, start, end = _doc_id(chunk), chunk.start + cited.start, chunk.start + cited.end
            ms = {"retrieve": float(timings.get("retrieve", 0))}
            ms.update({s: float(v) for s, v in answer.stage_latency_ms.items() if s != "retrieve"})
            ms["total"] = total
            row = {
                "id": q["id"],
                "answer": best,
                "abstained": best is None or own_overlap < STUB_ABSTAIN_BELOW,
                "confidence": answer.confidence,
                "doc": doc,
                "start": start,
                "end": end,
                "passages": [[_doc_id(p.chunk), p.chunk.start, p.chunk.end] for p in passages[:depth]],
                "ms": ms,
            }
            out.write(json.dumps(row) + "\n")
    meta = {
        "cairn_version": __version__,
        "chunks": manifest.chunk_count,
        "documents": manifest.doc_count,
        "index_built_now": built,
        "index_seconds": round(ingest_s, 1),
    }
    Path(req["output"]).with_suffix(".meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
