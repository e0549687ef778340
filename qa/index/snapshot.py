"""Snapshots on disk: which one is current, checksums verified once, atomic swaps, the writer lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.index.manifest import Manifest, QAIndexError, rebuild_hint

logger = logging.getLogger(__name__)


def resolve_snapshot(root: Path) -> Path:
    current = root / "current"
    if not current.exists():
        if root.exists():
            raise QAIndexError(
                f"no index at {root} (no 'current' snapshot); build one with: "
                f"release-qa index <folders> --index {root}"
            )
        raise QAIndexError(f"no index at {root}; build one with: release-qa index <folders> --index {root}")
    return current.resolve()


def read_manifest(root: Path) -> Manifest:
    return read_snapshot_manifest(root, resolve_snapshot(root))


def read_snapshot_manifest(root: Path, snap: Path) -> Manifest:
    mpath = snap / "manifest.json"
    try:
        text = mpath.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8"
        raise QAIndexError(
            f"index at {root} has no readable manifest ({reason}); {rebuild_hint(root)}"
        ) from None
    return Manifest.from_json(text, mpath, root)


def is_current(root: Path, snap: Path) -> bool:
    try:
        return resolve_snapshot(root) == snap
    except QAIndexError:
        return True


def clean_stale(root: Path) -> None:
    """Remove what earlier writers left: snapshots other than the current one (including
    '.tmp-*' ones a killed writer never finished) and '.current-*' links never swapped in.
    Called only under the writer lock."""
    try:
        live = Path(os.readlink(root / "current")).name
    except OSError:
        live = None
    snapshots = root / "snapshots"
    for old in snapshots.iterdir() if snapshots.is_dir() else ():
        if old.name != live:
            logger.info("removing stale snapshot %s", old)
            shutil.rmtree(old, ignore_errors=True)
    for link in root.glob(".current-*"):
        with contextlib.suppress(FileNotFoundError):
            link.unlink()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


VERIFIED = "verified.json"


"""Size, mtime and digest of each file when its SHA-256 was last checked: like git's
index, a file whose size and mtime are unchanged is not hashed again on load (hashing
1.7 GB took 5 s of a 100k-passage index's cold start). Not listed in the manifest."""


def stat_key(path: Path, digest: str) -> list[object]:
    """What says a file is unchanged since it was hashed: size, inode, modification and change
    times. The change time cannot be set back (an edit that restores the modification time still
    moves it), so such an edit is hashed again and caught."""
    st = path.stat()
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, digest]


def verified_sums(snap: Path) -> dict[str, list[object]]:
    try:
        data = json.loads((snap / VERIFIED).read_text(encoding="utf-8"))
        return {str(k): list(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def remember_verified(snap: Path, sums: Iterable[tuple[str, str]], *, private: bool = False) -> None:
    """Best effort: a reader without write access to the snapshot just hashes again.

    ``private``: the snapshot is still being written (no reader sees it), so no temp file.
    """
    try:
        data = json.dumps({name: stat_key(snap / name, digest) for name, digest in sums})
        if private:
            (snap / VERIFIED).write_text(data, encoding="utf-8")
            return
        tmp = snap / f".{VERIFIED}.{os.getpid()}"
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, snap / VERIFIED)
    except OSError as e:
        logger.debug("could not record verified checksums in %s: %s", snap, e)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """One writer at a time per index folder; a second one is refused, not queued.

    The lock dies with its process, so a killed writer never blocks the next one, and
    the next one first removes what the killed one left (see ``clean_stale``).
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise QAIndexError(
                    f"another process (pid {holder}) is writing the index at {root}; "
                    "wait for it to finish and try again"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        clean_stale(root)
        yield
    finally:
        os.close(fd)
