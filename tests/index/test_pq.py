"""IVF-PQ codes for archives whose vectors do not fit in RAM (``release-qa index --pq``)."""

from __future__ import annotations

from pathlib import Path

import faiss
import pytest

import qa.index.vectors
from qa import HashingEmbedder
from qa.index import Index
from qa.ingest.chunking import ChunkerSettings
from qa.retrieval.retriever import Retriever
from qa.types import Release, content_hash

SETTINGS = ChunkerSettings(max_tokens=48, annotator=None)


def releases(n: int, offset: int = 0) -> list[Release]:
    out = []
    for i in range(offset, offset + n):
        text = " ".join(
            f"Office {i} reported {j} incidents of type {i * 13 + j} in region {j % 7}." for j in range(20)
        )
        out.append(Release(content_hash(text), text, f"Report {i}", f"r{i}.md"))
    return out


def test_a_compressed_index_is_saved_as_codes_and_loads_searches_and_grows(tmp_path: Path) -> None:
    emb = HashingEmbedder(256)
    index = Index.empty(emb, SETTINGS)
    index.compress = True
    index.add(releases(60), emb)
    assert len(index.sentences) >= qa.index.vectors.PQ_MIN
    index.save(tmp_path / "ix")
    assert set(index.recall) == {"sentences"} or set(index.recall) == {"passages", "sentences"}
    assert all(0.0 <= r <= 1.0 for r in index.recall.values())
    loaded = Index.load(tmp_path / "ix")
    assert isinstance(loaded.sentence_vectors, faiss.IndexIVFPQ) and loaded.compress
    assert dict(loaded.sentences.items()) == dict(index.sentences.items())
    hits = Retriever(loaded, emb).search("Office 7 reported incidents of type 91", k=3)
    assert hits and hits[0].release.title == "Report 7"
    # grows and shrinks as codes, and stays compressed through an update
    loaded.add(releases(2, offset=60), emb)
    assert isinstance(loaded.sentence_vectors, faiss.IndexIVFPQ)
    assert loaded.remove([r.id for r in releases(1)]) == 1
    loaded.save(tmp_path / "ix")
    again = Index.load(tmp_path / "ix")
    assert len(again.releases) == 61 and isinstance(again.sentence_vectors, faiss.IndexIVFPQ)
    assert again.sentence_vectors.ntotal == len(again.sentences)


def test_a_compressing_build_holds_floats_only_until_the_quantizer_is_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qa.index.vectors, "PQ_TRAIN", 1_200)
    emb = HashingEmbedder(256)
    index = Index.empty(emb, SETTINGS)
    index.compress = True
    floats = []
    for lo in range(0, 120, 10):
        index.add(releases(10, offset=lo), emb)
        if not isinstance(index.sentence_vectors, faiss.IndexIVFPQ):
            floats.append(index.sentence_vectors.ntotal)
    assert isinstance(index.sentence_vectors, faiss.IndexIVFPQ)
    assert max(floats) < 1_200  # converted as soon as it held PQ_TRAIN, then codes only
    assert index.sentence_vectors.ntotal == len(index.sentences)


def test_index_pq_on_the_command_line_prints_recall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for r in releases(50):
        (corpus / r.path).write_text(f"---\ntitle: {r.title}\n---\n\n{r.text}\n")
    assert (
        main(["index", str(corpus), "--index", str(tmp_path / "ix"), "--embedder", "hashing", "-q", "--pq"])
        == 0
    )
    out = capsys.readouterr().out
    assert "sentences stored as IVF-PQ codes: recall@10 against exact search" in out
    # a second run without --pq keeps the codes and writes nothing
    assert main(["index", str(corpus), "--index", str(tmp_path / "ix"), "--embedder", "hashing", "-q"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert isinstance(Index.load(tmp_path / "ix").sentence_vectors, faiss.IndexIVFPQ)
