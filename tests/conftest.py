from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa import HashingEmbedder

# Unit tests run the feature-based answerer (fast, no model); tests of the shipped pipeline
# (test_model.py, test_reader.py) ask for the neural reader or "auto" explicitly.
os.environ.setdefault("RELEASE_QA_READER", "features")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_CORPUS = SHARED / "corpus" / "us-gov-cyber"
SEED = ROOT / "corpus"


def need_shared(path: Path = SHARED) -> Path:
    """Skip (never under CI) when ../shared is absent."""
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing under CI=true; CI must provide ../shared")
        pytest.skip(f"{path} is absent (tests that read ../shared need it beside the checkout)")
    return path


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(dimension=256)


RELEASES = {
    "alpha.md": """---
title: "Ministers agree on ransomware cooperation"
date: 2021-10-14
source: "Ministry of Examples"
url: "https://example.gov/alpha"
tags: [ransomware, cooperation]
---

Ministers from thirty countries met in Geneva on Tuesday. The meeting was chaired by Dr. Jane Smith of the U.S. delegation.

They agreed to share threat intelligence about ransomware gangs. The next meeting will be held in Tokyo in 2022.
""",
    "beta.md": """---
title: "Agency fines hospital for data breach"
date: 2019-05-06
source: "Health Agency"
---

The Health Agency fined Riverside Hospital $3 million for failing to protect patient records. The breach exposed 200,000 records.

Riverside Hospital agreed to a corrective action plan lasting two years.
""",
    "gamma.txt": """Cyber workforce summit announced

The summit on cyber jobs will take place in Chicago on March 3. About 700,000 cyber jobs remain open nationwide.
Employers pledged to train 10,000 apprentices by 2025.
""",
}


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    d = tmp_path / "releases"
    d.mkdir()
    for name, text in RELEASES.items():
        (d / name).write_text(text, encoding="utf-8")
    return d
