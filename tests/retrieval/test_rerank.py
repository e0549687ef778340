from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from qa import ChunkerSettings, HashingEmbedder, Index, read_releases
from qa.assistant import Assistant, resolve_rerank
from qa.evaluation.data import EvalItem, EvalSet
from qa.index import sentence_key, vector_id
from qa.ingest.releases import make_release
from qa.retrieval.rerank import (
    ABSENT,
    RERANK_FEATURES,
    Evidence,
    Reranker,
    month_agreement,
    month_names,
    rerank_features,
    reranker_available,
)
from qa.retrieval.retriever import Retriever
from qa.training.rerank import Ranked, collect, distractors, fit, holds, recall
from qa.types import Hit, Passage

QUERIES = ["Who chaired the meeting in Geneva in 2021?", "How much was the hospital fined?"]


@pytest.fixture
def index(corpus_dir: Path, embedder: HashingEmbedder) -> Index:
    return Index.build(read_releases([corpus_dir]).releases, embedder, ChunkerSettings(max_tokens=24))


class Reverse:
    """Reorders the fused list back to front, recording what it was given."""

    depth = 6

    def __init__(self) -> None:
        self.given: list[Evidence] = []

    def order(
        self, index: Index, evidence: Evidence, passages: dict[int, Passage]
    ) -> list[tuple[int, float]]:
        self.given.append(evidence)
        return [(fid, float(i)) for i, (fid, _) in enumerate(reversed(evidence.fused))]


def test_the_reranker_reorders_the_fused_top_depth(index: Index, embedder: HashingEmbedder) -> None:
    plain = Retriever(index, embedder, k=3)
    vecs = plain.encode(QUERIES)
    deep = plain.search_encoded(QUERIES, vecs, k=Reverse.depth)
    rev = Reverse()
    got = Retriever(index, embedder, k=3, reranker=rev).search_encoded(QUERIES, vecs)
    for row, want in zip(got, deep, strict=True):
        assert [h.passage.id for h in row] == [h.passage.id for h in reversed(want)][:3]
    # it read the fused list as the plain search made it, and the first phrasing's own rankings
    ev = rev.given[0]
    assert [fid for fid, _ in ev.fused] == [vector_id(h.passage.id) for h in deep[0]]
    assert ev.lexical == {
        fid: (i, s) for i, (fid, s) in enumerate(plain._sparse(QUERIES[:1], plain.depth, None)[0])
    }
    assert ev.dense == {
        fid: (i, s) for i, (fid, s) in enumerate(plain._by_sentence(vecs[:1], plain.depth, None)[0])
    }


def test_other_modes_and_lexical_phrasings_keep_the_fused_order(
    index: Index, embedder: HashingEmbedder
) -> None:
    plain = Retriever(index, embedder, k=3)
    rev = Retriever(index, embedder, k=3, reranker=Reverse())
    vecs = plain.encode(QUERIES)
    for mode in ("dense", "bm25"):
        a = plain.search_encoded(QUERIES, vecs, mode=mode)
        b = rev.search_encoded(QUERIES, vecs, mode=mode)
        assert [[h.passage.id for h in r] for r in a] == [[h.passage.id for h in r] for r in b]


def test_features_say_what_retrieval_knows(index: Index, embedder: HashingEmbedder) -> None:
    r = Retriever(index, embedder, k=3)
    vec = r.encode(QUERIES[:1])
    fused = r.search_encoded(QUERIES[:1], vec, k=6)[0]
    assert len(fused) > 2
    fused_ids = [(vector_id(h.passage.id), h.score) for h in fused]
    by_id = index.passages.get_many({f for f, _ in fused_ids})
    ev = Retriever.evidence(QUERIES[0], vec[0], fused_ids, [fused_ids[0]], [])
    x = rerank_features(index, ev, by_id)
    assert x.shape == (len(fused), len(RERANK_FEATURES))
    col = {f: x[:, i] for i, f in enumerate(RERANK_FEATURES)}
    assert col["fused_rank"].tolist() == [math.log1p(k) for k in range(len(fused))]
    assert col["fused_score"].tolist() == [h.score for h in fused]
    assert col["bm25"][0] == 1.0 and (col["bm25"][1:] == 0.0).all()  # only the first is in BM25's list
    assert (col["sentence_rank"] == math.log1p(ABSENT)).all()
    assert col["sentence_gap"].max() == 0.0 and col["passage_gap"].max() == pytest.approx(0.0)
    for k, h in enumerate(fused):  # the question names 2021: alpha's year
        assert col["year"][k] == (1.0 if h.release.date is not None and h.release.date.year == 2021 else -1.0)
        assert col["month"][k] == 0.0  # it names no month
        assert col["release_passages"][k] == sum(g.release.id == h.release.id for g in fused)
        ids = np.array([vector_id(sentence_key(s)) for s in h.passage.sentences], dtype=np.int64)
        best = float((index.sentence_vectors.reconstruct_batch(ids) @ vec[0]).max())
        assert col["sentence_cos"][k] == pytest.approx(best, abs=1e-5)


