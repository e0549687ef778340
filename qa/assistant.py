"""The public facade: build or update an index, then search and ask."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer.base import Answerer, Candidate, answer, answer_from_candidates
from qa.answer.feature_answerer import AnswererSettings, FeatureAnswerer
from qa.answer.neural import NeuralAnswerer
from qa.answer.span_reader import READER_PATH, reader_available
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.index import Index, QAIndexError, StaleIndexError, read_manifest, writer_lock
from qa.index.prepare import BuildWorkers
from qa.ingest.annotate import warm as warm_annotator
from qa.ingest.chunking import ChunkerSettings
from qa.ingest.releases import ReadReport, Skipped, read_locally, read_releases
from qa.retrieval.rerank import RERANKER_PATH, Reranker, reranker_available
from qa.retrieval.retriever import Filters, Retriever
from qa.text import content_words
from qa.types import Answer, Hit, Passage, Release, content_hash

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]

MAX_QUESTION_CHARS = 2000
MAX_QUESTION_TOKENS = 128
"""A question longer than this, in the model's word pieces (about 90 words), is refused with its
length: the reader reads at most 64 of them beside each passage, and a question that long is a
paste, not a question."""


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What ``update_index`` did, for the CLI's closing summary."""

    path: str
    releases: int
    skipped: tuple[Skipped, ...]
    added: int
    removed: int
    passages: int
    sentences: int
    seconds: float
    rebuilt: bool
    recall: dict[str, float] = field(default_factory=dict)
    """Recall@10 against exact search of the tables compressed to IVF-PQ by this run."""

    @property
    def up_to_date(self) -> bool:
        return self.added == 0 and self.removed == 0 and not self.rebuilt


def _embedder_of(root: Path) -> SentenceTransformerEmbedder:
    """The packaged model as the index at ``root`` was built with it (int8 or not); the default
    encoder where there is no readable index yet."""
    try:
        return SentenceTransformerEmbedder.for_model(read_manifest(root).model)
    except (QAIndexError, OSError, ValueError):
        return SentenceTransformerEmbedder()


def update_index(
    index_path: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    *,
    embedder: Embedder | None = None,
    chunker: ChunkerSettings | None = None,
    strict: bool = False,
    progress: bool = False,
    checkpoint_seconds: float = 300.0,
    workers: BuildWorkers | None = None,
    compress: bool = False,
    annotate: bool = False,
) -> IndexReport:
    """Make the index at ``index_path`` hold exactly the releases under ``sources``.

    Unchanged releases keep their vectors; only new or changed ones are embedded.
    A model or chunker change rebuilds from scratch. Nothing is written when the
    corpus is unchanged. A long build is saved every ``checkpoint_seconds`` (each save a whole
    snapshot, swapped in atomically), so a killed build resumes where its last save left it.
    ``workers`` (a Ray build, ``qa.index.ray_build.RayBuild``) read the files and prepare the new
    releases; the index written is the same. ``compress`` keeps the vectors as IVF-PQ codes
    (``Index.compress``); an index once compressed stays so. ``annotate`` runs the annotator
    (spaCy) over new sentences now instead of when the feature answerer first reads them.
    """
    t0 = time.perf_counter()
    root = Path(index_path)
    emb = embedder if embedder is not None else _embedder_of(root)
    settings = chunker if chunker is not None else ChunkerSettings()
    with writer_lock(root):
        reader = workers.read if workers is not None else read_locally
        report: ReadReport = read_releases(sources, strict=strict, progress=progress, reader=reader)
        source_names = tuple(str(s) for s in sources)
        index: Index | None = None
        rebuilt = False
        if (root / "current").exists():
            try:
                index = Index.load(root)
                if (index.model, index.dimension) != (emb.name, emb.dimension) or index.chunker != settings:
                    logger.warning("model or chunker settings changed: rebuilding %s", root)
                    index, rebuilt = None, True
            except QAIndexError as e:
                logger.warning("%s; rebuilding", e)
                index, rebuilt = None, True
        if index is None:
            index = Index.empty(emb, settings)
            rebuilt = True
        compressing = compress and not index.compress
        index.compress = index.compress or compress
        index.annotate = annotate
        unreadable = [s.path for s in report.skipped if not s.duplicate]  # kept as indexed
        sources_changed = index.sources != source_names
        index.sources = source_names
        building = index
        added, removed = building.sync(
            report.releases,
            emb,
            progress=progress,
            keep_paths=unreadable,
            checkpoint=lambda: building.save(root, locked=True),  # what a killed build resumes from
            checkpoint_seconds=checkpoint_seconds,
            prepare=workers.preparer(emb, settings, annotate=annotate) if workers is not None else None,
        )
        changed = rebuilt or added or removed or sources_changed or index.outdated or compressing
        if changed:
            index.save(root, locked=True)
    return IndexReport(
        path=str(root),
        releases=len(report.releases),
        skipped=report.skipped,
        added=added,
        removed=removed,
        passages=len(index.passages),
        sentences=len(index.sentences),
        seconds=time.perf_counter() - t0,
        rebuilt=rebuilt,
        recall=dict(index.recall),
    )


