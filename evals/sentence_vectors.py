"""Sentence vectors read in their passages ("late") against sentences encoded alone, and which
rankings hybrid retrieval should fuse: the measurement behind ``ChunkerSettings.sentence_vectors``
and ``Retriever``'s fusion (issue 15: a build that encodes no sentence on its own).

    python -m evals.sentence_vectors --out evals/reports/sentence-vectors

On tuning data only: press-train + press-tune (their releases plus a seeded sample of
``press-distractors.txt``) and a seeded sample of SQuAD v1.1 train articles. For each, the
passages are encoded once; the sentences both ways; then the gold passage's rank under each
fusion of the three rankings (passages by vector "d", passages by best sentence "s", BM25 "b").
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.embedding import SentenceTransformerEmbedder
from qa.evaluation.data import load_squad
from qa.index import Index
from qa.index.prepare import (
    ChunkedRelease,
    PreparedRelease,
    chunk_releases,
    encode_distinct,
    late_sentence_vectors,
)
from qa.ingest.chunking import Chunker, ChunkerSettings
from qa.ingest.releases import read_file
from qa.retrieval.fusion import reciprocal_rank_fusion
from qa.retrieval.retriever import Retriever
from qa.training.negatives import press_query
from qa.types import Passage, Release

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FUSIONS = {"d+s+b": (0, 1, 2), "s+b": (1, 2), "d+b": (0, 2), "s": (1,)}


@dataclass(frozen=True)
class Question:
    query: str
    answers: tuple[str, ...]
    release_id: str
    span: tuple[int, int] | None
    """Where in the release the answer is (SQuAD's paragraph); None: anywhere in it."""


def press_set(distractors: int, seed: int) -> tuple[list[Release], list[Question]]:
    ds = ROOT / "evals" / "datasets"
    rows = [json.loads(x) for f in ("press-train", "press-tune") for x in (ds / f"{f}.jsonl").open()]
    by_id = {r["id"]: r for r in rows}
    names = {r["near"] for r in rows}
    pool = [x.strip() for x in (ds / "press-distractors.txt").read_text().splitlines() if x.strip()]
    random.Random(seed).shuffle(pool)
    names |= set(pool[:distractors])
    archive = SHARED / "corpus" / "wh-briefings"
    releases = [
        r for n in sorted(names) if (archive / Path(n).name).is_file() for r in read_file(archive / n)
    ]
    by_name = {Path(r.path).name: r for r in releases}
    qs = [
        Question(press_query(r, by_id), tuple(r["answers"]), by_name[r["release"]].id, None)
        for r in rows
        if r["answers"] and r["release"] in by_name
    ]
    return releases, qs


def squad_set(articles: int, questions: int, seed: int) -> tuple[list[Release], list[Question]]:
    es = load_squad(SHARED / "train" / "squad-v1.1-train.json.gz")
    rng = random.Random(seed)
    releases = rng.sample(list(es.releases), articles)
    keep = {r.id for r in releases}
    items = [i for i in es.items if i.release_id in keep and i.answers]
    items = rng.sample(items, min(questions, len(items)))
    return releases, [Question(i.question, i.answers, i.release_id, i.span) for i in items]


def holds(q: Question, p: Passage) -> bool:
    inside = q.span is None or (p.start < q.span[1] and p.end > q.span[0])
    return p.release_id == q.release_id and inside and any(a in p.text for a in q.answers)


def index_of(
    emb: SentenceTransformerEmbedder, parts: Sequence[ChunkedRelease], pvec: np.ndarray, svec: np.ndarray
) -> Index:
    index = Index.empty(emb, ChunkerSettings(annotator=None))
    items, pi, si = [], 0, 0
    for x in parts:
        np_, ns = len(x.passages), len(x.sentences)
        items.append(
            PreparedRelease(x.release, x.passages, x.sentences, pvec[pi : pi + np_], svec[si : si + ns])
        )
        pi, si = pi + np_, si + ns
    index.add_prepared(items)
    return index


def score(
    index: Index, emb: SentenceTransformerEmbedder, qs: Sequence[Question]
) -> dict[str, dict[str, float]]:
    ret = Retriever(index, emb)
    queries = [q.query for q in qs]
    vecs = emb.encode(queries)
    depth = ret.depth
    rankings = list(
        zip(
            ret._dense(vecs, depth, None),
            ret._by_sentence(vecs, depth, None),
            ret._sparse(queries, depth, None),
            strict=True,
        )
    )
    out: dict[str, dict[str, float]] = {}
    for name, chans in FUSIONS.items():
        at1 = at5 = rel1 = 0
        for q, r in zip(qs, rankings, strict=True):
            top = [fid for fid, _ in reciprocal_rank_fusion([r[c] for c in chans], 5, ret.rrf_k)]
            found = index.passages.get_many(top)
            ps = [found[f] for f in top]
            ok = [holds(q, p) for p in ps]
            at1 += bool(ok) and ok[0]
            at5 += any(ok)
            rel1 += bool(ps) and ps[0].release_id == q.release_id
        n = max(1, len(qs))
        out[name] = {"gold_at_1": at1 / n, "gold_at_5": at5 / n, "release_at_1": rel1 / n}
    return out


def measure(
    name: str, releases: Sequence[Release], qs: Sequence[Question], emb: SentenceTransformerEmbedder
) -> dict[str, Any]:
    parts = chunk_releases(releases, Chunker(ChunkerSettings(annotator=None), emb.count_tokens))
    sentences = [s for x in parts for s in x.sentences]
    got = late_sentence_vectors(parts, emb)
    pvec, late = got.passages, got.sentences
    if not got.read.all():
        missed = np.flatnonzero(~got.read)
        late[missed] = emb.encode([sentences[i].text for i in missed])
    alone = encode_distinct(emb, [s.text for s in sentences])
    return {
        "set": name,
        "releases": len(releases),
        "passages": len(pvec),
        "sentences": len(sentences),
        "questions": len(qs),
        "cosine_late_alone": float((late * alone).sum(axis=1).mean()),
        "late": score(index_of(emb, parts, pvec, late), emb, qs),
        "alone": score(index_of(emb, parts, pvec, alone), emb, qs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--distractors", type=int, default=300)
    ap.add_argument("--articles", type=int, default=60, help="SQuAD train articles")
    ap.add_argument("--questions", type=int, default=1500, help="SQuAD train questions from them")
    ap.add_argument("--press-seed", type=int, default=5, help="picks the distractors")
    ap.add_argument("--squad-seed", type=int, default=3, help="picks the articles and questions")
    ap.add_argument("--encoder", choices=("onnx", "onnx-int8"), default="onnx")
    ap.add_argument("--out", type=Path, default=Path("evals/reports/sentence-vectors"))
    args = ap.parse_args()
    emb = SentenceTransformerEmbedder(backend=args.encoder)
    results = [
        measure("press-train + press-tune", *press_set(args.distractors, args.press_seed), emb),
        measure("SQuAD v1.1 train sample", *squad_set(args.articles, args.questions, args.squad_seed), emb),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sentence-vectors.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    lines = [
        f"# Sentence vectors read in their passages, or alone ({emb.name}, {args.encoder})",
        "",
        "Gold passage first / in the top 5, right release first; rankings fused: d passages by their "
        "vectors, s passages by their best sentence, b BM25.",
        "",
        "| set | sentences | fusion | late | alone |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for f in FUSIONS:
            a, b = r["late"][f], r["alone"][f]
            cell = "{gold_at_1:.3f} / {gold_at_5:.3f} / {release_at_1:.3f}"
            lines.append(
                f"| {r['set']} ({r['questions']} q, {r['releases']} releases) | {r['sentences']:,} | {f} | "
                f"{cell.format(**a)} | {cell.format(**b)} |"
            )
    lines += ["", *(f"- {r['set']}: mean cosine late vs alone {r['cosine_late_alone']:.3f}" for r in results)]
    (args.out / "sentence-vectors.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
