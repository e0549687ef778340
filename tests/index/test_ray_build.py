"""The Ray build (``release-qa index --ray``) writes the index the single-process build writes.

A local Ray runtime of 2 workers, started once for the module (about 6 s). Ray is the optional
``cluster`` extra, which ``make test`` installs; elsewhere these tests skip, never under CI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qa import HashingEmbedder, update_index
from qa.index import Index, read_manifest
from qa.index.prepare import prepare_locally
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.releases import read_locally

if os.environ.get("CI") == "true":
    import ray  # CI installs the cluster extra: a missing Ray is a failure there
else:
    ray = pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra (make test installs it)")

from ray import cloudpickle

from qa.index.ray_build import RayBuild

# the workers get this module's helpers by value: the tests folder is not on their path
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[2]
WORDS = [
    "agency",
    "minister",
    "cyber",
    "summit",
    "breach",
    "hospital",
    "ransomware",
    "treaty",
    "export",
    "sanction",
    "grant",
]


def write_corpus(folder: Path, n: int, *, offset: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(offset, offset + n):
        w = WORDS[i % len(WORDS)]
        body = " ".join(
            f"Sentence {j} of release {i} says the {w} office met {j + i} delegates in city {i * 7 + j}."
            for j in range(12)
        )
        (folder / f"r{i:03d}.md").write_text(
            f"---\ntitle: Release {i} on the {w}\ndate: 2024-01-{1 + i % 28:02d}\n---\n\n{body}\n"
            f"\nA [linked statement](https://example.gov/{i}) on **the {w}**.\n",
            encoding="utf-8",
        )
    (folder / "broken.jsonl").write_text('{"title": "ok", "text": "A fine line of text."}\nnot json\n')


class DiesOnce(HashingEmbedder):
    """The test embedder, except that the first worker to encode is killed (SIGKILL) mid-batch."""

    def __init__(self, marker: str):
        super().__init__(dimension=256)
        self.marker = marker

    def encode(self, texts, *, batch_size=64, progress=False):  # type: ignore[no-untyped-def]
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().encode(texts, batch_size=batch_size, progress=progress)


SETTINGS = ChunkerSettings(max_tokens=64, annotator=None)


@pytest.fixture(scope="module")
def workers() -> Iterator[RayBuild]:
    with RayBuild(workers=2, batch_size=4) as w:
        yield w


def build(root: Path, sources: list[Path], workers: RayBuild | None = None, **kw) -> Index:  # type: ignore[no-untyped-def]
    kw.setdefault("embedder", HashingEmbedder(dimension=256))
    kw.setdefault("chunker", SETTINGS)
    update_index(root, sources, workers=workers, **kw)
    return Index.load(root)


def assert_same(a_root: Path, b_root: Path) -> None:
    """Same releases, passage and sentence ids and offsets, annotations, vectors, BM25, manifest."""
    a, b = Index.load(a_root), Index.load(b_root)
    assert a.releases == b.releases
    assert list(a.releases) == list(b.releases)  # same insertion order
    assert dict(a.passages.items()) == dict(b.passages.items())
    assert dict(a.sentences.items()) == dict(b.sentences.items())
    assert dict(a.annotations.items()) == dict(b.annotations.items())
    for table, va, vb in (
        ("passages", a.passage_vectors, b.passage_vectors),
        ("sentences", a.sentence_vectors, b.sentence_vectors),
    ):
        ids = np.array(
            sorted(dict((a.passages if table == "passages" else a.sentences).items())), dtype=np.int64
        )
        np.testing.assert_allclose(va.reconstruct_batch(ids), vb.reconstruct_batch(ids), atol=1e-5)
    ma, mb = read_manifest(a_root), read_manifest(b_root)
    for field in ("model", "dimension", "chunker", "fingerprint", "releases", "passages", "sentences"):
        assert getattr(ma, field) == getattr(mb, field), field
    sums_a, sums_b = dict(ma.files), dict(mb.files)
    lexical = sorted(f for f in sums_a if f.startswith("bm25") or f == "stems.json")
    assert lexical and {f: sums_a[f] for f in lexical} == {f: sums_b.get(f) for f in lexical}


def test_the_ray_build_is_the_single_process_build(tmp_path: Path, workers: RayBuild) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 10)
    build(tmp_path / "local", [corpus])
    before = workers.sent
    index = build(tmp_path / "ray", [corpus], workers)
    assert workers.sent - before == 11  # ten releases and the good line of the JSONL file
    assert len(index.releases) == 11 and len(index.passages) > 11
    assert_same(tmp_path / "local", tmp_path / "ray")


def test_annotations_are_made_on_the_workers_too(tmp_path: Path, workers: RayBuild) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 3)
    spacy = ChunkerSettings(max_tokens=64)  # the default annotator
    assert spacy.annotator is not None
    build(tmp_path / "local", [corpus], chunker=spacy, annotate=True)
    index = build(tmp_path / "ray", [corpus], workers, chunker=spacy, annotate=True)
    assert len(dict(index.annotations.items())) == len(index.sentences)
    assert_same(tmp_path / "local", tmp_path / "ray")


def test_a_killed_worker_is_retried_and_the_index_is_the_same(tmp_path: Path, workers: RayBuild) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 8)
    marker = tmp_path / "killed"
    build(tmp_path / "local", [corpus])
    build(tmp_path / "ray", [corpus], workers, embedder=DiesOnce(str(marker)))
    assert marker.exists(), "no worker was killed: the test proved nothing"
    assert int(marker.read_text()) != os.getpid()  # a worker died, not this process
    assert_same(tmp_path / "local", tmp_path / "ray")


def test_an_incremental_ray_build_sends_out_only_new_and_changed_releases(
    tmp_path: Path, workers: RayBuild
) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 6)
    build(tmp_path / "ray", [corpus], workers)
    build(tmp_path / "local", [corpus])
    write_corpus(corpus, 1, offset=6)  # one new release
    (corpus / "r000.md").write_text("---\ntitle: Changed\n---\n\nThe text of release zero changed.\n")
    (corpus / "r001.md").unlink()
    before = workers.sent
    index = build(tmp_path / "ray", [corpus], workers)
    assert workers.sent - before == 2
    build(tmp_path / "local", [corpus])  # the same update, in this process
    assert_same(tmp_path / "local", tmp_path / "ray")
    assert not any(r.path.endswith("r001.md") for r in index.releases.values())


def test_a_stopped_ray_build_resumes_from_its_last_save(
    tmp_path: Path, workers: RayBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.index.model

    monkeypatch.setattr(qa.index.model, "SYNC_BATCH", 4)
    monkeypatch.setattr(qa.index.model, "SAVE_SHARE_INVERSE", 0)  # a save after every batch
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 11)  # 12 releases with the JSONL line

    class Stopped(Exception):
        pass

    class StopsAfter:
        """Build workers (Ray's, or None: this process) stopped, as by Ctrl-C, after ``n``
        prepared releases."""

        def __init__(self, inner: RayBuild | None, n: int):
            self.inner, self.n = inner, n

        def read(self, files):  # type: ignore[no-untyped-def]
            return self.inner.read(files) if self.inner else read_locally(files)

        def preparer(self, embedder, settings, *, annotate=False):  # type: ignore[no-untyped-def]
            inner = (
                self.inner.preparer(embedder, settings, annotate=annotate)
                if self.inner
                else prepare_locally(embedder, settings, annotate=annotate)
            )

            def prepare(releases):  # type: ignore[no-untyped-def]
                for i, item in enumerate(inner(releases)):
                    if i == self.n:
                        raise Stopped
                    yield item

            return prepare

    for name, inner in (("local", None), ("ray", workers)):
        with pytest.raises(Stopped):
            update_index(
                tmp_path / name,
                [corpus],
                embedder=HashingEmbedder(256),
                chunker=SETTINGS,
                workers=StopsAfter(inner, 9),
                checkpoint_seconds=0,
            )
        assert len(Index.load(tmp_path / name).releases) == 8  # two batches of 4 were saved
    before = workers.sent
    build(tmp_path / "ray", [corpus], workers)
    assert workers.sent - before == 4  # only what the stopped build had not saved
    build(tmp_path / "local", [corpus])  # resumed in this process
    assert_same(tmp_path / "local", tmp_path / "ray")


def test_the_command_line_builds_on_ray(
    tmp_path: Path, workers: RayBuild, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    corpus = tmp_path / "corpus"
    write_corpus(corpus, 4)
    args = [str(corpus), "--embedder", "hashing", "-q", "--max-tokens", "64"]
    assert main(["index", *args, "--index", str(tmp_path / "local")]) == 0
    assert main(["index", *args, "--index", str(tmp_path / "ray"), "--ray", "--ray-workers", "2"]) == 0
    assert "5 added" in capsys.readouterr().out
    assert_same(tmp_path / "local", tmp_path / "ray")


def test_without_ray_flag_nothing_of_ray_is_imported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, 2)
    code = (
        "import sys; from app.cli import main; "
        f"rc = main(['index', {str(corpus)!r}, '--index', {str(tmp_path / 'ix')!r}, '--embedder', 'hashing', '-q']); "
        "assert rc == 0; bad = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_bad_settings_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        RayBuild(workers=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got -2"):
        RayBuild(batch_size=-2)
