"""Crash safety (issue 8): a `release-qa index` killed with SIGKILL anywhere leaves the
previous index whole and the next run completes; one writer at a time; readers keep
answering from the index they loaded while a writer swaps in a new one.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa import Assistant, HashingEmbedder, Index, QAIndexError, update_index
from tests.conftest import ROOT
from tests.test_reliability import HASHING, cli_index, index_state

WORDS = [
    "agency",
    "minister",
    "cyber",
    "security",
    "grant",
    "port",
    "harbour",
    "ransomware",
    "summit",
    "meeting",
    "council",
    "budget",
    "report",
    "data",
    "breach",
    "hospital",
    "school",
    "rural",
    "network",
    "officials",
    "agreed",
    "announced",
]


def _write_corpus(d: Path, names: range, seed: int) -> None:
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    for i in names:
        sents = [" ".join(rng.choice(WORDS) for _ in range(10)).capitalize() + "." for _ in range(5)]
        (d / f"r{i:03d}.md").write_text(
            f"---\ntitle: Release {i}\ndate: 2022-03-{i % 28 + 1:02d}\n---\n" + " ".join(sents)
        )


class Corpora:
    """An index of the old corpus (``template``) and the new corpus an update brings."""

    def __init__(self, base: Path):
        self.old, self.new = base / "old" / "releases", base / "new" / "releases"
        _write_corpus(self.old, range(12), seed=1)
        _write_corpus(self.new, range(4, 12), seed=1)  # 4 deleted
        _write_corpus(self.new, range(8, 11), seed=2)  # 3 changed
        _write_corpus(self.new, range(12, 30), seed=3)  # 18 added
        self.emb = HashingEmbedder()  # what `--embedder hashing` uses
        self.template = base / "template"
        update_index(self.template, [self.old], embedder=self.emb, chunker=HASHING)
        self.old_state = index_state(Index.load(self.template))
        probe = base / "probe"
        shutil.copytree(self.template, probe, symlinks=True)
        update_index(probe, [self.new], embedder=self.emb, chunker=HASHING)
        self.new_state = index_state(Index.load(probe))
        assert self.new_state != self.old_state

    def fresh_index(self, where: Path) -> Path:
        shutil.copytree(self.template, where, symlinks=True)
        Index.load(where)  # a copy is hashed again once (new inodes), before the save under test
        return where

    def argv(self, idx: Path) -> list[str]:
        return ["index", str(self.new), "--index", str(idx), "--embedder", "hashing", "-q"]

    def recover(self, idx: Path) -> None:
        """The next run completes, and leaves one snapshot and no stray link."""
        update_index(idx, [self.new], embedder=self.emb, chunker=HASHING)
        assert index_state(Index.load(idx)) == self.new_state
        assert len(list((idx / "snapshots").iterdir())) == 1
        assert not list(idx.glob(".current-*"))


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Corpora:
    return Corpora(tmp_path_factory.mktemp("crash"))


def _leftovers(idx: Path) -> str:
    snaps = [p.name for p in (idx / "snapshots").iterdir()]
    kinds = ["tmp" if s.startswith(".tmp-") else "snapshot" for s in snaps]
    return "+".join(sorted(kinds + ["link" for _ in idx.glob(".current-*")]))


def test_sigkill_at_random_moments_leaves_the_old_index_whole(corpora: Corpora, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "app.cli"]
    t0 = time.monotonic()
    full = subprocess.run(
        [*cmd, *corpora.argv(corpora.fresh_index(tmp_path / "full"))], capture_output=True, cwd=ROOT
    )
    duration = time.monotonic() - t0
    assert full.returncode == 0, full.stderr
    assert index_state(Index.load(tmp_path / "full")) == corpora.new_state

    rng = random.Random(8)
    seen = []
    for i in range(10):
        idx = corpora.fresh_index(tmp_path / f"idx{i}")
        proc = subprocess.Popen(
            [*cmd, *corpora.argv(idx)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        delay = rng.uniform(0.0, duration)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        state = index_state(Index.load(idx))  # loadable, whole, and one of the two
        assert state in (corpora.old_state, corpora.new_state), f"kill after {delay:.2f}s left a mixed index"
        seen.append(f"{delay:.2f}s:{'new' if state == corpora.new_state else 'old'}:{_leftovers(idx)}")
        corpora.recover(idx)
    print("kills (delay:index:snapshots left):", ", ".join(seen))


# Runs `release-qa index` with one step of Index.save wrapped to SIGKILL the process
# right after that step: every window of the save is hit, whatever the timing.
KILL_AFTER = """
import os, signal, sys
import qa.index.model as qi
module, name = {"faiss": (qi.faiss, "write_index"), "store": (qi.Index, "_write_store"),
                "rename": (os, "rename"), "link": (os, "symlink"), "swap": (os, "replace")}[sys.argv[1]]