def test_month_names_read_dates_not_the_verb() -> None:
    assert month_names("What did the July 2022 Fly Formula announcement say?") == {(7, 2022)}
    assert month_names("Who spoke on December 5th, 2025, and in mid-June 2024?") == {(12, 2025), (6, 2024)}
    assert month_names("What changed in May?") == {(5, None)}
    assert month_names("May the agency fund it in 2021?") == set()  # the verb, and a bare year
    assert month_names("Who chaired the meeting in Geneva in 2021?") == set()


def test_month_agreement_needs_a_date() -> None:
    dated = make_release("Text.", path="a.md", date="2022-07-14")
    undated = make_release("Text.", path="b.md")
    assert month_agreement({(7, 2022)}, dated) == 1.0
    assert month_agreement({(7, None)}, dated) == 1.0
    assert month_agreement({(7, 2021), (8, None)}, dated) == -1.0
    assert month_agreement(set(), dated) == 0.0
    assert month_agreement({(7, 2022)}, undated) == 0.0


def test_the_month_feature_compares_the_release_date(index: Index, embedder: HashingEmbedder) -> None:
    r = Retriever(index, embedder, k=3)
    q = "Who chaired the ransomware meeting held in October 2021?"
    vec = r.encode([q])
    fused = r.search_encoded([q], vec, k=6)[0]
    dated = [h for h in fused if h.release.date is not None]
    assert {h.release.date.month for h in dated} >= {10, 5}  # alpha (October 2021) and another month
    fused_ids = [(vector_id(h.passage.id), h.score) for h in fused]
    ev = Retriever.evidence(q, vec[0], fused_ids, [], [])
    x = rerank_features(index, ev, index.passages.get_many({f for f, _ in fused_ids}))
    month = x[:, RERANK_FEATURES.index("month")]
    for k, h in enumerate(fused):
        d = h.release.date
        assert month[k] == (0.0 if d is None else 1.0 if (d.year, d.month) == (2021, 10) else -1.0)


def _ranked_set(index: Index) -> EvalSet:
    rel = {r.title: r for r in index.releases.values()}
    alpha = rel["Ministers agree on ransomware cooperation"]
    beta = rel["Agency fines hospital for data breach"]
    items = (
        EvalItem("q1", QUERIES[0], ("Dr. Jane Smith",), alpha.id),
        EvalItem("q2", QUERIES[1], ("$3 million",), beta.id),
        EvalItem("q3", "Is there an answer?", (), None),
    )
    return EvalSet("tiny", "jsonl", tuple(index.releases.values()), items)


def test_training_labels_the_passages_that_hold_the_answer(index: Index, embedder: HashingEmbedder) -> None:
    es = _ranked_set(index)
    a = Assistant(index, embedder, reader="features", rerank=False)
    ranked = collect(a, es, "press", depth=6)
    assert len(ranked) == 2  # answerable questions only
    for item, r in zip(es.items, ranked, strict=False):
        hits = a.search_batch([item.question], k=6, histories=[None])[0]
        assert r.right.tolist() == [holds(item, h) for h in hits]
        assert r.x.shape == (len(hits), len(RERANK_FEATURES))
    assert a.retriever.reranker is None  # the recorder is taken out again
    assert all(r.right.any() for r in ranked)
    assert recall(ranked, None, 6) == 1.0


def test_holds_needs_the_gold_release_and_paragraph(index: Index) -> None:
    es = _ranked_set(index)
    item = es.items[1]
    rel = index.releases[item.release_id]
    p = next(iter(index.passages.get_many(set(index.ids_of_releases("passages", [rel.id]))).values()))
    hit = Hit(p, 1.0, rel)
    assert holds(item, hit) == ("$3 million" in p.text)
    assert not holds(EvalItem("x", item.question, item.answers, "other"), hit)
    assert not holds(EvalItem("x", item.question, item.answers, rel.id, span=(p.end + 1, p.end + 5)), hit)


