"""Text views that the index and the answerers share: words, stems, and what the encoder and
BM25 see of a passage. One definition each, so indexing and answering agree."""

from __future__ import annotations

import functools
import re

from qa.types import Passage, Release

STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or but is are was were be been being do does
    did has have had what which who whom whose when where why how that this these those it its
    as about into over under than then there their they them he she his her we our you your i
    me my not no yes can could would should will shall may might must also any all each some
    such so if up out off more most other many much said say says tell name named""".split()  # noqa: SIM905
)
WORD = re.compile(r"[A-Za-z0-9]+(?:[.'’-][A-Za-z0-9]+)*")
"""A word: letters and digits, joined by inner dots, apostrophes or hyphens ("U.S.", "COVID-19")."""
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
"""English month names, January first: what headers print and questions are read for, whatever
the process's locale (``strftime("%B")`` follows it)."""

TITLE_WORDS = 32
"""How much of a release's title the passage views carry."""


@functools.lru_cache(maxsize=1)
def _stem_words():  # type: ignore[no-untyped-def]
    try:
        import Stemmer

        return Stemmer.Stemmer("english").stemWord
    except ImportError:  # pragma: no cover - PyStemmer is a dependency
        return lambda w: w


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stem_words()(word.lower())


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning, in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning: what "overlap with the question" counts."""
    return set(content_stems(text))


def passage_embedding_text(release: Release, passage: Passage) -> str:
    """What the encoder sees for a passage: its release's title, then the passage.

    Questions often name the event or the year, which the title holds and the
    passage may not.
    """
    title = " ".join(release.title.split()[:TITLE_WORDS])
    return f"{title}\n{passage.text}"


def lexical_text(release: Release, passage: Passage) -> str:
    """What BM25 sees: the release's title, the passage, and the release's year, which
    questions often name."""
    year = f" {release.date.year}" if release.date else ""
    return f"{passage_embedding_text(release, passage)}{year}"