_FOLLOWUP_START = re.compile(r"^\s*(and|also|but|so|what about|how about|and what|then)\b", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|there|he|she|his|her)\b", re.I)


def last_user_question(history: Sequence[Message] | None) -> str | None:
    """The chat's last question, itself resolved when it leaned on the one before ("Where was it
    held?" after "Who chaired the 2017 AMCC?" reads as both), through at most ``CHAIN`` turns."""
    asked = [
        " ".join(str(m["content"]).split())
        for m in history or ()
        if m.get("role") == "user" and isinstance(m.get("content"), str) and m["content"].strip()
    ]
    if not asked:
        return None
    chain = [asked[-1]]
    for earlier in reversed(asked[:-1]):
        if len(chain) >= CHAIN or not _leans(chain[0]):
            break
        chain.insert(0, earlier)
    return " ".join(chain)


CHAIN = 2
"""The most turns a resolved question joins: the last and the one it leans on; the reader reads
only the first 64 word pieces of the earlier turns and the question together."""


def _leans(question: str) -> bool:
    """Whether a question cannot stand alone: short, opening with a connective, or only a
    pronoun's worth of subject."""
    q = question.strip()
    few_words = len(content_words(q)) <= 3
    return bool(_FOLLOWUP_START.search(q) or (few_words and _PRONOUN.search(q)) or len(content_words(q)) <= 1)


def resolve_followup(question: str, history: Sequence[Message] | None) -> str | None:
    """The question to retrieve with when ``question`` is a clear follow-up (earlier question +
    it; ``phrase`` says how any question is searched)."""
    return phrase(question.strip(), history).resolved


@dataclass(frozen=True, slots=True)
class Asked:
    """A question as the assistant searches and reads it in its chat.

    ``phrasings``: what retrieval searches with, its rankings fused: a clear follow-up after
    the question it leans on; any other question asked after an earlier one both as asked and,
    by its words alone and weighted ``EARLIER_WEIGHT``, after it (a follow-up that names its own
    subject often still leans on the earlier question: "When were those doses supposed to start
    shipping?"). Chosen on press-tune as users see it (F1 / right release):

    | searched after the earlier question | 194 follow-ups | 300 first questions after an unrelated one |
    |---|---|---|
    | never (before) | 61.2 / 76.3 | 79.0 / 87.6 |
    | encoded too, weight 0.7 | 63.4 / 82.1 | 78.8 / 86.7 |
    | encoded too, weight 1.0 | 63.9 / 81.5 | 78.2 / 85.1 |
    | by its words, weight 1.0 | 62.0 / 79.8 | 78.5 / 87.6 |
    | by its words, weight 1.5 (chosen: no second encoding) | 62.6 / 80.9 | 78.9 / 87.6 |

    ``context``: what the reader reads before the question (a clear follow-up's earlier
    question; reading it before any other question took the follow-ups' F1 to 48.4);
    ``resolved``: the question as searched, when it is not the question."""

    question: str
    phrasings: tuple[str, ...]
    weights: tuple[float, ...] = (1.0,)
    """Each phrasing's weight in the fusion."""
    lexical: tuple[bool, ...] = (False,)
    """Which phrasings are searched by their words alone (not encoded: a second encoding
    took 7.8 -> 28 ms a question on the loaded cores)."""
    context: str | None = None
    resolved: str | None = None

    def __post_init__(self) -> None:
        if not len(self.phrasings) == len(self.weights) == len(self.lexical):
            n = (len(self.phrasings), len(self.weights), len(self.lexical))
            raise ValueError(f"{n[0]} phrasings, {n[1]} weights, {n[2]} lexical flags")
        if self.lexical[0]:
            raise ValueError("the first phrasing is encoded (the answerer reads its vector)")