def test_a_fitted_reranker_saves_and_loads_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ranked = []
    for _ in range(200):
        x = rng.normal(size=(6, len(RERANK_FEATURES)))
        right = x[:, 4] == x[:, 4].max()  # the best sentence cosine holds the answer
        ranked.append(Ranked("press" if len(ranked) % 2 else "squad", x, right))
    model = fit(ranked)
    assert recall(ranked, model, 1) > recall(ranked, None, 1) + 0.5
    path = Reranker(model, 6).save(tmp_path / "reranker.json", trained_on={"press": 100})
    back = Reranker.load(path)
    assert back.depth == 6 and back.info["trained_on"] == {"press": 100}
    x = np.concatenate([r.x for r in ranked[:5]])
    np.testing.assert_allclose(back.model.proba(x), model.proba(x), atol=1e-5)
    d = json.loads(path.read_text())
    d["features"] = d["model"]["features"] = ["sentence_cos", *RERANK_FEATURES[1:]]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="features"):
        Reranker.load(path)


def test_distractors_are_a_seeded_sample_outside_the_excluded() -> None:
    names = [f"r{i:03d}.md" for i in range(100)]
    kept_out = {f"r{i:03d}.md" for i in range(0, 100, 3)}
    got = distractors(names, 20, seed=5, exclude=kept_out)
    assert len(set(got)) == 20 and not set(got) & kept_out and got == sorted(got)
    assert distractors(list(reversed(names)), 20, seed=5, exclude=kept_out) == got  # order-free
    assert distractors(names, 20, seed=6, exclude=kept_out) != got
    assert distractors(names, 0) == []
    with pytest.raises(ValueError, match="66 releases"):
        distractors(names, 67, exclude=kept_out)
    with pytest.raises(ValueError, match="-1"):
        distractors(names, -1)


def test_release_names_read_lists_and_qa_rows(tmp_path: Path) -> None:
    from app.cli import release_names

    (tmp_path / "list.txt").write_text("b.md\n\na.md\nb.md\n")
    rows = [{"near": "x.md", "release": "y.md"}, {"near": "z.md", "release": None}]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert release_names(tmp_path / "list.txt") == ["a.md", "b.md"]
    assert release_names(tmp_path / "rows.jsonl") == ["x.md", "y.md", "z.md"]
    with pytest.raises(SystemExit, match="missing.txt"):
        release_names(tmp_path / "missing.txt")


def test_the_rerank_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASE_QA_RERANK", "maybe")
    with pytest.raises(ValueError, match="'maybe'"):
        resolve_rerank(None)
    monkeypatch.setenv("RELEASE_QA_RERANK", "0")
    assert resolve_rerank(None) is False
    assert resolve_rerank(False) is False
    with pytest.raises(ValueError, match="depth"):
        Reranker(None, 0)  # type: ignore[arg-type]


def test_a_reranker_is_used_only_over_its_encoder(index: Index, embedder: HashingEmbedder) -> None:
    rng = np.random.default_rng(1)
    ranked = [
        Ranked("press", rng.normal(size=(4, len(RERANK_FEATURES))), np.arange(4) == 0) for _ in range(50)
    ]
    mine = Reranker(fit(ranked), 6, {"encoder": embedder.name})
    assert mine.fits(embedder.name) and mine.fits(embedder.name + "@int8") and not mine.fits("other/model")
    assert Reranker(mine.model, 6).fits("any/model")  # fitted to an encoder it did not record
    assert Assistant(index, embedder, reader="features", rerank=mine).retriever.reranker is mine
    assert Assistant(index, embedder, reader="features", rerank=False).retriever.reranker is None
    # the shipped one was fitted to MiniLM: over this hashing index auto leaves it out, asking uses it
    assert reranker_available()
    assert Assistant(index, embedder, reader="features").retriever.reranker is None
    assert Assistant(index, embedder, reader="features", rerank=True).retriever.reranker is not None


def test_asking_for_a_reranker_none_installed_is_an_error(
    index: Index, embedder: HashingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.assistant

    monkeypatch.setattr(qa.assistant, "reranker_available", lambda: False)
    assert Assistant(index, embedder, reader="features").retriever.reranker is None
    with pytest.raises(FileNotFoundError, match="no reranker"):
        Assistant(index, embedder, reader="features", rerank=True)


def test_the_shipped_reranker_loads_and_records_its_training() -> None:
    shipped = Reranker.load()
    assert shipped.fits("sentence-transformers/all-MiniLM-L6-v2") and shipped.depth == 20
    assert shipped.info["trained_on"]["press"] > 0 and shipped.info["trained_on"]["squad"] > 0
