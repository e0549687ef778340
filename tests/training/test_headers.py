"""The header map a reader trained with headers learns from: every mined passage's release title
and date, read from the indexes the mining built."""

from __future__ import annotations

import json
from pathlib import Path

from qa import ChunkerSettings, HashingEmbedder, make_release
from qa.answer.span_reader import header_text
from qa.index.cache import cached_index
from qa.training.headers import cached_index_roots, index_headers, squad_headers, write_headers


def test_every_passage_of_a_cached_index_gets_its_release_header(tmp_path: Path) -> None:
    rels = [
        make_release(
            "Pulaski Day is October 11, 2023.\n\nFlags fly.",
            path="a.md",
            title="Pulaski Day 2023",
            date="2023-10-06",
        ),
        make_release("The fund gives $5 million.", path="b.md", title="A fund"),
    ]
    index, _, _ = cached_index(
        rels, HashingEmbedder(dimension=32), tmp_path, chunker=ChunkerSettings(annotator=None)
    )
    (root,) = cached_index_roots(tmp_path)
    heads = index_headers(root)
    assert len(heads) == len(index.passages)
    for p in index.passages.values():
        r = index.releases[p.release_id]
        assert heads[r.text[p.start : p.end]] == header_text(r.title, r.date)
    assert "Pulaski Day 2023 (October 6, 2023).\n" in heads.values()


def test_squad_paragraphs_get_their_article_title_and_maps_merge(tmp_path: Path) -> None:
    squad = {"data": [{"title": "Super_Bowl_50", "paragraphs": [{"context": "Denver won.", "qas": []}]}]}
    (tmp_path / "s.json").write_text(json.dumps(squad))
    heads = squad_headers(tmp_path / "s.json")
    assert heads == {"Denver won.": "Super Bowl 50.\n"}
    out = tmp_path / "h" / "headers.json"
    assert write_headers([heads, {"Denver won.": "Broncos.\n", "Other.": "X.\n"}], out) == 2
    assert json.loads(out.read_text()) == {"Denver won.": "Broncos.\n", "Other.": "X.\n"}
