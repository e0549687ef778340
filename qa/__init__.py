"""release-qa: answers questions about press releases by quoting them, with citations."""

from qa.answer import Answerer, AnswererSettings
from qa.assistant import Assistant, IndexReport, resolve_followup, update_index
from qa.chunking import Chunker, ChunkerSettings, split_sentences
from qa.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from qa.index import Index, Manifest, QAIndexError, read_manifest
from qa.releases import ReadReport, ReleaseError, Skipped, make_release, read_bytes, read_file, read_releases
from qa.retrieval import Filters, Retriever
from qa.types import Answer, Citation, Hit, Passage, Release, Sentence

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Answerer",
    "AnswererSettings",
    "Assistant",
    "Chunker",
    "ChunkerSettings",
    "Citation",
    "Embedder",
    "Filters",
    "HashingEmbedder",
    "Hit",
    "Index",
    "IndexReport",
    "Manifest",
    "Passage",
    "QAIndexError",
    "ReadReport",
    "Release",
    "ReleaseError",
    "Retriever",
    "Sentence",
    "SentenceTransformerEmbedder",
    "Skipped",
    "make_release",
    "read_bytes",
    "read_file",
    "read_manifest",
    "read_releases",
    "resolve_followup",
    "split_sentences",
    "update_index",
]
