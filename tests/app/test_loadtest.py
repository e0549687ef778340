"""The load test's code, small: 4 gradio_client clients x 5 questions against `release-qa serve`.

The full run (20 x 50 over corpus/ and the shared releases) is `make loadtest`. The tiny index
(the seed release, real model) is cached in evals/cache, so only the first run embeds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.loadtest import cached_index, loadtest
from qa.index import Index
from tests.conftest import SEED

pytestmark = pytest.mark.model

SEED_FILE = "csa-asean-ministerial-conference-on-cybersecurity-2017.md"


def test_four_clients_five_questions_no_errors(tmp_path: Path) -> None:
    index = cached_index([SEED])
    summary, records = loadtest(
        index,
        4,
        5,
        tmp_path,
        keep=lambda r: r.get("release") == SEED_FILE,
        request_timeout=60,
        deadline_s=120,
        startup_timeout=180,
    )
    assert summary["errors"] == 0 and summary["invalid"] == 0, summary["error_samples"]
    assert summary["requests"] == summary["completed"] == len(records) == 20
    assert summary["latency_s"]["p50"] is not None and summary["throughput_qps"] > 0
    assert not Path(f"/proc/{summary['server']['pid']}").exists(), "the server was left running"
    assert json.loads((tmp_path / "loadtest.json").read_text())["errors"] == 0
    assert "| errors | 0 |" in (tmp_path / "loadtest.md").read_text()

    releases = Index.load(index).releases
    for r in records:
        got = json.loads(r.text or "")
        assert set(got) >= {"question", "answer", "passages"}
        a = got["answer"]
        assert a is not None, f"{r.qid} was declined: {got['question']}"
        assert set(a) >= {"text", "sentence", "score", "citation"}
        c = a["citation"]
        assert set(c) >= {"release_id", "title", "date", "source", "url", "path", "start", "end"}
        assert c["path"].endswith(SEED_FILE)
        assert releases[c["release_id"]].text[c["start"] : c["end"]] == a["text"]
        assert a["text"] in a["sentence"]
