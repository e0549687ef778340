"""The whole-archive bench's bare-encoder probes: what it times before the build is what the build
embeds, so the two estimates it averages measure the same work."""

from __future__ import annotations

from pathlib import Path

from evals.bench_archive import Clock, bare_estimate, probe_after, probe_before
from qa import HashingEmbedder
from qa.assistant import update_index
from qa.index import Index


def test_the_probes_before_and_after_the_build_see_the_builds_texts(corpus_dir: Path, tmp_path: Path) -> None:
    emb = HashingEmbedder(64)
    built = update_index(tmp_path / "index", [corpus_dir], embedder=emb)
    before = probe_before([corpus_dir], emb, share=1.0, seed=1)  # type: ignore[arg-type]
    after = probe_after(Index.load(tmp_path / "index", emb), emb, share=1.0, seed=1)  # type: ignore[arg-type]
    assert before["files"] == built.releases > 1
    assert (before["passages"], before["sentences"]) == (built.passages, built.sentences)
    assert (after["passages"], after["sentences"]) == (built.passages, built.sentences)
    for probe in (before, after):
        assert probe["per_passage_s"] > 0 and probe["per_sentence_s"] > 0
        assert probe["cpu_per_passage_s"] >= 0 and 0.0 <= probe["steal_share"] <= 1.0
        est = bare_estimate(probe, built.passages, built.sentences)
        assert est == probe["per_passage_s"] * built.passages + probe["per_sentence_s"] * built.sentences
    half = probe_before([corpus_dir], emb, share=0.5, seed=1)  # type: ignore[arg-type]
    assert 0 < half["files"] < before["files"]


def test_the_clock_counts_this_process_cpu_and_the_hosts_steal() -> None:
    clock = Clock()
    total = sum(i * i for i in range(300_000))  # some CPU work
    got = clock.read()
    assert total > 0 and got["wall_s"] > 0 and got["cpu_s"] > 0
    assert 0.0 <= got["steal_share"] <= 1.0
