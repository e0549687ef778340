"""The Ray build beside the single-process build, on real releases (issue 18).

    python -m evals.bench_ray --sample 100 --out evals/reports/bench-ray

Builds the same seeded sample of ``wh-briefings`` releases three ways with the real model and
spaCy: in this process, on a local Ray runtime of 1 worker, and of 2 workers. Reports wall time
(Ray's start-up apart), passages and sentences a second, and whether the indexes are the same
(ids, offsets, manifest; the largest vector difference).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from qa.assistant import update_index
from qa.embedding import SentenceTransformerEmbedder
from qa.index import Index, read_manifest

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "wh-briefings"


def sample(archive: Path, n: int, seed: int, into: Path) -> Path:
    names = sorted(p.name for p in archive.glob("*.md"))
    into.mkdir(parents=True, exist_ok=True)
    for name in sorted(random.Random(seed).sample(names, n)):
        shutil.copyfile(archive / name, into / name)
    return into


def compare(a_root: Path, b_root: Path) -> dict[str, Any]:
    a, b = Index.load(a_root), Index.load(b_root)
    same_ids = (
        list(a.releases) == list(b.releases)
        and dict(a.passages.items()) == dict(b.passages.items())
        and dict(a.sentences.items()) == dict(b.sentences.items())
        and dict(a.annotations.items()) == dict(b.annotations.items())
    )
    diff = 0.0
    for va, vb, table in (
        (a.passage_vectors, b.passage_vectors, a.passages),
        (a.sentence_vectors, b.sentence_vectors, a.sentences),
    ):
        ids = np.array(sorted(dict(table.items())), dtype=np.int64)
        diff = max(diff, float(np.abs(va.reconstruct_batch(ids) - vb.reconstruct_batch(ids)).max()))
    ma, mb = read_manifest(a_root), read_manifest(b_root)
    lexical = {f: d for f, d in ma.files if f.startswith("bm25") or f == "stems.json"}
    return {
        "same_ids_offsets_annotations": same_ids,
        "same_manifest_counts": (ma.fingerprint, ma.passages, ma.sentences)
        == (mb.fingerprint, mb.passages, mb.sentences),
        "same_bm25": lexical == {f: d for f, d in mb.files if f in lexical},
        "max_vector_difference": diff,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--out", type=Path, default=Path("evals/reports/bench-ray"))
    args = ap.parse_args()
    from qa.index.ray_build import RayBuild

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        corpus = sample(args.archive, args.sample, args.seed, work / "wh-sample")
        rows: list[dict[str, Any]] = []
        emb = SentenceTransformerEmbedder()
        emb.encode(["warm up"])  # the model's load and ONNX export are not the build's
        t0 = time.perf_counter()
        local = update_index(work / "local", [corpus], embedder=emb)
        rows.append({"build": "single process", "startup_s": 0.0, "build_s": time.perf_counter() - t0})
        for workers in (1, 2):
            t0 = time.perf_counter()
            with RayBuild(workers=workers) as ray_workers:
                t1 = time.perf_counter()
                update_index(work / f"ray{workers}", [corpus], embedder=emb, workers=ray_workers)
                t2 = time.perf_counter()
            rows.append(
                {
                    "build": f"Ray, {workers} worker{'s' if workers > 1 else ''}",
                    "startup_s": t1 - t0,
                    "build_s": t2 - t1,
                    **compare(work / "local", work / f"ray{workers}"),
                }
            )
        for r in rows:
            r["passages_per_s"] = local.passages / r["build_s"]
            r["sentences_per_s"] = local.sentences / r["build_s"]
            r["vs_single_process"] = rows[0]["build_s"] / r["build_s"]
        report = {
            "releases": local.releases,
            "passages": local.passages,
            "sentences": local.sentences,
            "sample": {"archive": str(args.archive), "n": args.sample, "seed": args.seed},
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg(),
            "rows": rows,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-ray.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    lines = [
        f"# Ray build beside the single-process build: {report['releases']} wh-briefings releases, "
        f"{report['passages']} passages, {report['sentences']} sentences, {report['cpus']} CPUs",
        "",
        "| build | start-up s | build s | passages/s | sentences/s | vs single process | same index |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        same = (
            "-"
            if "same_bm25" not in r
            else f"ids/offsets {r['same_ids_offsets_annotations']}, BM25 {r['same_bm25']}, "
            f"max vector diff {r['max_vector_difference']:.1e}"
        )
        lines.append(
            f"| {r['build']} | {r['startup_s']:.1f} | {r['build_s']:.1f} | {r['passages_per_s']:.2f} | "
            f"{r['sentences_per_s']:.1f} | {r['vs_single_process']:.2f}x | {same} |"
        )
    (args.out / "bench-ray.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
