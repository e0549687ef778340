"""End-to-end tests with the real packaged model over the seed and a few shared releases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa import Assistant, SentenceTransformerEmbedder, update_index
from qa.answer.span_reader import reader_available
from tests.conftest import SEED, SHARED_CORPUS, need_shared

pytestmark = pytest.mark.model

SHARED_PICKS = [
    "hhs-2018-10-15-anthem-pays-ocr-16-million-record-hipaa-settlement-following-largest-health-data.md",
    "wh-2021-10-14-joint-statement-of-the-ministers-and-representatives-from-the-counter-ransomware-initi.md",
    "wh-2023-11-01-international-counter-ransomware-initiative-2023-joint-statement.md",
]


@pytest.fixture(scope="module")
def model_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_shared(SHARED_CORPUS)
    src = tmp_path_factory.mktemp("src") / "picked"
    src.mkdir()
    for name in SHARED_PICKS:
        shutil.copy(SHARED_CORPUS / name, src / name)
    idx = tmp_path_factory.mktemp("idx") / "index"
    report = update_index(idx, [SEED, src], embedder=SentenceTransformerEmbedder())
    assert report.releases == 4 and not report.skipped
    return idx


@pytest.fixture(scope="module")
def assistant(model_index: Path) -> Assistant:
    return Assistant.load(model_index, reader="auto")


READERS = [
    "features",
    pytest.param("neural", marks=pytest.mark.skipif(not reader_available(), reason="no reader")),
]


@pytest.mark.parametrize("reader", READERS)
def test_amcc_chair_from_seed(model_index: Path, reader: str) -> None:
    assistant = Assistant.load(model_index, reader=reader)
    a = assistant.ask("Who chaired the AMCC?")
    assert a.citation is not None and a.text is not None
    release = assistant.index.releases[a.citation.release_id]
    assert release.path.startswith("corpus/")
    quoted = release.text[a.citation.start : a.citation.end]
    assert quoted == a.text
    assert "Dr Yaacob Ibrahim" in (a.sentence or "")
    assert a.citation.source == "Cyber Security Agency of Singapore"
    if reader == "neural":  # the short answer, not just its sentence
        assert "Yaacob Ibrahim" in a.text and len(a.text) < len(a.sentence or "")


def test_right_release_among_similar_ones(assistant: Assistant) -> None:
    a = assistant.ask("How much did Anthem pay to settle the HIPAA violations?")
    assert a.citation is not None and "anthem" in a.citation.path
    assert "$16 million" in (a.sentence or "")


def test_unrelated_question_is_declined(assistant: Assistant) -> None:
    a = assistant.ask("What is the recipe for banana bread?")
    assert a.text is None


def test_cli_index_and_ask_json(model_index: Path, tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "app.cli"]
    # the CLI as shipped: without the "features" default the test run sets
    env = {k: v for k, v in os.environ.items() if k != "RELEASE_QA_READER"}
    out = subprocess.run(
        [*exe, "ask", "Who chaired the AMCC?", "--index", str(model_index), "--json"],
        capture_output=True,
        env=env,
        text=True,
        check=True,
    )
    d = json.loads(out.stdout)
    assert d["question"] == "Who chaired the AMCC?"
    c = d["answer"]["citation"]
    text = (SEED / "csa-asean-ministerial-conference-on-cybersecurity-2017.md").read_text()
    assert d["answer"]["text"] in text and c["path"].startswith("corpus/")
    assert d["passages"] and all(
        {"release_id", "start", "end", "text", "score"} <= set(p) for p in d["passages"]
    )

    plain = subprocess.run(
        [*exe, "ask", "Who chaired the AMCC?", "--index", str(model_index)],
        capture_output=True,
        env=env,
        text=True,
        check=True,
    )
    assert "Dr Yaacob Ibrahim" in plain.stdout and "characters" in plain.stdout

    idx = tmp_path / "idx"
    built = subprocess.run(
        [*exe, "index", str(SEED), "--index", str(idx), "-q"],
        capture_output=True,
        env=env,
        text=True,
        check=True,
    )
    assert "1 releases read, 0 skipped, 1 added" in built.stdout
    again = subprocess.run(
        [*exe, "index", str(SEED), "--index", str(idx), "-q"],
        capture_output=True,
        env=env,
        text=True,
        check=True,
    )
    assert "up to date" in again.stdout

    missing = subprocess.run(
        [*exe, "ask", "x", "--index", str(tmp_path / "none")], capture_output=True, env=env, text=True
    )
    assert missing.returncode == 2 and "no index at" in missing.stderr


SEED_QUESTIONS = [
    ("Who chaired the ASEAN Ministerial Conference on Cybersecurity in 2017?", "Yaacob Ibrahim"),
    ("Where was the 2017 ASEAN Ministerial Conference on Cybersecurity held?", "St. Regis Singapore"),
    # quoted as "ASEAN" (of "five ASEAN Dialogue Partners") by every reader before the one that
    # reads its passages under the release's title (2026-12-06, session 25): an xfail until then
    (
        "Which dialogue partners took part in the Special Session of the 2017 AMCC?",
        "Australia, China, Japan, New Zealand and the United States",
    ),
    ("Where will the third edition of the AMCC be held?", "Singapore"),
]


@pytest.mark.skipif(not reader_available(), reason="no reader model installed")
@pytest.mark.parametrize(("question", "gold"), SEED_QUESTIONS)
def test_the_shipped_default_answers_the_seeds_questions(
    assistant: Assistant, question: str, gold: str
) -> None:
    """The user's own release, asked the way they ask it: answered (not declined), quoted, cited."""
    assert assistant.answerer_kind == "neural"  # the shipped default
    a = assistant.ask(question)
    assert a.text is not None and a.citation is not None, f"declined (score {a.score:.2f})"
    assert gold in a.text
    release = assistant.index.releases[a.citation.release_id]
    assert release.path.startswith("corpus/") and release.text[a.citation.start : a.citation.end] == a.text
    assert a.citation.title.startswith("ASEAN Member States Affirm")


def test_an_int8_index_is_asked_with_the_int8_encoder(tmp_path: Path) -> None:
    """`release-qa index --encoder onnx-int8`: the index records it, a later `index` without the
    flag keeps it (no rebuild), `ask` encodes with it, and asking for the float encoder rebuilds."""
    from qa.embedding import INT8
    from qa.index import read_manifest

    exe = [sys.executable, "-m", "app.cli"]
    idx = tmp_path / "idx"

    def run(*args: str) -> str:
        return subprocess.run([*exe, *args], capture_output=True, text=True, check=True).stdout

    assert "1 added" in run("index", str(SEED), "--index", str(idx), "-q", "--encoder", "onnx-int8")
    assert read_manifest(idx).model.endswith(INT8)
    assert "up to date" in run("index", str(SEED), "--index", str(idx), "-q")
    a = Assistant.load(idx, reader="features")
    assert a.embedder.name.endswith(INT8)
    got = a.ask("Who chaired the AMCC?")
    assert got.text is not None and "Yaacob Ibrahim" in (got.sentence or "")
    out = json.loads(
        run("ask", "Who chaired the AMCC?", "--index", str(idx), "--json", "--reader", "features")
    )
    assert "Yaacob Ibrahim" in out["answer"]["sentence"]
    assert "rebuilt" in run("index", str(SEED), "--index", str(idx), "-q", "--encoder", "onnx")
    assert not read_manifest(idx).model.endswith(INT8)
