"""The bench report's reader stage split (issue 16): one row per neural system that timed its stages."""

from __future__ import annotations

from evals.bench_report import reader_split, stages


def _ms(**p50: float) -> dict[str, dict[str, float]]:
    return {k: {"p50": v, "p95": 2 * v} for k, v in p50.items()}


def test_the_reader_split_has_a_row_per_precision_and_skips_the_feature_answerer() -> None:
    stage = dict(encode=8.0, search=4.0, tokenize=2.0, onnx=90.0, spans=5.0, calibrate=1.0, answer=98.0)
    systems = {
        "ours": {"ms": _ms(encode=8.0, search=4.0, answer=12.0, e2e_ms=25.0), "ready": {}},
        "ours-neural": {"ms": _ms(**stage, e2e_ms=112.0), "ready": {"reader": "reader/fp32"}},
        "ours-neural-int8": {
            "ms": _ms(**stage | {"onnx": 40.0}, e2e_ms=62.0),
            "ready": {"reader": "reader/int8"},
        },
        "bm25s": {"ms": _ms(e2e_ms=3.0), "ready": {}},
    }
    report = {"queries": {"100k": {"systems": systems}}, "questions": {"n": 40}}
    rows = reader_split(report)[2:]
    assert [r.split(" | ")[1] for r in rows] == [
        "ours-neural (reader/fp32)",
        "ours-neural-int8 (reader/int8)",
    ]
    assert "40.0 / 80.0" in rows[1] and "90.0 / 180.0" in rows[0]
    # the per-stage table names each neural system by its reader and precision
    assert sum("reader/int8" in r for r in stages(report)) == 1
    # no neural system timed: no table
    assert reader_split({"queries": {"1k": {"systems": {"ours": systems["ours"]}}}}) == []


def test_a_reader_benched_beside_the_shipped_one_gets_its_folder() -> None:
    """`python -m evals.bench --beside DIR` (the teacher beside a student): its worker reads DIR."""
    from pathlib import Path

    import pytest

    from evals.bench_peers import BESIDE, worker_argv

    where = {"index": Path("idx"), "passages": Path("p.jsonl"), "vectors": None}
    argv = worker_argv(BESIDE, **where, reader_path=Path("teacher"))
    assert argv[argv.index("--reader") + 1] == "neural"
    assert argv[argv.index("--reader-path") + 1] == "teacher" and "--precision" not in argv
    fp32 = worker_argv("ours-neural-fp32", **where)
    assert fp32[fp32.index("--precision") + 1] == "fp32"
    assert "--reader-path" not in worker_argv("ours-neural", **where)
    with pytest.raises(ValueError, match="reader folder"):
        worker_argv(BESIDE, **where)
