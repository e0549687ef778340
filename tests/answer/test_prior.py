"""The sentence prior: surface tokens, a fit that learns which sentences hold answers, persistence,
labels from press rows, and the shipped prior on the seed's photo caption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.answer.prior import PRIOR_PATH, SentencePrior, hashed, prior_available, sentence_tokens
from qa.ingest.releases import read_file
from qa.training.prior import LabelledSentence, fit_prior, labelled_sentences

SEED = Path(__file__).parents[2] / "corpus" / "csa-asean-ministerial-conference-on-cybersecurity-2017.md"


def test_tokens_describe_the_surface_and_hash_stably() -> None:
    toks = sentence_tokens("Contact: press@agency.gov, 202-555-0100", 0.97)
    assert {"contact", "^contact", "#at-sign", "#pos:9", "000"} <= set(toks)
    assert "#no-end-stop" in toks and "#no-end-stop" not in sentence_tokens("It ended.", 0.5)
    a, b = hashed(toks, 12), hashed(toks, 12)
    assert np.array_equal(a, b) and a.max() < 4096


def _rows() -> list[LabelledSentence]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        n = int(rng.integers(2, 90))
        rows.append(
            LabelledSentence(f"The agency awarded ${n} million to {n % 7 + 2} states.", 0.3, True, f"r{i}")
        )
        rows.append(LabelledSentence(f"Media contact: office{n}@agency.gov", 0.95, False, f"r{i}"))
        rows.append(LabelledSentence(f"Photo: officials at the event (Click here) {n}", 0.0, False, f"r{i}"))
    return rows


def test_the_fit_learns_which_sentences_hold_answers_and_round_trips(tmp_path: Path) -> None:
    prior = fit_prior(_rows(), bits=12)
    unseen = [
        "The department awarded $7 million to 3 states.",
        "Press contact: desk@agency.gov",
        "Photo (Click here)",
    ]
    odds = prior.log_odds(unseen, [0.4, 0.9, 0.05])
    assert odds[0] > odds[1] and odds[0] > odds[2]
    back = SentencePrior.load(prior.save(tmp_path / "prior"))
    assert np.array_equal(back.log_odds(unseen, [0.4, 0.9, 0.05]), odds)
    with pytest.raises(ValueError, match="hold answers"):
        fit_prior([r for r in _rows() if not r.answer], bits=12)
    with pytest.raises(ValueError, match="bits"):
        SentencePrior(np.zeros(16, dtype=np.float32), 0.0, 4)


def test_labels_mark_the_sentence_the_answer_stands_in(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\ntitle: Grants\n---\n\nThe agency met on Monday. It awarded $5 million to Ohio.\n\nContact: desk@agency.gov\n"
    )
    rows = [
        {
            "question": "How much?",
            "answers": ["$5 million"],
            "evidence": "It awarded $5 million to Ohio.",
            "release": "a.md",
        },
        {"question": "Who?", "answers": [], "evidence": "", "release": "a.md"},
    ]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = labelled_sentences(tmp_path / "rows.jsonl", tmp_path)
    assert [(s.text, s.answer) for s in got] == [
        ("The agency met on Monday.", False),
        ("It awarded $5 million to Ohio.", True),
        ("Contact: desk@agency.gov", False),
    ]
    (release,) = read_file(tmp_path / "a.md")
    assert all(0 <= s.position < 1 for s in got) and got[1].position == release.text.index("It") / len(
        release.text
    )


@pytest.mark.skipif(not prior_available(), reason=f"no sentence prior installed in {PRIOR_PATH}")
def test_the_shipped_prior_ranks_the_seeds_caption_below_its_chair_sentence() -> None:
    prior = SentencePrior.load()
    (release,) = read_file(SEED)
    caption = release.text[: release.text.index("(Click here for full image captions)") + 36]
    i = release.text.index("The AMCC, held at")
    chair = release.text[i : release.text.index("Ibrahim.", i) + 8]
    odds = prior.log_odds([caption, chair], [0.0, i / len(release.text)])
    assert odds[1] > odds[0]
    assert (prior.info or {}).get("held_out_auc", 0) > 0.65  # learned, and it generalises to unseen releases


def test_the_neural_answerer_feeds_the_prior_to_its_calibration() -> None:
    """Two sentences the reader scores alike: the prior alone decides, and the quote is the grant."""
    from qa import Assistant, ChunkerSettings, HashingEmbedder, Index, make_release
    from qa.answer.neural import CALIBRATION_FEATURES, Calibration, NeuralAnswerer
    from qa.answer.span_reader import ReadSpan

    class Reader:  # the first four characters of every sentence, all scored alike
        path = Path("/nonexistent")
        reads_headers = False

        def read_spans(self, question, texts, sentence_starts=None):  # type: ignore[no-untyped-def]
            return [[ReadSpan(a, a + 4, 1.0, 0.0, 0.1) for a in starts] for starts in sentence_starts]

    emb = HashingEmbedder(dimension=64)
    text = "Photo: officials at the event (Click here) 4\n\nThe agency awarded $7 million to 3 states."
    index = Index.build(
        [make_release(text, path="a.md", title="Grants")], emb, ChunkerSettings(annotator=None)
    )
    prior = fit_prior(_rows(), bits=12)
    cal = Calibration((1.0,), 0.0, 0.0, ("sentence_prior",))
    assistant = Assistant(index, emb, reader="features")
    assistant.answerer = NeuralAnswerer(index, reader=Reader(), calibration=cal, prior=prior)  # type: ignore[arg-type]
    q = "What did the agency do?"
    cands = assistant.answerer.candidates(q, emb.encode([q])[0], assistant.search(q))
    col = CALIBRATION_FEATURES.index("sentence_prior")
    odds = {c.sentence.text[:5]: c.features[col] for c in cands}
    assert odds["The a"] > odds["Photo"]
    assert assistant.ask(q).text == "The "
