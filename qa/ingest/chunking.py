"""Sentence segmentation and passage packing with exact character offsets.

Passages are packed from whole sentences up to a budget counted in the embedding
model's own tokens, so the encoder never silently truncates a passage.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from qa.types import Passage, Release, Sentence, content_hash

TokenCounter = Callable[[Sequence[str]], list[int]]

logger = logging.getLogger(__name__)


def word_count(texts: Sequence[str]) -> list[int]:
    """Whitespace token counter: a stand-in for a model tokenizer in tests."""
    return [len(t.split()) for t in texts]


@functools.lru_cache(maxsize=1)
def _segmenter():  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


_PARAGRAPH = re.compile(r"[^\n]+")


def _segment(text: str) -> list[str]:
    """pysbd's ``Segmenter.segment`` (``clean=False``): the same pieces, but each sentence is
    located in ``text`` with ``str.find`` where pysbd compiles a regex per sentence (half of its
    time on real releases; tests/ingest/test_chunking.py checks the two agree)."""
    if not text:
        return []
    out: list[str] = []
    prior = 0  # pysbd: the first match of ``re.escape(sent) + r"\s*"`` ending after the last one
    for sent in _segmenter().processor(text).process():
        if not sent:
            m = next((m for m in re.finditer(r"\s*", text) if m.end() > prior), None)
            if m is not None:
                out.append(m.group())
                prior = m.end()
            continue
        scan = 0
        while (i := text.find(sent, scan)) >= 0:
            end = i + len(sent)
            while end < len(text) and text[end].isspace():
                end += 1
            if end > prior:
                out.append(text[i:end])
                prior = end
                break
            scan = end
    return out


def split_sentences(text: str, release_id: str = "") -> list[Sentence]:
    """Sentences of ``text`` with exact offsets; lines are never joined into one sentence.

    pysbd keeps "U.S." and "Dr. Yaacob" whole; we then locate each piece in the
    original text, so offsets are exact even where the segmenter rewrites spaces.
    """
    out: list[Sentence] = []
    for para in _PARAGRAPH.finditer(text):
        ptext = para.group()
        pos = 0
        try:
            pieces = _segment(ptext)
        except (ValueError, IndexError, RecursionError) as e:  # pysbd fails on some odd lines
            logger.debug("sentence splitter failed (%s); keeping the line whole", e)
            pieces = []
        for piece in pieces:
            s = piece.strip()
            i = ptext.find(s, pos) if s else -1
            if i < 0:  # empty, or the segmenter changed the text: the rest of the line follows
                if s:
                    break
                continue
            # start after the previous sentence, so text the segmenter dropped is kept
            _add(out, text, release_id, para.start() + pos, para.start() + i + len(s))
            pos = i + len(s)
        _add(out, text, release_id, para.start() + pos, para.end())
    return out


def _add(out: list[Sentence], text: str, release_id: str, start: int, end: int) -> None:
    """Append text[start:end] stripped of surrounding space, unless it is blank."""
    piece = text[start:end]
    if not piece.strip():
        return
    start += len(piece) - len(piece.lstrip())
    end -= len(piece) - len(piece.rstrip())
    out.append(Sentence(release_id, start, end, text[start:end]))
    return out


SENTENCE_VECTORS = ("late", "separate")
"""How a build gets sentence vectors (``ChunkerSettings.sentence_vectors``). "late" was chosen on
the tuning sets: hybrid retrieval (sentences + BM25) found the gold passage first 77.0% against
75.3% (press-train + press-tune, 1,095 questions, 750 releases) and 80.4% against 79.4% (1,500
SQuAD train questions), and a build encodes no sentence on its own."""


@dataclass(frozen=True, slots=True)
class ChunkerSettings:
    """How a build cuts releases and reads their sentences. ``annotator``: the sentence annotator
    run at index time (None: no short-answer candidates). ``sentence_vectors``: "late" reads each
    sentence in its passage (the mean of its tokens' states in the passage's encoder pass: no
    encoder pass of its own), "separate" encodes every sentence on its own."""

    max_tokens: int = 192
    overlap_sentences: int = 1
    annotator: str | None = "spacy-en_core_web_sm-3.8"
    sentence_vectors: str = "late"

    def __post_init__(self) -> None:
        if self.sentence_vectors not in SENTENCE_VECTORS:
            raise ValueError(
                f"sentence_vectors must be one of {', '.join(SENTENCE_VECTORS)}, "
                f"got {self.sentence_vectors!r}"
            )
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

    def _fits(self, text: str, start: int, end: int) -> bool:
        return self.count_tokens([text[start:end]])[0] <= self.settings.max_tokens

    def _cut(self, release: Release, s: Sentence) -> list[Sentence]:
        text = release.text
        words = [(s.start + m.start(), s.start + m.end()) for m in re.finditer(r"\S+", s.text)]
        pieces: list[Sentence] = []
        i = 0
        while i < len(words):
            # grow the piece while it fits
            j = i + 1
            while j < len(words) and self._fits(text, words[i][0], words[j][1]):
                j += 1
            a, b = words[i][0], words[j - 1][1]
            if j == i + 1 and not self._fits(text, a, b):
                pieces.extend(self._cut_word(release, a, b))
            else:
                pieces.append(Sentence(release.id, a, b, text[a:b]))
            i = j
        return pieces

    def _cut_word(self, release: Release, a: int, b: int) -> list[Sentence]:
        """A single "word" over the budget (a long URL, a hash) is cut between characters,
        so the encoder still sees every piece whole."""
        text = release.text
        pieces: list[Sentence] = []
        while a < b:
            lo, hi = a + 1, b  # the longest prefix text[a:lo] that fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self._fits(text, a, mid):
                    lo = mid
                else:
                    hi = mid - 1
            while lo > a + 1 and not self._fits(text, a, lo):  # token counts need not be monotone
                lo -= 1
            pieces.append(Sentence(release.id, a, lo, text[a:lo]))
            a = lo
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
