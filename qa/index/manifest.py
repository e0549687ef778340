"""The manifest of a saved index: what it was built with, and a checksum of every file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "release-qa-index"


FORMAT_VERSION = 2


class QAIndexError(RuntimeError):
    """An index that cannot be loaded or written; the message says why and what to do."""


class StaleIndexError(QAIndexError):
    """A save refused because another writer swapped in a snapshot since this index was loaded
    or saved: writing this copy would drop what the other writer added."""


def corpus_fingerprint(release_ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(release_ids)).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Manifest:
    model: str
    dimension: int
    chunker: dict[str, Any]
    fingerprint: str
    releases: int
    passages: int
    sentences: int
    sources: tuple[str, ...]
    created_at: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    files: tuple[tuple[str, str], ...] = ()
    """(file name, SHA-256) of each file of the snapshot but the manifest."""

    def to_json(self) -> str:
        d = {
            "format": self.format,
            "format_version": self.format_version,
            "model": {"name": self.model, "dimension": self.dimension},
            "chunker": self.chunker,
            "corpus": {
                "fingerprint": self.fingerprint,
                "releases": self.releases,
                "passages": self.passages,
                "sentences": self.sentences,
                "sources": list(self.sources),
            },
            "created_at": self.created_at,
        }
        if self.files:
            d["files"] = dict(self.files)
            d["checksum"] = manifest_checksum(d)
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: Path, root: Path | None = None) -> Manifest:
        """Parse a manifest; ``root`` (the index folder) goes into the rebuild hint."""
        hint = rebuild_hint(root if root is not None else where.parent)
        try:
            d = json.loads(text)
            if not isinstance(d, dict) or d.get("format") != FORMAT:
                raise QAIndexError(f"{where} is not a release-qa index manifest; {hint}")
            if d.get("format_version") != FORMAT_VERSION:
                raise QAIndexError(
                    f"index at {root or where.parent} has format version {d.get('format_version')!r}; "
                    f"this release-qa reads version {FORMAT_VERSION}; {hint}"
                )
            if not isinstance(d.get("checksum"), str) or not isinstance(d.get("files"), dict):
                # without them nothing can be verified: edited text would be quoted as if true
                raise QAIndexError(f"manifest {where} has no checksum or no list of files' checksums; {hint}")
            if d.pop("checksum") != manifest_checksum(d):
                raise QAIndexError(f"manifest {where} is damaged (it does not match its checksum); {hint}")
            missing = sorted(set(REQUIRED_FILES) - set(d["files"]))
            if missing:
                raise QAIndexError(f"manifest {where} does not vouch for {', '.join(missing)}; {hint}")
            c = d["corpus"]
            return cls(
                model=d["model"]["name"],
                dimension=int(d["model"]["dimension"]),
                chunker=dict(d["chunker"]),
                fingerprint=c["fingerprint"],
                releases=int(c["releases"]),
                passages=int(c["passages"]),
                sentences=int(c["sentences"]),
                sources=tuple(c.get("sources", ())),
                created_at=d["created_at"],
                files=tuple(sorted((str(k), str(v)) for k, v in d.get("files", {}).items())),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise QAIndexError(f"manifest {where} is damaged ({type(e).__name__}: {e}); {hint}") from None


REQUIRED_FILES = ("passages.faiss", "sentences.faiss", "store.sqlite")
"""Files every snapshot has and its manifest must list with their SHA-256."""


def manifest_checksum(d: dict[str, Any]) -> str:
    """SHA-256 of the manifest's other fields, so no edit or bit flip in it goes unseen."""
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def rebuild_hint(root: Path) -> str:
    return f"rebuild it with: release-qa index <folders> --index {root}"
