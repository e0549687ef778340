"""The build's per-release work on Ray Data: one machine's cores or a cluster's.

Two stages run on the workers: reading and parsing files (``read``), then chunking,
annotating and encoding the releases the index does not hold yet (``preparer``). The driver
keeps what must be decided once: the walk over the folders, the duplicate check, which
releases are new, the insertion order and the snapshot. Ray Data keeps the input order
(``preserve_order``), so the index is the one the single-process build writes: same ids,
offsets, BM25 and manifest, vectors within float tolerance (encoder batches differ).

Only this module imports Ray, and only ``release-qa index --ray`` imports this module.
On a cluster every node needs the package installed (``pip install 'release-qa[cluster]'``)
and the release folders at the same path (a shared file system).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import ray
import ray.data

from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.index.prepare import PreparedRelease, Preparer, VectorMemo, from_row, prepare_releases, to_row
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.releases import FileRead, Skipped, read_path
from qa.serialize import release_from_dict, release_to_dict
from qa.types import Release

logger = logging.getLogger(__name__)


def _read_batch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """Ray stage: read and parse the files of a batch (never raises: failures are skips)."""
    got = [read_path(Path(p), str(n)) for p, n in zip(batch["path"], batch["name"], strict=True)]
    return {
        "name": [g.name for g in got],
        "releases": [json.dumps([release_to_dict(r) for r in g.releases]) for g in got],
        "skipped": [json.dumps([[s.path, s.reason] for s in g.skipped]) for g in got],
    }


class _PrepareStage:
    """Ray stage (one actor per worker): the embedder is loaded once per actor."""

    def __init__(self, embedder: Embedder, settings: ChunkerSettings, annotate: bool):
        self.embedder = embedder
        self.settings = settings
        self.annotate = annotate
        self.memo = VectorMemo()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        releases = [release_from_dict(json.loads(x)) for x in batch["release"]]
        rows = [
            to_row(p)
            for p in prepare_releases(
                releases, self.embedder, self.settings, annotate=self.annotate, memo=self.memo
            )
        ]
        return {key: [r[key] for r in rows] for key in rows[0]} if rows else {}


class RayBuild:
    """Runs a build's reading and preparation on Ray; use as a context manager.

    ``address`` None starts a local Ray runtime with ``workers`` CPUs (default: every core);
    an address ("auto", "ray://head:10001", "10.0.0.1:6379") joins that cluster, and
    ``workers`` caps the encoder actors (default: one per CPU of the cluster).
    ``batch_size`` releases go to a worker at a time.
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None, batch_size: int = 16):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.address = address
        self.workers = workers
        self.batch_size = batch_size
        self.sent = 0
        """Releases sent out for preparation so far (an incremental build sends only new ones)."""
        self._started = False

    def __enter__(self) -> RayBuild:
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                num_cpus=self.workers if self.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,  # not its notes on token auth and progress bars
            )
            self._started = True
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # the index inserts in input order
        ctx.enable_progress_bars = False  # the build shows its own bar
        ctx.print_on_execution_start = False
        for handler in logging.getLogger("ray.data").handlers:  # a quiet library: the log file keeps all
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.ERROR)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            ray.shutdown()
            self._started = False

    @property
    def actors(self) -> int:
        """Encoder actors: ``workers``, else one per CPU Ray reports."""
        if self.workers is not None:
            return self.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def _blocks(self, n: int) -> int:
        return max(1, -(-n // self.batch_size))

    def read(self, files: Sequence[tuple[Path, str]]) -> Iterator[FileRead]:
        """A ``FileReader``: the files read on the workers, yielded in the order given."""
        if not files:
            return
        items = [{"path": os.path.abspath(fp), "name": name} for fp, name in files]
        ds = ray.data.from_items(items, override_num_blocks=self._blocks(len(items)))
        ds = ds.map_batches(_read_batch, batch_size=self.batch_size, num_cpus=1)
        for row in ds.iter_rows():
            yield FileRead(
                str(row["name"]),
                tuple(release_from_dict(d) for d in json.loads(row["releases"])),
                tuple(Skipped(str(p), str(r)) for p, r in json.loads(row["skipped"])),
            )

    def preparer(self, embedder: Embedder, settings: ChunkerSettings, *, annotate: bool = False) -> Preparer:
        """A ``Preparer`` running on the workers, one encoder actor per worker."""
        worker_embedder: Embedder = (
            embedder.fresh(threads=1) if isinstance(embedder, SentenceTransformerEmbedder) else embedder
        )

        def prepare(releases: Sequence[Release]) -> Iterator[PreparedRelease]:
            if not releases:
                return
            self.sent += len(releases)
            items = [{"release": json.dumps(release_to_dict(r))} for r in releases]
            blocks = self._blocks(len(items))
            ds = ray.data.from_items(items, override_num_blocks=blocks)
            ds = ds.map_batches(
                _PrepareStage,
                fn_constructor_kwargs={
                    "embedder": worker_embedder,
                    "settings": settings,
                    "annotate": annotate,
                },
                batch_size=self.batch_size,
                compute=ray.data.ActorPoolStrategy(size=min(self.actors, blocks)),
                num_cpus=1,
            )
            for row in ds.iter_rows():
                yield from_row(row, embedder.dimension)

        return prepare