EARLIER_WEIGHT = 1.5
"""The weight of the phrasing after the earlier question when the question may stand alone."""
EARLIER_LEXICAL = True
"""Whether that phrasing is searched by its words alone."""


def phrase(question: str, history: Sequence[Message] | None) -> Asked:
    """How ``question`` is searched and read after ``history`` (``Asked``)."""
    prev = last_user_question(history)
    if prev is None:
        return Asked(question, (question,))
    if _leans(question):  # a clear follow-up: searched and read after the earlier question
        resolved = f"{prev} {question}"
        return Asked(question, (resolved,), context=prev, resolved=resolved)
    return Asked(
        question,
        (question, f"{prev} {question}"),
        (1.0, EARLIER_WEIGHT),
        (False, EARLIER_LEXICAL),
    )


@dataclass(frozen=True, slots=True)
class Reading:
    """A question as the assistant read it: the question it retrieved with when it was a
    follow-up, the passages found and the answerer's candidates, before any decision."""

    question: str
    resolved_question: str | None
    hits: tuple[Hit, ...]
    candidates: tuple[Candidate, ...]


class Assistant:
    """Answers questions from an index by quoting releases.

    >>> a = Assistant.load("embeddings/default")        # doctest: +SKIP
    >>> a.ask("Who chaired the AMCC?").text             # doctest: +SKIP
    """

    def __init__(
        self,
        index: Index,
        embedder: Embedder | None = None,
        *,
        k: int = 10,
        retrieval: str = "hybrid",
        answerer: AnswererSettings | None = None,
        reader: str | None = None,
        path: str | os.PathLike[str] | None = None,
        rerank: bool | Reranker | None = None,
    ):
        """``reader``: "neural" (the trained reader), "features" (the feature-based answerer) or
        "auto" (neural when its model is installed); None reads $RELEASE_QA_READER, else auto.
        ``rerank``: reorder hybrid retrieval's fused passages with a reranker
        (``qa.retrieval.rerank``): this one, or True for the installed one; None reads
        $RELEASE_QA_RERANK ("0" turns it off), else uses the installed one when there is one
        and it was fitted to the index's encoder (one is shipped: ``qa/models/reranker.md``)."""
        self.index = index
        self.embedder = embedder if embedder is not None else SentenceTransformerEmbedder()
        choice = rerank if isinstance(rerank, Reranker) else resolve_rerank(rerank)
        reranker: Reranker | None = None
        if isinstance(choice, Reranker):
            reranker = choice
        elif choice:
            reranker = Reranker.load()
        elif choice is None and reranker_available():  # auto: only over the encoder it was fitted to
            reranker = Reranker.load()
            reranker = reranker if reranker.fits(index.model) else None
        self.retriever = Retriever(index, self.embedder, k=k, mode=retrieval, reranker=reranker)
        self.answerer_kind = resolve_reader(reader)
        """ "neural" or "features": which answerer answers."""
        self.answerer: Answerer = self._answerer_over(index, answerer)
        self.path = Path(path) if path is not None else None
        self._write_lock = threading.Lock()

    def _answerer_over(self, index: Index, settings: AnswererSettings | None) -> Answerer:
        if self.answerer_kind == "neural":
            return NeuralAnswerer(index, settings)
        return FeatureAnswerer(index, settings)

    def _switch_to(self, index: Index) -> None:
        """Answer from ``index`` from now on (a newer snapshot another writer saved)."""
        old = self.retriever
        self.retriever = Retriever(index, self.embedder, k=old.k, mode=old.mode, reranker=old.reranker)
        self.answerer = self._answerer_over(index, getattr(self.answerer, "settings", None))
        self.index = index

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedder: Embedder | None = None, **kwargs: Any) -> Assistant:
        """The assistant over the index at ``path``; without ``embedder``, the encoder it was
        built with (float or int8)."""
        emb = embedder if embedder is not None else _embedder_of(Path(path))
        return cls(Index.load(path, emb), emb, path=path, **kwargs)

    def warm_up(self) -> None:
        """Load the encoder and the reader now (a server calls this before its first
        question), and for the feature answerer the annotator in the background (it annotates the
        sentences it reads that the build did not)."""
        self.search("warm up", k=1)
        if isinstance(self.answerer, NeuralAnswerer):
            self.answerer.reader.warm()
        elif self.index.chunker.annotator is not None:
            threading.Thread(target=warm_annotator, name="warm-annotator", daemon=True).start()

    # ------------------------------------------------------------ adding releases

    def add_releases(self, releases: Sequence[Release], *, save: bool = True) -> list[Release]:
        """Index new releases now (no rebuild) and, when loaded from disk, persist them.

        Returns the releases actually added (ones already indexed are skipped).
        """
        with self._write_lock:
            added = self.index.add(releases, self.embedder)
            if not (added and save and self.path is not None):
                return added
            try:
                self.index.save(self.path)
            except StaleIndexError:
                # another writer (`release-qa index`) saved since this index was loaded: add to
                # its snapshot instead, so neither its releases nor these are lost
                logger.info("the index at %s changed on disk; adding to the newer snapshot", self.path)
                self.index.remove(r.id for r in added)
                fresh = Index.load(self.path, self.embedder)
                added = fresh.add(releases, self.embedder)
                if added:
                    fresh.save(self.path)
                self._switch_to(fresh)
            except BaseException:
                self.index.remove(r.id for r in added)  # not saved, so not added: say so, keep none
                raise
            return added

    def add_files(
        self, paths: Sequence[str | os.PathLike[str]], *, save: bool = True
    ) -> tuple[list[Release], tuple[Skipped, ...]]:
        """Read files or folders and add their releases; unreadable files come back as ``Skipped``."""
        report = read_releases(paths)
        added = self.add_releases(report.releases, save=save)
        added_ids = {r.id for r in added}
        dupes = tuple(
            Skipped(r.path, "already indexed (same text)") for r in report.releases if r.id not in added_ids
        )
        return added, report.skipped + dupes

    def _check_questions(self, questions: Sequence[str]) -> list[str]:
        """Cleaned questions; a question too long to read is refused with its length."""
        qs = [_check_question(q) for q in questions]
        for q, n in zip(qs, self.embedder.count_tokens(qs), strict=True):
            if n > MAX_QUESTION_TOKENS:
                raise ValueError(
                    f"the question is {n} word pieces long ({len(q.split())} words); the limit is "
                    f"{MAX_QUESTION_TOKENS} (about 90 words): ask it shorter"
                )
        return qs

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, *, mode: str | None = None
    ) -> list[Hit]:
        """Top passages with scores; ``mode`` is hybrid, dense or bm25 (default: the assistant's)."""
        return self.search_batch([query], k=k, filters=filters, mode=mode)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int | None = None,
        filters: Filters | None = None,
        *,
        mode: str | None = None,
        histories: Sequence[Sequence[Message] | None] | None = None,
    ) -> list[list[Hit]]:
        """Top passages of each query; with ``histories``, found as ``ask_batch`` finds them for a
        chat (a follow-up's phrasings fused)."""
        qs = self._check_questions(queries)
        if histories is None:
            return self.retriever.search_batch(qs, k=k, filters=filters, mode=mode)
        if len(histories) != len(qs):
            raise ValueError(f"got {len(qs)} queries but {len(histories)} histories")
        if mode is not None and mode != self.retriever.mode:
            raise ValueError(f"histories are searched in the assistant's mode {self.retriever.mode!r}")
        return self._retrieve([phrase(q, h) for q, h in zip(qs, histories, strict=True)], k, filters)[0]

    def answer_from(
        self,
        question: str,
        release_id: str,
        start: int | None = None,
        end: int | None = None,
        *,
        threshold: float | None = None,
    ) -> Answer:
        """Answer from one given span of one release, skipping retrieval ("gold context").

        Separates answering errors from retrieval errors in evaluation.
        """
        (q,) = self._check_questions([question])
        release = self.index.releases[release_id]
        lo = 0 if start is None else start
        hi = len(release.text) if end is None else end
        sents = tuple(self.index.sentences_of(release_id, lo, hi))
        if not sents:
            raise ValueError(f"no sentences of release {release_id} lie within {lo}..{hi}")
        passage = Passage(
            content_hash(f"{release_id}:{lo}:{hi}"),
            release_id,
            sents[0].start,
            sents[-1].end,
            release.text[sents[0].start : sents[-1].end],
            sents,
        )
        vec = self.retriever.encode([q])[0]
        hit = Hit(passage, 1.0, release)
        return answer(self.answerer, q, vec, [hit], threshold=threshold)

    def ask(
        self,
        question: str,
        history: Sequence[Message] | None = None,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        threshold: float | None = None,
    ) -> Answer:
        return self.ask_batch([question], [history], k=k, filters=filters, threshold=threshold)[0]

    def ask_batch(
        self,
        questions: Sequence[str],
        histories: Sequence[Sequence[Message] | None] | None = None,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        threshold: float | None = None,
    ) -> list[Answer]:
        limit = self.answerer.threshold if threshold is None else threshold
        return [
            answer_from_candidates(
                r.question, r.candidates, r.hits, limit, r.resolved_question, self.answerer.confident
            )
            for r in self.read_batch(questions, histories, k=k, filters=filters)
        ]

    def read_batch(
        self,
        questions: Sequence[str],
        histories: Sequence[Sequence[Message] | None] | None = None,
        *,
        k: int | None = None,
        filters: Filters | None = None,
    ) -> list[Reading]:
        """Everything ``ask_batch`` decides from: each question's passages and its answerer's
        candidates (the calibration is fitted on exactly this)."""
        qs = self._check_questions(questions)
        hist = list(histories) if histories is not None else [None] * len(qs)
        if len(hist) != len(qs):
            raise ValueError(f"got {len(qs)} questions but {len(hist)} histories")
        asked = [phrase(q, h) for q, h in zip(qs, hist, strict=True)]
        hits, vecs = self._retrieve(asked, k, filters)
        return [
            Reading(
                a.question, a.resolved, tuple(h), tuple(self.answerer.candidates(a.question, v, h, a.context))
            )
            for a, v, h in zip(asked, vecs, hits, strict=True)
        ]

    def _retrieve(
        self, asked: Sequence[Asked], k: int | None, filters: Filters | None
    ) -> tuple[list[list[Hit]], list[np.ndarray]]:
        """Each question's passages (its phrasings' rankings fused) and its first phrasing's vector."""
        queries = [p for a in asked for p in a.phrasings]
        groups = [n for n, a in enumerate(asked) for _ in a.phrasings]
        weights = [w for a in asked for w in a.weights]
        dense_only = self.retriever.mode == "dense"  # a dense baseline searches every phrasing by vector
        lexical = [x and not dense_only for a in asked for x in a.lexical]
        encoded = [i for i, x in enumerate(lexical) if not x]
        vecs = self.retriever.encode([queries[i] for i in encoded])
        if len(encoded) < len(queries):
            full = np.zeros((len(queries), vecs.shape[1]), dtype=vecs.dtype)
            full[encoded] = vecs
            vecs = full
        hits = self.retriever.search_encoded(
            queries, vecs, k=k, filters=filters, groups=groups, weights=weights, lexical=lexical
        )
        first = np.cumsum([0] + [len(a.phrasings) for a in asked[:-1]])
        return hits, [vecs[i] for i in first]


