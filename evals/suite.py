"""The repository's standard suite: its datasets and paths, and the peer cairn-pipeline.

``make eval`` runs it through ``release-qa eval --suite standard``; the harness itself is the
library's (``qa.evaluation.harness``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from evals.peer_systems import PROJECT_ROOT, run_cairn
from qa.evaluation.data import EvalSet
from qa.evaluation.harness import DatasetSpec, Peer
from qa.evaluation.runner import SystemRun

DEFAULT_CACHE = Path(os.environ.get("RELEASE_QA_EVAL_CACHE") or PROJECT_ROOT / "evals" / "cache")
"""Where eval indexes are cached; ``RELEASE_QA_EVAL_CACHE`` moves it (e.g. to a CI cache)."""
SHARED = PROJECT_ROOT.parent / "shared"


def distractors(root: Path = PROJECT_ROOT, shared: Path | None = None) -> tuple[Path, ...]:
    """The fixed, seeded sample of 2,000 wh-briefings releases (``press-distractors.txt``)."""
    sh = shared if shared is not None else root.parent / "shared"
    names = (root / "evals" / "datasets" / "press-distractors.txt").read_text().split()
    return tuple(sh / "corpus" / "wh-briefings" / n for n in names)


def tuning_corpus(root: Path = PROJECT_ROOT, shared: Path | None = None) -> tuple[Path, ...]:
    """The releases press-tune is asked over: its own and the 977 of ``press-tune-distractors.txt``
    (what ``release-qa calibrate-reader`` indexes)."""
    from evals.press_data import read_rows

    sh = shared if shared is not None else root.parent / "shared"
    data = root / "evals" / "datasets"
    names = {r["near"] for r in read_rows(data / "press-tune.jsonl")}
    names |= set((data / "press-tune-distractors.txt").read_text().split())
    return tuple(sh / "corpus" / "wh-briefings" / n for n in sorted(names))


def standard_suite(root: Path = PROJECT_ROOT, shared: Path | None = None) -> tuple[DatasetSpec, ...]:
    """SQuAD v1.1 and v2.0 dev-shared (open corpus), press-dev over the seed and us-gov-cyber, the
    same with every first question asked after another, press-dev again with 2,000 White House
    releases added as distractors, and the held-out unanswerable questions over press-tune's
    corpus (how often the shipped default declines unanswerable questions it was not fitted on)."""
    sh = shared if shared is not None else root.parent / "shared"
    press_corpus = (root / "corpus", sh / "corpus" / "us-gov-cyber")
    return (
        DatasetSpec("squad-v1.1-dev-shared", sh / "evals" / "squad-v1.1-dev-shared.json"),
        # half 0 tunes the reader's calibration and no-answer threshold; half 1 is reported
        DatasetSpec("squad-v2.0-dev-shared", sh / "evals" / "squad-v2.0-dev-shared.json", half=1),
        DatasetSpec("press-dev", root / "evals" / "datasets" / "press-dev.jsonl", press_corpus),
        DatasetSpec(
            "press-dev-after-another",
            root / "evals" / "datasets" / "press-dev.jsonl",
            press_corpus,
            after_another=True,
        ),
        DatasetSpec(
            "press-dev-distractors",
            root / "evals" / "datasets" / "press-dev.jsonl",
            press_corpus + distractors(root, sh),
        ),
        DatasetSpec(
            "press-unanswerable",
            root / "evals" / "datasets" / "press-unanswerable.jsonl",
            tuning_corpus(root, sh),
        ),
    )


def _cairn(eval_set: EvalSet, work: Path, progress: bool) -> SystemRun:
    return run_cairn(eval_set, work, progress=progress)


PEERS: dict[str, Peer] = {"cairn": _cairn}


def shown(path: Path) -> str:
    """A path relative to the project when it lies inside it (reports travel)."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def git_commit(root: Path = PROJECT_ROOT) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{'+changes' if dirty else ''}"
