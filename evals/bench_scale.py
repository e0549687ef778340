"""Cached benchmark indexes: the real base build (~1k passages) and its replicas (10k, 100k)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from evals.bench_build import raw_encoder, timed_build
from evals.bench_corpus import CACHE, CORPUS_VERSION, base_sources, replicate
from qa.embedding import Embedder
from qa.index import FORMAT_VERSION, Index, read_manifest
from qa.ingest.chunking import ChunkerSettings

logger = logging.getLogger(__name__)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _files_key(sources: list[str]) -> list[tuple[str, int]]:
    """Names (below each source folder) and sizes: the key survives moving the checkout."""
    out = []
    for s in sources:
        for root, _, files in os.walk(s):
            for f in files:
                full = os.path.join(root, f)
                out.append((os.path.join(Path(s).name, os.path.relpath(full, s)), os.path.getsize(full)))
    return sorted(out)


def base_index(embedder: Embedder, base_passages: int, cache: Path = CACHE) -> tuple[Path, dict[str, Any]]:
    """Build (once) the base index with the real pipeline; its build report is kept beside it."""
    corpus = base_sources(cache, base_passages, embedder.count_tokens)
    key = _key(
        CORPUS_VERSION,
        FORMAT_VERSION,
        embedder.name,
        ChunkerSettings().to_dict(),
        _files_key(corpus["sources"]),
    )
    path = cache / "index" / f"base-{base_passages}-{key}"
    meta = path / "bench-build.json"
    if not meta.is_file():
        logger.warning("building the base index at %s (once; cached)", path)
        build = timed_build(path, corpus["sources"], embedder)
        texts = build.pop("_texts")
        passage_texts = build.pop("_passage_texts")
        build["raw_encoder_seconds_all_texts"] = raw_encoder(embedder, texts)
        build["raw_encoder_seconds_passages"] = raw_encoder(embedder, passage_texts)
        build["built_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        build["encoder"] = type(embedder).__name__ + f"/{getattr(embedder, 'backend', '')}"
        meta.write_text(json.dumps(build, indent=2), encoding="utf-8")
    info = json.loads(meta.read_text(encoding="utf-8"))
    info["squad_questions"] = corpus["squad_questions"]
    info["sources"] = corpus["sources"]
    return path, info


def sized_index(base_path: Path, passages: int, cache: Path = CACHE) -> Path:
    """The base index republished up to ``passages`` passages (once; cached)."""
    if read_manifest(base_path).passages >= passages:
        return base_path
    path = cache / "index" / f"{base_path.name}-x{passages}"
    if not (path / "current").exists():
        logger.warning("replicating %s to %d passages at %s (once; cached)", base_path, passages, path)
        replicate(Index.load(base_path), passages).save(path)
    elif (index := Index.load(path)).outdated:
        logger.warning("saving %s again with its BM25 (once)", path)
        index.save(path)
    return path
