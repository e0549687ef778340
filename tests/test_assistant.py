from __future__ import annotations

from pathlib import Path

import pytest

from qa import Assistant, ChunkerSettings, HashingEmbedder, Index, read_releases, resolve_followup
from qa.serialize import answer_to_dict


@pytest.fixture
def assistant(corpus_dir: Path, embedder: HashingEmbedder) -> Assistant:
    index = Index.build(read_releases([corpus_dir]).releases, embedder, ChunkerSettings(max_tokens=24))
    return Assistant(index, embedder)


def test_answer_is_a_verbatim_cited_span(assistant: Assistant) -> None:
    a = assistant.ask("How much was Riverside Hospital fined by the Health Agency?")
    assert a.text is not None and a.citation is not None
    release = assistant.index.releases[a.citation.release_id]
    assert release.text[a.citation.start : a.citation.end] == a.text
    assert a.sentence is not None and a.sentence_start is not None and a.sentence_end is not None
    assert release.text[a.sentence_start : a.sentence_end] == a.sentence
    assert a.text in a.sentence
    assert "$3 million" in a.sentence
    assert a.citation.title == "Agency fines hospital for data breach"
    assert a.citation.source == "Health Agency"


def test_every_answer_round_trips(assistant: Assistant) -> None:
    questions = [
        "Who chaired the meeting?",
        "Where will the next meeting be held?",
        "How many apprentices will employers train?",
        "How many records did the breach expose?",
    ]
    for a in assistant.ask_batch(questions, threshold=0.0):
        assert a.citation is not None and a.text is not None
        assert (
            assistant.index.releases[a.citation.release_id].text[a.citation.start : a.citation.end] == a.text
        )
        for h in a.hits:
            assert h.release.text[h.passage.start : h.passage.end] == h.passage.text


def test_declines_below_threshold(assistant: Assistant) -> None:
    a = assistant.ask("Which football club won the league?", threshold=0.9)
    assert a.text is None and a.citation is None and a.declined
    assert answer_to_dict(a)["answer"] is None


def test_json_shape(assistant: Assistant) -> None:
    d = answer_to_dict(assistant.ask("How much was Riverside Hospital fined?", threshold=0.0))
    assert set(d) >= {"question", "answer", "passages"}
    assert set(d["answer"]) == {"text", "sentence", "score", "citation"}
    assert set(d["answer"]["citation"]) == {
        "release_id",
        "title",
        "date",
        "source",
        "url",
        "path",
        "start",
        "end",
    }
    assert d["answer"]["citation"]["date"] == "2019-05-06"
    assert set(d["passages"][0]) >= {"release_id", "start", "end", "text", "score"}


def test_bad_questions_get_clear_errors(assistant: Assistant) -> None:
    with pytest.raises(ValueError, match="empty"):
        assistant.ask("   \x00\x07  ")
    with pytest.raises(ValueError, match="limit is 2000"):
        assistant.ask("why " * 1000)
    a = assistant.ask("the of and to", threshold=0.0)  # only stop words: an answer or a decline, no crash
    assert a.text is None or a.citation is not None


def test_followups_use_history(assistant: Assistant) -> None:
    history = [
        {"role": "user", "content": "Who chaired the ministers' meeting in Geneva?"},
        {"role": "assistant", "content": "Dr. Jane Smith"},
    ]
    assert resolve_followup("And where will the next one be held?", history) is not None
    assert resolve_followup("How much was Riverside Hospital fined for the breach?", history) is None
    assert resolve_followup("And where?", None) is None
    a = assistant.ask("And where will the next one be held?", history=history, threshold=0.0)
    assert a.resolved_question is not None and "Geneva" in a.resolved_question
    assert a.citation is not None and a.citation.title == "Ministers agree on ransomware cooperation"
