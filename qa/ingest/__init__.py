"""From files to releases, sentences and passages: reading (``releases``, ``markdown``),
chunking with exact offsets (``chunking``), and the answerer's parses (``annotate``)."""

from qa.ingest.chunking import Chunker, ChunkerSettings, split_sentences
from qa.ingest.releases import (
    FileRead,
    FileReader,
    ReadReport,
    ReleaseError,
    Skipped,
    make_release,
    read_bytes,
    read_file,
    read_locally,
    read_path,
    read_releases,
)

__all__ = [
    "Chunker",
    "ChunkerSettings",
    "FileRead",
    "FileReader",
    "ReadReport",
    "ReleaseError",
    "Skipped",
    "make_release",
    "read_bytes",
    "read_file",
    "read_locally",
    "read_path",
    "read_releases",
    "split_sentences",
]
