"""Uploaded releases: safe names inside one folder, size and type checks, then the library.

Upload names come from the browser, so they are reduced to a plain file name that
cannot leave the upload folder (no separators, no ``..``, no leading dot).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from qa import Assistant, QAIndexError, Release, ReleaseError, read_file
from qa.ingest.releases import SUFFIXES

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""Per file; a press release is rarely over 1 MB, a PDF with images a few MB."""
MAX_UPLOAD_FILES = 50
"""Per upload, so one drop cannot queue hours of embedding."""
MAX_UPLOAD_WORDS = 60_000
"""Words one upload may add (about 400 passages: a minute of the server's CPU). Bytes alone do not
bound the cost: 1 MB of text without sentence breaks took nine minutes. Larger archives are for
`release-qa index`, which shows its progress and can be stopped."""

_UNSAFE = re.compile(r"[^\w.\- ]+")


class UploadError(ValueError):
    """An upload refused before reading it; the message says why."""


def safe_name(name: str, max_len: int = 120) -> str:
    """A file name that stays inside the upload folder, keeping the supported suffix.

    >>> safe_name("../../etc/passwd.md")
    'passwd.md'
    """
    base = unicodedata.normalize("NFKC", str(name)).replace("\\", "/").split("/")[-1]
    base = "".join(c for c in base if c.isprintable())
    stem, dot, suffix = base.rpartition(".")
    if not dot or f".{suffix.lower()}" not in SUFFIXES:
        raise UploadError(f"unsupported file type (supported: {', '.join(SUFFIXES)})")
    stem = _UNSAFE.sub("_", stem).strip(" ._-")[: max_len - len(suffix) - 1]
    if not stem:
        stem = "release"
    return f"{stem}.{suffix.lower()}"


def destination(folder: Path, name: str, data_hash: str) -> Path:
    """Where an upload goes: its safe name, or name-<hash> when another file holds that name."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = root / name
    if target.exists() and _hash_file(target) != data_hash:
        p = Path(name)
        target = root / f"{p.stem}-{data_hash[:8]}{p.suffix}"
    if target.resolve().parent != root:  # belt and braces: safe_name already prevents this
        raise UploadError("file name escapes the upload folder")
    return target


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class UploadResult:
    added: list[Release] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def add_uploads(assistant: Assistant, files: list[tuple[str, str]], folder: Path) -> UploadResult:
    """Check, copy into ``folder`` and index ``(temp path, name shown by the browser)`` pairs.

    Each refused file gets a reason; the others are still added.
    """
    result = UploadResult()
    if len(files) > MAX_UPLOAD_FILES:
        result.problems.append(("upload", f"{len(files)} files at once; the limit is {MAX_UPLOAD_FILES}"))
        files = files[:MAX_UPLOAD_FILES]
    created: list[Path] = []
    kept: list[Path] = []
    for tmp, shown in files:
        try:
            name = safe_name(shown)
            size = Path(tmp).stat().st_size
            if size > MAX_UPLOAD_BYTES:
                raise UploadError(f"{size / 2**20:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit")
            if size == 0:
                raise UploadError("empty file")
            dest = destination(folder, name, _hash_file(Path(tmp)))
            if not dest.exists():
                created.append(dest)
            shutil.copyfile(tmp, dest)
            kept.append(dest)
        except (UploadError, OSError) as e:
            result.problems.append((shown, str(e)))
    releases: list[Release] = []
    words = 0
    for dest in kept:
        # named as `release-qa index <index>/uploads` names them (the folder, then the file), so
        # the next `make chat` finds them indexed and embeds nothing again
        name = f"{folder.name}/{dest.name}"
        try:
            got = read_file(dest, name)
        except ReleaseError as e:
            result.problems.append((name, str(e)))
            continue
        n = sum(len(r.text.split()) for r in got)
        if words + n > MAX_UPLOAD_WORDS:
            result.problems.append(
                (
                    name,
                    f"{n:,} words: over what one upload may add ({MAX_UPLOAD_WORDS:,}); "
                    "add it with `release-qa index` instead",
                )
            )
            continue
        words += n
        releases.extend(got)
    if releases:
        try:
            added = assistant.add_releases(releases)
        except QAIndexError as e:  # e.g. `release-qa index` holds the writer lock: nothing added
            result.problems.append(("upload", f"not added: {e}"))
            added = []
        result.added.extend(added)
        ids = {r.id for r in added}
        result.problems.extend((r.path, "already indexed (same text)") for r in releases if r.id not in ids)
    used = {r.path.split("#")[0] for r in result.added}
    for path in created:
        if (
            f"{folder.name}/{path.name}" not in used
        ):  # unreadable or a duplicate: keep the folder to what is indexed
            path.unlink(missing_ok=True)
    return result