step = getattr(module, name)
def step_then_die(*a, **k):
    step(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(module, name, step_then_die)
from app.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize(
    ("step", "left", "survivor"),
    [
        ("faiss", "snapshot+tmp", "old"),  # half a snapshot in .tmp-*
        ("store", "snapshot+tmp", "old"),  # all but the manifest
        ("rename", "snapshot+snapshot", "old"),  # a whole snapshot, never swapped in
        ("link", "link+snapshot+snapshot", "old"),  # the new link made, not yet renamed over `current`
        ("swap", "snapshot+snapshot", "new"),  # swapped; the old snapshot not yet removed
    ],
)
def test_sigkill_at_each_step_of_a_save(
    corpora: Corpora, tmp_path: Path, step: str, left: str, survivor: str
) -> None:
    idx = corpora.fresh_index(tmp_path / "idx")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, step, *corpora.argv(idx)], capture_output=True, cwd=ROOT
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _leftovers(idx) == left  # the kill happened where intended
    state = index_state(Index.load(idx))
    assert state == (corpora.new_state if survivor == "new" else corpora.old_state)
    corpora.recover(idx)


def test_a_second_writer_is_refused_and_a_dead_one_blocks_nothing(
    corpora: Corpora, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = corpora.fresh_index(tmp_path / "idx")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from qa.index import writer_lock\n"
            "with writer_lock(Path(sys.argv[1])):\n    print('locked', flush=True); sys.stdin.read()",
            str(idx),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        rc, _, err = cli_index(capsys, idx, corpora.new)
        assert rc == 2
        assert err == [
            f"release-qa: error: another process (pid {holder.pid}) is writing the index at {idx}; "
            "wait for it to finish and try again"
        ]
        assert index_state(Index.load(idx)) == corpora.old_state
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding the lock; its .lock file stays
        holder.wait()
    assert (idx / ".lock").exists()
    rc, out, err = cli_index(capsys, idx, corpora.new)
    assert (rc, err) == (0, []) and "updated" in out
    assert index_state(Index.load(idx)) == corpora.new_state


def test_stale_leftovers_are_removed_by_the_next_writer(corpora: Corpora, tmp_path: Path) -> None:
    idx = corpora.fresh_index(tmp_path / "idx")
    live = (idx / "current").resolve()
    (idx / "snapshots" / ".tmp-killed").mkdir()
    (idx / "snapshots" / ".tmp-killed" / "passages.faiss").write_bytes(b"half")
    shutil.copytree(live, idx / "snapshots" / "20000101T000000000000Z")  # complete, never swapped in
    (idx / ".current-12345").symlink_to("snapshots/20000101T000000000000Z")
    before = index_state(Index.load(idx))
    report = update_index(idx, [corpora.old], embedder=corpora.emb, chunker=HASHING)
    assert report.up_to_date  # nothing to write, yet the leftovers are gone
    assert [p.name for p in (idx / "snapshots").iterdir()] == [live.name]
    assert not list(idx.glob(".current-*"))
    assert index_state(Index.load(idx)) == before


def test_readers_keep_the_old_index_and_switch_when_told(corpora: Corpora, tmp_path: Path) -> None:
    idx = corpora.fresh_index(tmp_path / "idx")
    reader = Assistant.load(idx, corpora.emb)
    question = "Which agency announced the grant?"
    before = [(h.passage.id, round(h.score, 6)) for h in reader.search(question, k=5)]
    assert not reader.index.is_stale(idx)
    update_index(idx, [corpora.new], embedder=corpora.emb, chunker=HASHING)
    # the old snapshot is gone from disk, but the reader answers from the index it loaded
    assert [(h.passage.id, round(h.score, 6)) for h in reader.search(question, k=5)] == before
    reader.ask(question)
    assert index_state(reader.index) == corpora.old_state
    assert reader.index.is_stale(idx)
    fresh = Index.load(idx)
    assert index_state(fresh) == corpora.new_state and not fresh.is_stale(idx)


def test_loads_during_a_running_update_see_old_or_new_never_half(corpora: Corpora, tmp_path: Path) -> None:
    idx = corpora.fresh_index(tmp_path / "idx")
    writer = subprocess.Popen([sys.executable, "-m", "app.cli", *corpora.argv(idx)], cwd=ROOT)
    seen = set()
    while writer.poll() is None or not seen:
        state = index_state(Index.load(idx))
        assert state in (corpora.old_state, corpora.new_state)
        seen.add("new" if state == corpora.new_state else "old")
    assert writer.wait() == 0
    assert index_state(Index.load(idx)) == corpora.new_state


def test_a_load_restarts_when_its_snapshot_is_swapped_away(
    corpora: Corpora, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.index.model as qi

    idx = corpora.fresh_index(tmp_path / "idx")
    newer = tmp_path / "newer"
    shutil.copytree(corpora.template, newer, symlinks=True)
    update_index(newer, [corpora.new], embedder=corpora.emb, chunker=HASHING)
    new_index = Index.load(newer)
    read_manifest, calls = qi.read_snapshot_manifest, []

    def swap_first(root: Path, snap: Path):  # type: ignore[no-untyped-def]
        if not calls:  # a writer swaps in a new snapshot and deletes this one mid-load
            new_index.save(idx)
        calls.append(snap.name)
        return read_manifest(root, snap)

    monkeypatch.setattr(qi, "read_snapshot_manifest", swap_first)
    loaded = Index.load(idx)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert index_state(loaded) == corpora.new_state
    # a snapshot that is damaged (not replaced) is refused, not retried
    monkeypatch.setattr(qi, "read_snapshot_manifest", read_manifest)
    (idx / "current").resolve().joinpath("store.sqlite").write_bytes(b"")
    with pytest.raises(QAIndexError, match="is damaged"):
        Index.load(idx)
