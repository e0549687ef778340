"""The index of a dataset's corpus, cached by content hash so a second run embeds nothing.

The key covers everything the index depends on: the release ids (hashes of their texts),
their metadata, the embedding model and the chunker settings. A changed corpus, model or
chunker gets a new folder; stale folders are never reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from qa.embedding import Embedder
from qa.index import FORMAT_VERSION, Index, QAIndexError
from qa.ingest.chunking import ChunkerSettings
from qa.types import Release

logger = logging.getLogger(__name__)


def cache_key(releases: Sequence[Release], embedder: Embedder, chunker: ChunkerSettings) -> str:
    """A short hash of the corpus, model and chunker settings."""
    meta = sorted(
        (r.id, r.title, r.path, r.date.isoformat() if r.date else "", r.source or "", r.url or "")
        for r in releases
    )
    payload = json.dumps(
        {
            "releases": meta,
            "model": [embedder.name, embedder.dimension],
            "chunker": chunker.to_dict(),
            "format": FORMAT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cached_index(
    releases: Sequence[Release],
    embedder: Embedder,
    cache_dir: str | os.PathLike[str],
    *,
    chunker: ChunkerSettings | None = None,
    progress: bool = False,
    checkpoint_seconds: float = 300.0,
) -> tuple[Index, Path, bool]:
    """(index, its folder, whether it was built now) for ``releases``; a big build is saved every
    ``checkpoint_seconds`` and a stopped one resumes."""
    settings = chunker if chunker is not None else ChunkerSettings()
    folder = Path(cache_dir) / cache_key(releases, embedder, settings)
    path = folder / "index"
    wanted = {r.id for r in releases}
    index: Index | None = None
    if (path / "current").exists():
        try:
            index = Index.load(path, embedder)
            if index.chunker != settings or not set(index.releases) <= wanted:
                logger.warning("eval index at %s does not match its key; rebuilding", path)
                index = None
            elif set(index.releases) == wanted:
                logger.info("eval index: reusing %s", path)
                return index, path, False
            else:  # a build that was stopped: go on from its last save
                logger.info(
                    "eval index: resuming %s (%d of %d releases)", path, len(index.releases), len(wanted)
                )
        except QAIndexError as e:
            logger.warning("eval index at %s is unusable (%s); rebuilding", path, e)
            index = None
    logger.info("eval index: embedding %d releases into %s", len(releases), path)
    folder.mkdir(parents=True, exist_ok=True)
    building = index if index is not None else Index.empty(embedder, settings)
    building.sync(
        releases,
        embedder,
        progress=progress,
        checkpoint=lambda: building.save(path),  # a stopped build resumes from here
        checkpoint_seconds=checkpoint_seconds,
    )
    building.save(path)
    return building, path, True
