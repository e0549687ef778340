"""The eval harness end to end on a toy SQuAD set with the hashing embedder: the index cache,
every system, the report files, the CLI and compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.cli import main
from evals.peer_systems import run_cairn
from evals.suite import PEERS
from qa import ChunkerSettings, HashingEmbedder
from qa.evaluation.data import load_squad
from qa.evaluation.harness import evaluate
from qa.index.cache import cache_key, cached_index

ARTICLES = [
    (
        "Oil_crisis",
        [
            "The 1973 oil crisis began in October 1973 when OAPEC proclaimed an embargo.",
            "By the end of the embargo in March 1974 the price of oil had risen nearly 400 percent.",
        ],
        [
            ("q1", "When did the oil crisis begin?", ["October 1973"]),
            ("q2", "By how much had the price of oil risen?", ["nearly 400 percent", "400 percent"]),
        ],
    ),
    (
        "Harbour",
        [
            "The harbour of Kiel was opened in 1895 by Emperor Wilhelm II.",
            "Ferries to Oslo and Gothenburg leave the harbour every day.",
        ],
        [
            ("q3", "Who opened the harbour of Kiel?", ["Emperor Wilhelm II", "Wilhelm II"]),
            ("q4", "Where do the ferries go?", ["Oslo and Gothenburg"]),
            ("q5", "What colour are the ferries?", []),
        ],
    ),
]


def _write_squad(path: Path) -> Path:
    data = []
    for title, paras, qas in ARTICLES:
        ps = [{"context": c, "qas": []} for c in paras]
        for qid, q, answers in qas:
            para = next(p for p in ps if not answers or answers[0] in p["context"])
            para["qas"].append(
                {
                    "id": qid,
                    "question": q,
                    "answers": [{"text": a, "answer_start": para["context"].find(a)} for a in answers],
                    "is_impossible": not answers,
                }
            )
        data.append({"title": title, "paragraphs": ps})
    path.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return path


def test_index_cache_is_reused_and_keyed_by_content(tmp_path: Path) -> None:
    ds = load_squad(_write_squad(tmp_path / "toy.json"))
    emb = HashingEmbedder(dimension=64)
    _, path, built = cached_index(ds.releases, emb, tmp_path / "cache")
    assert built
    index, again, built = cached_index(ds.releases, emb, tmp_path / "cache")
    assert not built and again == path and set(index.releases) == {r.id for r in ds.releases}
    assert cache_key(ds.releases[:1], emb, index.chunker) != path.parent.name
    assert cache_key(ds.releases, HashingEmbedder(dimension=32), index.chunker) != path.parent.name


def test_evaluate_every_system_and_write_the_report(tmp_path: Path) -> None:
    ds = load_squad(_write_squad(tmp_path / "toy.json"))
    out = tmp_path / "report"
    report = evaluate(
        ds,
        out,
        embedder=HashingEmbedder(dimension=64),
        systems=("pipeline", "dense", "bm25"),
        cache_dir=tmp_path / "cache",
    )
    assert [s.system for s in report.systems] == ["pipeline", "dense", "bm25"]
    for s in report.systems:
        assert s.error is None and s.n == 5
        assert s.retrieval is not None and s.retrieval.n == 4
        assert s.retrieval.release_recall_at_20 == 1.0  # two articles: the gold one is always there
        assert s.abstention is not None and s.abstention.own.no_ans_accuracy is not None
        assert {x.stage for x in s.latency} >= {"encode", "retrieve", "answer", "total"}
    assert {label for label, _ in report.plots} >= {"recall@k", "reliability diagram", "latency per stage"}
    for _, png in report.plots:
        assert (out / png).stat().st_size > 1000
    lines = (out / "predictions" / "toy" / "pipeline.jsonl").read_text().splitlines()
    assert len(lines) == 5


def test_gold_context_answers_from_the_paragraph(tmp_path: Path) -> None:
    ds = load_squad(_write_squad(tmp_path / "toy.json"))
    report = evaluate(
        ds,
        tmp_path / "report",
        embedder=HashingEmbedder(dimension=64),
        systems=("pipeline", "bm25", "cairn"),
        cache_dir=tmp_path / "cache",
        gold_context=True,
        peers=PEERS,
    )
    pipeline, cairn = report.systems
    assert pipeline.retrieval is None and pipeline.answer is not None
    assert pipeline.answer.citation_accuracy == 1.0  # it can only cite the gold release
    assert cairn.error is not None


def test_missing_peer_is_reported_not_faked(tmp_path: Path) -> None:
    ds = load_squad(_write_squad(tmp_path / "toy.json"))
    run = run_cairn(ds, tmp_path / "work", root=tmp_path)
    assert run.predictions == () and run.error is not None and "setup_cairn.sh" in run.error


def test_cli_eval_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import qa.evaluation.harness as harness

    monkeypatch.setattr(harness, "SentenceTransformerEmbedder", lambda: HashingEmbedder(dimension=64))
    toy = _write_squad(tmp_path / "toy.json")
    args = ["eval", "--dataset", str(toy), "--systems", "pipeline,bm25", "--cache", str(tmp_path / "c"), "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--limit", "3", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "toy: 5 questions" in out and "toy: 3 questions" in out
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["datasets"][0]["limit"] == 3 and metrics["datasets"][0]["releases"] == 2
    assert "![toy: recall@k](plots/toy-recall.png)" in (tmp_path / "a" / "report.md").read_text()
    assert main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "toy / pipeline" in capsys.readouterr().out
    assert main(["eval", "--dataset", str(toy), "--corpus", str(tmp_path), "--out", str(tmp_path / "x")]) == 2


def test_a_stopped_eval_index_build_resumes(tmp_path: Path) -> None:
    ds = load_squad(_write_squad(tmp_path / "toy.json"))
    emb = HashingEmbedder(dimension=64)
    _, path, _ = cached_index(ds.releases[:1], emb, tmp_path / "c")  # as if stopped after one release
    folder = path.parent
    target = tmp_path / "c" / cache_key(ds.releases, emb, ChunkerSettings()) / "index"
    target.parent.mkdir(parents=True)
    shutil.copytree(path, target, symlinks=True)  # the partial build, where the full one goes
    index, again, built = cached_index(ds.releases, emb, tmp_path / "c")
    assert built and again == target and {r.id for r in ds.releases} == set(index.releases)
    assert folder != target.parent
