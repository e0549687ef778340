"""The index: passages, sentences and their vectors, BM25, a store beside them, a manifest.

``model`` holds the ``Index`` (add, remove, sync, save, load); ``snapshot`` the files on disk
and the writer lock; ``manifest`` what a snapshot promises; ``table`` the lazy records;
``vectors`` the FAISS helpers; ``store`` the SQLite text store; ``lexical`` BM25; ``cache``
an index built once per corpus.
"""

from qa.index.manifest import (
    FORMAT,
    FORMAT_VERSION,
    Manifest,
    QAIndexError,
    StaleIndexError,
    corpus_fingerprint,
    manifest_checksum,
)
from qa.index.model import REBUILD_LEXICAL, STEMS, Index
from qa.index.snapshot import read_manifest, writer_lock
from qa.index.vectors import IVF_FROM, sentence_key, sized, vector_id, vector_ids

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "IVF_FROM",
    "REBUILD_LEXICAL",
    "STEMS",
    "Index",
    "Manifest",
    "QAIndexError",
    "StaleIndexError",
    "corpus_fingerprint",
    "manifest_checksum",
    "read_manifest",
    "sentence_key",
    "sized",
    "vector_id",
    "vector_ids",
    "writer_lock",
]
