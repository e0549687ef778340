"""Scale corpora for the benchmark: real text, varied deterministically, cached under ``.bench/``.

The base corpus (about 1k passages) is real releases plus SQuAD contexts written as releases,
indexed by the real pipeline. Larger sizes republish the base releases: each copy gets its own
date, source, path and a trailing reference line, so it is a distinct release, while its title
and passages keep their text and so their model vectors and annotations (copied, not
recomputed: on 2 shared cores embedding 100k passages would take hours). Search, BM25, the
answerer, memory and load time all see an index of the full size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.index import Index, sentence_key, vector_id, vector_ids
from qa.ingest.chunking import Chunker, ChunkerSettings
from qa.types import Passage, Release, Sentence, content_hash

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
US_GOV = SHARED / "corpus" / "us-gov-cyber"
SQUAD_FILES = (
    SHARED / "evals" / "squad-v1.1-dev-shared.json",
    SHARED / "evals" / "squad-v2.0-dev-shared.json",
)
SEED = ROOT / "corpus"
CACHE = Path(os.environ.get("RELEASE_QA_BENCH_CACHE", ROOT / ".bench"))
CORPUS_VERSION = 1
"""Bumped when the corpus recipe changes, so cached corpora and indexes are rebuilt."""

SOURCES = (
    "The White House (Executive Office of the President)",
    "U.S. Department of Health and Human Services",
    "Cyber Security Agency of Singapore",
    "Ministry of Examples",
    "Office of the National Cyber Director",
    "Department of Commerce",
)


@dataclass(frozen=True, slots=True)
class SquadItem:
    title: str
    context: str
    questions: tuple[str, ...]


def squad_items() -> list[SquadItem]:
    """Unique SQuAD contexts (v1.1 then v2.0 dev, shared halves) with their answerable questions."""
    seen: set[str] = set()
    out: list[SquadItem] = []
    for f in SQUAD_FILES:
        if not f.is_file():
            continue
        for art in json.loads(f.read_text(encoding="utf-8"))["data"]:
            for para in art["paragraphs"]:
                ctx = " ".join(para["context"].split())
                if ctx in seen:
                    continue
                seen.add(ctx)
                qs = tuple(q["question"] for q in para["qas"] if not q.get("is_impossible"))
                out.append(SquadItem(art["title"].replace("_", " "), ctx, qs))
    return out


def _release_md(title: str, date: dt.date, source: str, body: str) -> str:
    head = f"title: {json.dumps(title)}\ndate: {date.isoformat()}\nsource: {json.dumps(source)}"
    return f"---\n{head}\n---\n\n{body}\n"


def _date_of(key: str, lo: int = 2000, span_days: int = 26 * 365) -> dt.date:
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return dt.date(lo, 1, 1) + dt.timedelta(days=h % span_days)


def write_squad_releases(folder: Path, count_tokens: object, target_passages: int, have: int) -> list[str]:
    """Write SQuAD contexts as releases (two paragraphs of one article each) until the base corpus
    reaches ``target_passages``; returns the questions of the contexts written."""
    folder.mkdir(parents=True, exist_ok=True)
    chunker = Chunker(ChunkerSettings(), count_tokens)  # type: ignore[arg-type]
    items = squad_items()
    questions: list[str] = []
    i = n = 0
    while i < len(items) and have < target_passages:
        group = [items[i]]
        if i + 1 < len(items) and items[i + 1].title == items[i].title:
            group.append(items[i + 1])
        i += len(group)
        title = f"{group[0].title}: statement {n + 1:04d}"
        body = "\n\n".join(g.context for g in group)
        date = _date_of(title)
        text = _release_md(title, date, "Wikipedia via SQuAD (CC BY-SA 4.0)", body)
        (folder / f"squad-{n:04d}.md").write_text(text, encoding="utf-8")
        rel = Release(content_hash(body), body, title, "x")
        have += len(chunker.chunk(rel))
        for g in group:
            questions.extend(g.questions[:2])
        n += 1
    return questions


def base_sources(cache: Path = CACHE, target_passages: int = 1000, count_tokens: object = None) -> dict:
    """The folders of the base corpus and its questions; SQuAD releases are written once."""
    folder = cache / "corpus" / f"squad-v{CORPUS_VERSION}-{target_passages}"
    meta = folder / "meta.json"
    sources = [str(SEED), str(US_GOV)]
    if not meta.is_file():
        from qa.ingest.releases import read_releases

        if folder.exists():
            shutil.rmtree(folder)
        chunker = Chunker(ChunkerSettings(), count_tokens)  # type: ignore[arg-type]
        have = sum(len(chunker.chunk(r)) for r in read_releases(sources).releases)
        questions = write_squad_releases(folder / "releases", count_tokens, target_passages, have)
        meta.write_text(json.dumps({"squad_questions": questions}), encoding="utf-8")
    return {
        "sources": [*sources, str(folder / "releases")],
        "squad_questions": json.loads(meta.read_text(encoding="utf-8"))["squad_questions"],
    }


def press_questions() -> list[str]:
    path = ROOT / "evals" / "datasets" / "press-dev.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows if not r.get("followup_of")]


def question_set(squad_questions: Sequence[str], n: int) -> list[str]:
    """Half press-release questions, half SQuAD ones, interleaved, deterministic."""
    press = press_questions()
    rng = random.Random(7)
    sq = list(squad_questions)
    rng.shuffle(sq)
    out: list[str] = []
    for a, b in zip(press, sq, strict=False):
        out.extend([a, b])
    return out[:n]


def _vectors(index: faiss.Index) -> dict[int, np.ndarray]:
    ids = vector_ids(index)
    vecs = index.reconstruct_batch(ids)
    return dict(zip(ids.tolist(), vecs, strict=True))


def _copies(base: Index) -> Iterator[tuple[int, Release]]:
    """(copy number, base release) forever, in a fixed order."""
    order = sorted(base.releases.values(), key=lambda r: (r.path, r.id))
    c = 0
    while True:
        c += 1
        for r in order:
            yield c, r


def replicate(base: Index, target_passages: int) -> Index:
    """An index of at least ``target_passages`` passages: the base plus republished copies."""
    pvecs, svecs = _vectors(base.passage_vectors), _vectors(base.sentence_vectors)
    by_release: dict[str, list[tuple[int, Passage]]] = {}
    for fid, p in base.passages.items():
        by_release.setdefault(p.release_id, []).append((fid, p))
    sents_of: dict[str, list[tuple[int, Sentence]]] = {}
    for fid, s in base.sentences.items():
        sents_of.setdefault(s.release_id, []).append((fid, s))
    releases = dict(base.releases)
    passages = dict(base.passages)
    sentences = dict(base.sentences)
    annotations = dict(base.annotations)
    new_p: list[tuple[int, np.ndarray]] = []
    new_s: list[tuple[int, np.ndarray]] = []
    total = len(passages)
    for c, r in _copies(base):
        if total >= target_passages:
            break
        date = (r.date or _date_of(r.id)) + dt.timedelta(days=37 * c)
        ref = f"\n\nReference: BQ-{c:04d}-{r.id[:8]}"
        text = r.text + ref
        rid = content_hash(text)
        stem = re.sub(r"\.[a-z]+$", "", Path(r.path).name)
        releases[rid] = Release(
            id=rid,
            text=text,
            title=r.title,
            path=f"bench/copy-{c:04d}/{stem}.md",
            date=date,
            source=SOURCES[(c + len(r.title)) % len(SOURCES)],
            url=None,
            metadata=r.metadata,
        )
        smap: dict[tuple[int, int], Sentence] = {}
        for fid, s in sents_of.get(r.id, []):
            ns = Sentence(rid, s.start, s.end, s.text)
            nfid = vector_id(sentence_key(ns))
            sentences[nfid] = ns
            smap[(s.start, s.end)] = ns
            new_s.append((nfid, svecs[fid]))
            if fid in annotations:
                annotations[nfid] = annotations[fid]
        for fid, p in by_release.get(r.id, []):
            pid = content_hash(f"{rid}:{p.start}:{p.end}")
            inner = tuple(smap[(s.start, s.end)] for s in p.sentences)
            np_ = Passage(pid, rid, p.start, p.end, p.text, inner)
            nfid = vector_id(pid)
            passages[nfid] = np_
            new_p.append((nfid, pvecs[fid]))
            total += 1
    pindex = faiss.clone_index(base.passage_vectors)
    sindex = faiss.clone_index(base.sentence_vectors)
    for idx, rows in ((pindex, new_p), (sindex, new_s)):
        if rows:
            ids = np.array([i for i, _ in rows], dtype=np.int64)
            idx.add_with_ids(np.ascontiguousarray(np.stack([v for _, v in rows]), dtype=np.float32), ids)
    return Index(
        model=base.model,
        dimension=base.dimension,
        chunker=base.chunker,
        releases=releases,
        passages=passages,
        sentences=sentences,
        passage_vectors=pindex,
        sentence_vectors=sindex,
        sources=base.sources,
        annotations=annotations,
    )
