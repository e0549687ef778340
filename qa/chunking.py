"""Sentence segmentation and passage packing with exact character offsets.

Passages are packed from whole sentences up to a budget counted in the embedding
model's own tokens, so the encoder never silently truncates a passage.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from qa.types import Passage, Release, Sentence, content_hash

TokenCounter = Callable[[Sequence[str]], list[int]]


def word_count(texts: Sequence[str]) -> list[int]:
    """Whitespace token counter: a stand-in for a model tokenizer in tests."""
    return [len(t.split()) for t in texts]


@functools.lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


_PARAGRAPH = re.compile(r"[^\n]+")


def split_sentences(text: str, release_id: str = "") -> list[Sentence]:
    """Sentences of ``text`` with exact offsets; lines are never joined into one sentence.

    pysbd keeps "U.S." and "Dr. Yaacob" whole; we then locate each piece in the
    original text, so offsets are exact even where the segmenter rewrites spaces.
    """
    out: list[Sentence] = []
    for para in _PARAGRAPH.finditer(text):
        ptext = para.group()
        if not ptext.strip():
            continue
        pos = 0
        for piece in _segmenter().segment(ptext):
            s = piece.strip()
            if not s:
                continue
            i = ptext.find(s, pos)
            if i < 0:  # segmenter changed the text: fall back to the rest of the line
                i = pos + len(ptext[pos:]) - len(ptext[pos:].lstrip())
                s = ptext[i:].rstrip()
            start, end = para.start() + i, para.start() + i + len(s)
            out.append(Sentence(release_id, start, end, text[start:end]))
            pos = i + len(s)
            if pos >= len(ptext):
                break
    return out


@dataclass(frozen=True, slots=True)
class ChunkerSettings:
    max_tokens: int = 192
    overlap_sentences: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or not 8 <= self.max_tokens <= 8192:
            raise ValueError(f"max_tokens must be an int in 8..8192, got {self.max_tokens!r}")
        if not isinstance(self.overlap_sentences, int) or not 0 <= self.overlap_sentences <= 8:
            raise ValueError(f"overlap_sentences must be an int in 0..8, got {self.overlap_sentences!r}")

    def to_dict(self) -> dict[str, int | str]:
        return {**asdict(self), "segmenter": "pysbd-en/lines"}


class Chunker:
    """Split releases into sentences and pack them into overlapping passages."""

    def __init__(self, settings: ChunkerSettings | None = None, count_tokens: TokenCounter = word_count):
        self.settings = settings if settings is not None else ChunkerSettings()
        self.count_tokens = count_tokens

    def sentences(self, release: Release) -> list[Sentence]:
        """Sentences, with any sentence over the budget cut at word boundaries."""
        sents = split_sentences(release.text, release.id)
        counts = self.count_tokens([s.text for s in sents]) if sents else []
        out: list[Sentence] = []
        for s, n in zip(sents, counts, strict=True):
            out.extend([s] if n <= self.settings.max_tokens else self._cut(release, s))
        return out

    def _cut(self, release: Release, s: Sentence) -> list[Sentence]:
        words = [m.span() for m in re.finditer(r"\S+", s.text)]
        pieces: list[Sentence] = []
        i = 0
        while i < len(words):
            # grow the piece while it fits; a single over-long "word" stands alone
            j = i + 1
            while j < len(words):
                a, b = s.start + words[i][0], s.start + words[j][1]
                if self.count_tokens([release.text[a:b]])[0] > self.settings.max_tokens:
                    break
                j += 1
            a, b = s.start + words[i][0], s.start + words[j - 1][1]
            pieces.append(Sentence(release.id, a, b, release.text[a:b]))
            i = j
        return pieces

    def chunk(self, release: Release, sentences: Sequence[Sentence] | None = None) -> list[Passage]:
        """Passages of ``release``; pass its ``sentences`` if already computed."""
        sents = list(sentences) if sentences is not None else self.sentences(release)
        if not sents:
            return []
        counts = self.count_tokens([s.text for s in sents])
        budget, overlap = self.settings.max_tokens, self.settings.overlap_sentences
        passages: list[Passage] = []
        i = 0
        while i < len(sents):
            j, used = i, 0
            while j < len(sents) and (j == i or used + counts[j] <= budget):
                used += counts[j]
                j += 1
            group = tuple(sents[i:j])
            start, end = group[0].start, group[-1].end
            pid = content_hash(f"{release.id}:{start}:{end}")
            passages.append(Passage(pid, release.id, start, end, release.text[start:end], group))
            if j >= len(sents):
                break
            i = max(j - overlap, i + 1)
        return passages

    def chunk_batch(self, releases: Sequence[Release]) -> list[list[Passage]]:
        return [self.chunk(r) for r in releases]
