"""Fit the sentence prior (``qa.answer.prior``) on press-train: every sentence of the releases its
questions are about, labelled 1 where a question's answer stands (its evidence sentence), 0
elsewhere. A logistic regression (scikit-learn, L2) over the hashed surface tokens; the held-out
AUC is measured on a fifth of the releases kept out of a first fit, then the prior is refitted on all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.answer.prior import SentencePrior, hashed, sentence_tokens
from qa.ingest.chunking import split_sentences
from qa.ingest.releases import read_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LabelledSentence:
    text: str
    position: float
    answer: bool
    release: str
    """The release's file name: what the held-out split groups by."""


def labelled_sentences(
    rows_path: str | os.PathLike[str], archive: str | os.PathLike[str]
) -> list[LabelledSentence]:
    """Every sentence of the releases the answerable rows are about, as the library reads them."""
    rows = [
        json.loads(line) for line in Path(rows_path).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    answers: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if row.get("answers"):
            answers.setdefault(row["release"], []).append((row["evidence"], row["answers"][0]))
    out: list[LabelledSentence] = []
    for name, pairs in sorted(answers.items()):
        (release,) = read_file(Path(archive) / name)
        text = release.text
        spans = []
        for evidence, answer in pairs:
            e = text.find(evidence)
            a = text.find(answer, e) if e >= 0 else -1
            if a < 0:
                logger.warning("%s: answer %r not found in its evidence; skipped", name, answer)
                continue
            spans.append((a, a + len(answer)))
        for s in split_sentences(text, release.id):
            hit = any(a < s.end and s.start < b for a, b in spans)
            out.append(LabelledSentence(s.text, s.start / max(1, len(text)), hit, name))
    return out


def _matrix(rows: Sequence[LabelledSentence], bits: int):  # type: ignore[no-untyped-def]
    from scipy.sparse import csr_matrix

    cols = [hashed(sentence_tokens(r.text, r.position), bits) for r in rows]
    indptr = np.cumsum([0, *(len(c) for c in cols)])
    data = np.ones(int(indptr[-1]), dtype=np.float32)
    x = csr_matrix((data, np.concatenate(cols) if cols else [], indptr), shape=(len(rows), 1 << bits))
    x.sum_duplicates()
    return x


def fit_prior(rows: Sequence[LabelledSentence], *, bits: int = 15, c: float = 0.5) -> SentencePrior:
    """L2 logistic regression on the hashed tokens (``c``: scikit-learn's inverse regularisation)."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([r.answer for r in rows], dtype=np.int64)
    if len(set(y.tolist())) < 2:
        raise ValueError("the prior needs sentences that hold answers and sentences that do not")
    model = LogisticRegression(C=c, max_iter=2000, solver="liblinear")
    model.fit(_matrix(rows, bits), y)
    return SentencePrior(model.coef_[0].astype(np.float32), float(model.intercept_[0]), bits)


def held_out(name: str, share: float = 0.2) -> bool:
    """A stable fifth of the releases (by a salted hash of the file name) for the held-out AUC;
    salted because the press sets themselves were split by the bare name's hash."""
    return int(hashlib.sha256(f"prior:{name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def train_prior(
    rows_path: str | os.PathLike[str], archive: str | os.PathLike[str], *, bits: int = 15, c: float = 0.5
) -> SentencePrior:
    """Fit on all of ``rows_path``'s releases; ``info`` carries the held-out AUC of a fit without a fifth."""
    from sklearn.metrics import roc_auc_score

    rows = labelled_sentences(rows_path, archive)
    test = [r for r in rows if held_out(r.release)]
    first = fit_prior([r for r in rows if not held_out(r.release)], bits=bits, c=c)
    auc = float(
        roc_auc_score(
            [r.answer for r in test], first.log_odds([r.text for r in test], [r.position for r in test])
        )
    )
    prior = fit_prior(rows, bits=bits, c=c)
    info = {
        "trained_on": Path(rows_path).name,
        "releases": len({r.release for r in rows}),
        "sentences": len(rows),
        "answer_sentences": sum(r.answer for r in rows),
        "held_out_auc": round(auc, 4),
        "held_out_releases": len({r.release for r in test}),
        "c": c,
    }
    logger.info("sentence prior: %s", info)
    return SentencePrior(prior.weights, prior.bias, bits, info)
