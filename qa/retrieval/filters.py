"""Which releases may answer a question: a date range and a set of sources."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from qa.types import Release


@dataclass(frozen=True, slots=True)
class Filters:
    """Which releases may answer: a date range (inclusive) and a set of sources.

    A release without a date is excluded by any date bound; ``sources`` matches
    case-insensitively.
    """

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        if isinstance(self.sources, str):
            raise ValueError(f"sources must be a tuple of names, got the string {self.sources!r}")

    @property
    def empty(self) -> bool:
        return self.date_from is None and self.date_to is None and self.sources is None

    def allows(self, release: Release) -> bool:
        if self.date_from is not None or self.date_to is not None:
            if release.date is None:
                return False
            if self.date_from is not None and release.date < self.date_from:
                return False
            if self.date_to is not None and release.date > self.date_to:
                return False
        if self.sources is not None:
            wanted = {s.casefold() for s in self.sources}
            if (release.source or "").casefold() not in wanted:
                return False
        return True
