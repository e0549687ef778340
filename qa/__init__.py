"""release-qa: answers questions about press releases by quoting them, with citations.

The names below load on first use (PEP 562), so ``import qa`` stays cheap: FAISS, ONNX Runtime
and the models load only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Answer": "qa.types",
    "Citation": "qa.types",
    "Hit": "qa.types",
    "Passage": "qa.types",
    "Release": "qa.types",
    "Sentence": "qa.types",
    "Answerer": "qa.answer.base",
    "Candidate": "qa.answer.base",
    "AnswererSettings": "qa.answer.feature_answerer",
    "FeatureAnswerer": "qa.answer.feature_answerer",
    "NeuralAnswerer": "qa.answer.neural",
    "SpanReader": "qa.answer.span_reader",
    "Assistant": "qa.assistant",
    "IndexReport": "qa.assistant",
    "resolve_followup": "qa.assistant",
    "update_index": "qa.assistant",
    "Chunker": "qa.ingest.chunking",
    "ChunkerSettings": "qa.ingest.chunking",
    "split_sentences": "qa.ingest.chunking",
    "ReadReport": "qa.ingest.releases",
    "ReleaseError": "qa.ingest.releases",
    "Skipped": "qa.ingest.releases",
    "make_release": "qa.ingest.releases",
    "read_bytes": "qa.ingest.releases",
    "read_file": "qa.ingest.releases",
    "read_releases": "qa.ingest.releases",
    "Embedder": "qa.embedding",
    "HashingEmbedder": "qa.embedding",
    "SentenceTransformerEmbedder": "qa.embedding",
    "Index": "qa.index",
    "Manifest": "qa.index",
    "QAIndexError": "qa.index",
    "read_manifest": "qa.index",
    "Filters": "qa.retrieval",
    "Retriever": "qa.retrieval",
}

__all__ = [
    "Answer",
    "Answerer",
    "AnswererSettings",
    "Assistant",
    "Candidate",
    "Chunker",
    "ChunkerSettings",
    "Citation",
    "Embedder",
    "FeatureAnswerer",
    "Filters",
    "HashingEmbedder",
    "Hit",
    "Index",
    "IndexReport",
    "Manifest",
    "NeuralAnswerer",
    "Passage",
    "QAIndexError",
    "ReadReport",
    "Release",
    "ReleaseError",
    "Retriever",
    "Sentence",
    "SentenceTransformerEmbedder",
    "Skipped",
    "SpanReader",
    "make_release",
    "read_bytes",
    "read_file",
    "read_manifest",
    "read_releases",
    "resolve_followup",
    "split_sentences",
    "update_index",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # for type checkers and editors: the same names, eagerly
    from qa.answer.base import Answerer, Candidate
    from qa.answer.feature_answerer import AnswererSettings, FeatureAnswerer
    from qa.answer.neural import NeuralAnswerer
    from qa.answer.span_reader import SpanReader
    from qa.assistant import Assistant, IndexReport, resolve_followup, update_index
    from qa.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder
    from qa.index import Index, Manifest, QAIndexError, read_manifest
    from qa.ingest.chunking import Chunker, ChunkerSettings, split_sentences
    from qa.ingest.releases import (
        ReadReport,
        ReleaseError,
        Skipped,
        make_release,
        read_bytes,
        read_file,
        read_releases,
    )
    from qa.retrieval import Filters, Retriever
    from qa.types import Answer, Citation, Hit, Passage, Release, Sentence
