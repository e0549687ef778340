"""The build of the whole real archive, against the bare encoder on the same texts (issue 15).

    python -m evals.bench_archive --out evals/reports/bench
    python -m evals.bench_archive --sample 500 --out /tmp/quick   # a seeded sample of wh-briefings
    python -m evals.bench_archive --encoder onnx                  # the float encoder (default int8)

Runs ``update_index`` (what ``release-qa index`` runs) over ``corpus/`` + ``us-gov-cyber/`` +
``wh-briefings/`` into a fresh folder and times it. The bare encoder (the same ``Embedder.encode``
the build calls, nothing else around it) is timed on a seeded share of the texts twice, before
the build (the files sampled and chunked as the build chunks them) and after it (the passages
and sentences the index holds), and each rate scaled to all the build embedded: the throughput
ratio is the mean of the two estimates over the build's time. This machine's speed drifts by
10-20% over an hour (other tenants); two probes show it, and the mean is fairer to the build
than either. The report says how loaded the machine was and how much CPU the host took from it
(steal: this virtual machine loses 0-30% to its neighbours), and gives CPU seconds beside wall
time: the ratio holds under load, the wall time does not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from qa.assistant import update_index
from qa.embedding import SentenceTransformerEmbedder
from qa.index import Index
from qa.index.prepare import chunk_releases, late_sentence_vectors
from qa.ingest.chunking import Chunker, ChunkerSettings
from qa.ingest.releases import read_releases
from qa.text import passage_embedding_text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"
SOURCES = (ROOT / "corpus", SHARED / "us-gov-cyber", SHARED / "wh-briefings")


def sources(sample: int | None, seed: int, work: Path) -> list[Path]:
    """The three folders, or with ``sample`` the first two and a seeded sample of the archive."""
    if sample is None:
        return list(SOURCES)
    archive = SOURCES[2]
    names = sorted(p.name for p in archive.glob("*.md"))
    into = work / "wh-sample"
    into.mkdir(parents=True)
    for name in random.Random(seed).sample(names, sample):
        shutil.copyfile(archive / name, into / name)
    return [*SOURCES[:2], into]


class Clock:
    """Wall time, this process's CPU time (threads included) and the host's CPU steal since it
    was made. On a shared virtual machine the hypervisor takes CPU from it (``st`` in top: 0% to
    over 30% within an hour here): wall times move with it, CPU seconds do not."""

    def __init__(self) -> None:
        self.wall, self.cpu, self.host = time.perf_counter(), _cpu(), _host()

    def read(self) -> dict[str, float]:
        (steal, total), (steal0, total0) = _host(), self.host
        return {
            "wall_s": time.perf_counter() - self.wall,
            "cpu_s": _cpu() - self.cpu,
            "steal_share": (steal - steal0) / (total - total0) if total > total0 else 0.0,
        }


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _host() -> tuple[int, int]:
    """(steal, all) jiffies of every CPU since boot, from /proc/stat ((0, 0) where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return fields[7], sum(fields)


def _time_bare(
    emb: SentenceTransformerEmbedder, passages: list[str], sentences: list[str]
) -> dict[str, float]:
    """Wall and CPU seconds per passage and per sentence of the bare encoder (``Embedder.encode``,
    as the build calls it, nothing around it), and the host's steal meanwhile."""
    clock = Clock()
    emb.encode(passages)
    p = clock.read()
    clock = Clock()
    emb.encode(sentences)
    s = clock.read()
    n_p, n_s = max(1, len(passages)), max(1, len(sentences))
    return {
        "per_passage_s": p["wall_s"] / n_p,
        "per_sentence_s": s["wall_s"] / n_s,
        "cpu_per_passage_s": p["cpu_s"] / n_p,
        "cpu_per_sentence_s": s["cpu_s"] / n_s,
        "steal_share": (p["steal_share"] + s["steal_share"]) / 2,
    }


def probe_before(
    srcs: list[Path], emb: SentenceTransformerEmbedder, share: float, seed: int
) -> dict[str, Any]:
    """The bare encoder's rates before the build, on the passages and sentences of a seeded
    ``share`` of the files, chunked as the build chunks them (``ChunkerSettings()``)."""
    files = sorted(f for s in srcs for f in (s.rglob("*") if s.is_dir() else [s]) if f.is_file())
    picked = random.Random(seed).sample(files, max(1, round(share * len(files))))
    releases = read_releases(picked).releases
    chunker = Chunker(ChunkerSettings(), emb.count_tokens)
    parts = chunk_releases(releases, chunker)
    passages = [passage_embedding_text(x.release, p) for x in parts for p in x.passages]
    sentences = [s.text for x in parts for s in x.sentences]
    out: dict[str, Any] = {
        "files": len(picked),
        "passages": len(passages),
        "sentences": len(sentences),
        **_time_bare(emb, passages, sentences),
    }
    # with late sentence vectors: what the build's passage pass costs beyond ``encode``, and the
    # share of sentences no passage's tokens reach (encoded on their own)
    out["late_per_passage_s"], out["unread_share"] = out["per_passage_s"], 1.0
    if ChunkerSettings().sentence_vectors == "late":
        clock = Clock()
        read = late_sentence_vectors(parts, emb).read
        out["late_per_passage_s"] = clock.read()["wall_s"] / max(1, len(passages))
        out["unread_share"] = float((~read).mean()) if len(read) else 0.0
    return out


def probe_after(index: Index, emb: SentenceTransformerEmbedder, share: float, seed: int) -> dict[str, Any]:
    """The bare encoder's rates after the build, on a seeded ``share`` of the passages and
    sentences the build embedded."""
    rng = random.Random(seed)
    ps = rng.sample(list(index.passages.values()), max(1, round(share * len(index.passages))))
    ss = rng.sample(list(index.sentences.values()), max(1, round(share * len(index.sentences))))
    texts = [passage_embedding_text(index.releases[p.release_id], p) for p in ps]
    return {"passages": len(ps), "sentences": len(ss), **_time_bare(emb, texts, [s.text for s in ss])}


def bare_estimate(probe: dict[str, Any], passages: int, sentences: float, *, cpu: bool = False) -> float:
    """Seconds (wall, or with ``cpu`` CPU) the bare encoder would take for ``passages`` and
    ``sentences`` at a probe's rates."""
    pre = "cpu_" if cpu else ""
    return probe[f"{pre}per_passage_s"] * passages + probe[f"{pre}per_sentence_s"] * sentences


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=None, help="a seeded sample of wh-briefings (default: all)")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--share", type=float, default=0.1, help="share of the texts the bare encoder times")
    ap.add_argument(
        "--index", type=Path, default=None, help="build here and keep it (default: a temp folder)"
    )
    ap.add_argument("--replace", action="store_true", help="delete an index already at --index first")
    ap.add_argument("--out", type=Path, default=Path("evals/reports/bench"))
    ap.add_argument("--note", default="", help="what else ran on the machine, for the report")
    ap.add_argument("--encoder", choices=("onnx", "onnx-int8"), default="onnx-int8")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        srcs = sources(args.sample, args.seed, work)
        root = args.index if args.index is not None else work / "index"
        if root.exists() and not args.replace:
            raise SystemExit(f"{root} exists: the bench times a build from nothing (--replace deletes it)")
        shutil.rmtree(root, ignore_errors=True)
        emb = SentenceTransformerEmbedder(backend=args.encoder)
        emb.encode(["warm up"])  # the model's load and ONNX export are not the build's
        # the bare encoder timed before and after the build (half the share each): a machine whose
        # speed drifts during an hour-long build shows as two different estimates
        before = probe_before(srcs, emb, args.share / 2, args.seed)
        load_before = os.getloadavg()
        clock = Clock()
        built = update_index(root, srcs, embedder=emb, progress=True)
        build = clock.read()
        build_s = build["wall_s"]
        load_after_build = os.getloadavg()
        index = Index.load(root, emb)
        after = probe_after(index, emb, args.share / 2, args.seed)
        # the texts the build encoded: its passages and, with late sentence vectors, only the
        # sentences no passage read (their share measured on the probe's sample)
        encoded = built.sentences * before["unread_share"]
        n = (built.passages, encoded)
        est_before, est_after = bare_estimate(before, *n), bare_estimate(after, *n)
        bare_s = (est_before + est_after) / 2
        bare_cpu_s = (bare_estimate(before, *n, cpu=True) + bare_estimate(after, *n, cpu=True)) / 2
        # beside it, what encoding every passage and every sentence on its own would take
        whole = (built.passages, built.sentences)
        separate_s = (bare_estimate(before, *whole) + bare_estimate(after, *whole)) / 2
        report = {
            "sources": [str(s) for s in SOURCES]
            + ([f"sample {args.sample} seed {args.seed}"] if args.sample else []),
            "encoder": f"{emb.name} ({emb.backend})",
            "releases": built.releases,
            "skipped": len(built.skipped),
            "passages": built.passages,
            "sentences": built.sentences,
            "build_s": build_s,
            "passages_per_s": built.passages / build_s,
            "sentences_per_s": built.sentences / build_s,
            "bare_encoder": {"share": args.share, "before": before, "after": after},
            "bare_encoder_before_s": est_before,
            "bare_encoder_after_s": est_after,
            "bare_encoder_s": bare_s,
            "ratio": bare_s / build_s,
            "sentence_vectors": ChunkerSettings().sentence_vectors,
            "sentences_encoded": encoded,
            "late_passage_cost": before["late_per_passage_s"] / before["per_passage_s"],
            "bare_encoder_separate_s": separate_s,
            "ratio_to_separate": separate_s / build_s,
            "build_cpu_s": build["cpu_s"],
            "bare_encoder_cpu_s": bare_cpu_s,
            "cpu_ratio": bare_cpu_s / build["cpu_s"],
            "steal_share": {
                "build": build["steal_share"],
                "before": before["steal_share"],
                "after": after["steal_share"],
            },
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after_build": load_after_build,
            "note": args.note,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-archive.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    r = report
    lines = [
        f"# The real archive built: {r['releases']} releases ({r['skipped']} skipped), "
        f"{r['passages']:,} passages, {r['sentences']:,} sentences",
        "",
        f"Encoder {r['encoder']}, {r['cpus']} CPUs, load average before {r['load_before'][0]:.1f}, "
        f"after the build {r['load_after_build'][0]:.1f}; the host took {r['steal_share']['build']:.0%} "
        f"of the CPU from this machine during the build (steal; {r['steal_share']['before']:.0%} and "
        f"{r['steal_share']['after']:.0%} during the bare encoder's timings). {r['note']}",
        "",
        f"CPU seconds (unmoved by steal): the build {r['build_cpu_s'] / 60:.1f} min, the bare encoder "
        f"{r['bare_encoder_cpu_s'] / 60:.1f} min on the same texts: {r['cpu_ratio']:.2f}x.",
        "",
        f"Sentence vectors: {r['sentence_vectors']} (read in their passages: the passage pass cost "
        f"{r['late_passage_cost']:.2f}x a bare passage encoding on the probe; {r['sentences_encoded']:,.0f} "
        f"sentences no passage reached were encoded on their own). The bare encoder on every passage "
        f"and every sentence on its own would take {r['bare_encoder_separate_s'] / 60:.1f} min: "
        f"{r['ratio_to_separate']:.2f}x the build's throughput.",
        "",
        "| build wall time | passages/s | sentences/s | bare encoder, same texts (before / after the "
        f"build, {r['bare_encoder']['share'] / 2:.0%} each) | build throughput / bare encoder's | peak RSS |",
        "|---|---|---|---|---|---|",
        f"| {r['build_s'] / 60:.1f} min | {r['passages_per_s']:.1f} | {r['sentences_per_s']:.1f} | "
        f"{r['bare_encoder_s'] / 60:.1f} min ({r['bare_encoder_before_s'] / 60:.1f} / "
        f"{r['bare_encoder_after_s'] / 60:.1f}) | {r['ratio']:.2f}x | {r['peak_rss_mb']:.0f} MB |",
    ]
    (args.out / "bench-archive.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