READERS = ("auto", "neural", "features")


def resolve_reader(reader: str | None) -> str:
    """ "neural" or "features": what ``reader`` (or $RELEASE_QA_READER) asks for, "auto" resolved."""
    choice = reader if reader is not None else os.environ.get("RELEASE_QA_READER", "auto")
    if choice not in READERS:
        raise ValueError(f"reader must be one of {', '.join(READERS)}; got {choice!r}")
    if choice == "auto":
        return "neural" if reader_available() else "features"
    if choice == "neural" and not reader_available():
        raise FileNotFoundError(
            f"reader 'neural' asked for, but no reader model is installed in {READER_PATH}"
        )
    return choice


def resolve_rerank(rerank: bool | None) -> bool | None:
    """Whether reranking is asked for: ``rerank``, else $RELEASE_QA_RERANK ("1"/"0", "on"/"off"),
    else None (auto); asking for it when no reranker is installed is an error."""
    if rerank is None:
        env = os.environ.get("RELEASE_QA_RERANK", "").strip().lower()
        if env not in ("", "0", "1", "true", "false", "on", "off"):
            raise ValueError(f"RELEASE_QA_RERANK must be 1 or 0 (on or off), got {env!r}")
        if env == "":
            return None
        rerank = env in ("1", "true", "on")
    if rerank and not reranker_available():
        raise FileNotFoundError(f"rerank asked for, but no reranker model is installed at {RERANKER_PATH}")
    return bool(rerank)


def _check_question(q: str) -> str:
    if not isinstance(q, str):
        raise TypeError(f"question must be a string, got {type(q).__name__}")
    cleaned = "".join(c if c.isprintable() or c in "\n\t" else " " for c in q)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise ValueError("the question is empty")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is {len(cleaned)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return cleaned
