"""Press QA data written for this project over ``../shared/corpus/wh-briefings`` (issue 14).

    python -m evals.press_data select [--rounds N]  # the seeded release lists (committed)
    python -m evals.press_data show FILE.md      # a release as the library reads it, numbered lines
    python -m evals.press_data check [FILE ...]  # validate rows against what the library reads
    python -m evals.press_data split PART ...    # parts -> press-train, press-tune, press-unanswerable

Rows (JSONL), one question each:

    {"id", "question", "answers", "evidence", "release", "near", "type", "followup_of"}

``answers``: exact substrings of the release text as ``qa.read_file`` reads it (Markdown rendered),
``[]`` when unanswerable; ``evidence``: the sentence that holds the first answer (exact substring,
null when unanswerable); ``release``: the file name in wh-briefings (null when unanswerable);
``near``: the release the question was written about (for an unanswerable one: the release it
sounds like it should be answered by); ``followup_of``: an earlier id of the same file, asked
with that chain as chat history. The split is by ``near`` of a chain's first question, so a
release and every question written on it fall in one split.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "corpus" / "wh-briefings"
DATASETS = ROOT / "evals" / "datasets"
PARTS = DATASETS / "press-qa"
DISTRACTORS = DATASETS / "press-distractors.txt"
TYPES = ("who", "when", "where", "how_many", "how_much", "what", "which", "why", "list", "unanswerable")
KEYS = ("id", "question", "answers", "evidence", "release", "near", "type", "followup_of")
TUNE_SHARE = 0.27
"""Share of releases whose questions go to press-tune (by a hash of the file name)."""
TRAIN_ONLY_FROM = 19
"""Parts from this one on (round 4) go to press-train whole: press-tune (1,386 questions) stays
as it was, so every tuning run before and after is judged on the same questions and corpus."""
HELD_OUT_FROM = 37
"""Parts from this one on (round 7, 2026-12-06) go to ``press-unanswerable.jsonl``: unanswerable
questions written on press-tune's own releases, never fitted on, so the eval can say how often the
shipped default declines unanswerable questions it has not seen (press-tune's are the ones its
threshold was set on)."""
HELD_OUT = "press-unanswerable.jsonl"
PARTS_N = 6
"""Release lists a round of writing has (one writer each)."""
PER_PART = 75
ROUNDS = 6
"""Rounds written so far: 1 (2026-12-02, parts 1-6), 2 (2026-12-04, parts 7-12), 3 (2026-12-05,
parts 13-18), 4 (2026-12-05, parts 19-24), 5 (2026-12-05, parts 25-30) and 6 (2026-12-05, parts
31-36): more of the archive
for the reader to train on. A round draws on from where the last one stopped, so the earlier
lists stay as they were."""
SEED = 2026


@functools.lru_cache(maxsize=4096)
def release_text(name: str, archive: Path = ARCHIVE) -> str:
    from qa import read_file

    return read_file(archive / name)[0].text


def select(archive: Path = ARCHIVE, rounds: int = ROUNDS) -> None:
    """Seeded lists: 2,000 distractor releases (for the eval), then each part's releases, drawn
    from the rest in a seeded order and kept to releases with something to ask about (1,200 to
    20,000 characters of distinct text); ``rounds`` rounds of ``PARTS_N`` parts."""
    from qa import read_releases

    files = sorted(p.name for p in archive.glob("*.md"))
    kept = {Path(r.path).name for r in read_releases([archive]).releases}  # no empty or duplicate text
    rng = random.Random(SEED)
    distractors = sorted(rng.sample(files, 2000))
    DISTRACTORS.write_text("\n".join(distractors) + "\n")
    rest = sorted(set(files) - set(distractors))
    rng.shuffle(rest)
    picked: list[str] = []
    for name in rest:
        if name in kept and 1200 <= len(release_text(name, archive)) <= 20000:
            picked.append(name)
        if len(picked) == rounds * PARTS_N * PER_PART:
            break
    PARTS.mkdir(parents=True, exist_ok=True)
    for r in range(rounds):
        drawn = picked[r * PARTS_N * PER_PART : (r + 1) * PARTS_N * PER_PART]
        for k in range(PARTS_N):
            out = PARTS / f"part-{r * PARTS_N + k + 1}.releases.txt"
            out.write_text("\n".join(sorted(drawn[k::PARTS_N])) + "\n")


def show(name: str) -> None:
    text = release_text(Path(name).name)
    for i, line in enumerate(text.split("\n"), 1):
        print(f"{i:4d}  {line}")


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def check_rows(rows: list[dict], where: str, archive: Path = ARCHIVE) -> list[Problem]:
    """Every rule the data promises, checked on what the library reads."""
    out: list[Problem] = []
    seen: dict[str, dict] = {}
    for i, r in enumerate(rows, 1):
        at = f"{where}:{i}"
        if tuple(sorted(r)) != tuple(sorted(KEYS)):
            out.append(Problem(at, f"keys {sorted(r)} != {sorted(KEYS)}"))
            continue
        rid = r["id"]
        if not isinstance(rid, str) or rid in seen:
            out.append(Problem(at, f"id {rid!r} is missing or repeated"))
        if not isinstance(r["question"], str) or len(r["question"].strip()) < 8:
            out.append(Problem(at, f"question {r['question']!r} is too short"))
        if r["type"] not in TYPES:
            out.append(Problem(at, f"type {r['type']!r} not in {TYPES}"))
        fu = r["followup_of"]
        if fu is not None and fu not in seen:
            out.append(Problem(at, f"followup_of {fu!r} is not an earlier id of this file"))
        near = r["near"]
        if not isinstance(near, str) or not (archive / near).is_file():
            out.append(Problem(at, f"near {near!r} is not a file of the archive"))
        answers, ev, rel = r["answers"], r["evidence"], r["release"]
        if r["type"] == "unanswerable" or not answers:
            if answers or ev is not None or rel is not None or r["type"] != "unanswerable":
                out.append(Problem(at, "unanswerable rows have answers [], evidence and release null"))
        else:
            if rel is None or not (archive / rel).is_file():
                out.append(Problem(at, f"release {rel!r} is not a file of the archive"))
            elif not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
                out.append(Problem(at, "answers must be non-empty strings"))
            else:
                text = release_text(rel, archive)
                if not isinstance(ev, str) or ev not in text:
                    out.append(Problem(at, f"evidence not in the release text: {ev!r}"))
                elif answers[0] not in ev:
                    out.append(Problem(at, f"first answer {answers[0]!r} not in its evidence"))
                for a in answers:
                    if a not in text:
                        out.append(Problem(at, f"answer {a!r} not in the release text"))
                    if a != a.strip():
                        out.append(Problem(at, f"answer {a!r} has surrounding space"))
        if isinstance(rid, str):
            seen[rid] = r
    return out


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def dataset_files() -> list[Path]:
    """press-train, press-tune and the held-out unanswerable questions, in that order."""
    return [DATASETS / "press-train.jsonl", DATASETS / "press-tune.jsonl", DATASETS / HELD_OUT]


def check(paths: list[Path]) -> int:
    problems: list[Problem] = []
    ids: Counter[str] = Counter()
    for p in paths:
        rows = read_rows(p)
        problems += check_rows(rows, p.name)
        ids.update(r.get("id") for r in rows)
    problems += [Problem("all", f"id {k!r} used {n} times") for k, n in ids.items() if n > 1]
    for pr in problems:
        print(pr)
    print(f"{len(paths)} files, {sum(ids.values())} rows, {len(problems)} problems")
    return 1 if problems else 0


def in_tune(release: str) -> bool:
    h = int(hashlib.sha256(release.encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < TUNE_SHARE


def root_near(rows: list[dict]) -> dict[str, str]:
    """Each row's chain root's ``near``: a follow-up goes wherever its first question goes."""
    by_id = {r["id"]: r for r in rows}
    out: dict[str, str] = {}
    for r in rows:
        x = r
        while x["followup_of"] is not None:
            x = by_id[x["followup_of"]]
        out[r["id"]] = x["near"]
    return out


def part_of(row_id: str) -> int:
    """The part a row was written in, from its id (``pq19-001`` -> 19)."""
    head = row_id.split("-", 1)[0]
    if not head.startswith("pq") or not head[2:].isdigit():
        raise ValueError(f"row id {row_id!r} does not name its part (pqK-NNN)")
    return int(head[2:])


def goes_to_tune(row_id: str, root_near_name: str) -> bool:
    """Whether a row (its chain's first release ``root_near_name``) belongs in press-tune."""
    return part_of(row_id) < TRAIN_ONLY_FROM and in_tune(root_near_name)


def held_out(row_id: str) -> bool:
    """Whether a row belongs to the held-out unanswerable questions (round 7 on)."""
    return part_of(row_id) >= HELD_OUT_FROM


def split(parts: list[Path]) -> None:
    rows = [r for p in parts for r in read_rows(p)]
    roots = root_near(rows)
    out = [r for r in rows if held_out(r["id"])]
    rows = [r for r in rows if not held_out(r["id"])]
    train = [r for r in rows if not goes_to_tune(r["id"], roots[r["id"]])]
    tune = [r for r in rows if goes_to_tune(r["id"], roots[r["id"]])]
    for name, part in (("press-train.jsonl", train), ("press-tune.jsonl", tune), (HELD_OUT, out)):
        (DATASETS / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
        n_rel = len({r["near"] for r in part})
        kinds = Counter(r["type"] for r in part)
        print(f"{name}: {len(part)} questions over {n_rel} releases; {dict(kinds)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals.press_data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sel = sub.add_parser("select")
    sel.add_argument("--rounds", type=int, default=ROUNDS)
    s = sub.add_parser("show")
    s.add_argument("file")
    c = sub.add_parser("check")
    c.add_argument("paths", nargs="*", type=Path)
    sp = sub.add_parser("split")
    sp.add_argument("parts", nargs="+", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "select":
        select(rounds=a.rounds)
    elif a.cmd == "show":
        show(a.file)
    elif a.cmd == "check":
        return check(a.paths or dataset_files())
    else:
        split(a.parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
