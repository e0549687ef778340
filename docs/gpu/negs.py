"""Mined negatives <-> a compact transport form: a table of distinct passages + each row's indices.
Given the SQuAD train file (both ends have it), a passage that is a span of its article, as
``qa.evaluation.data.load_squad`` joins it, travels as [article, start, end] instead of its text.
usage: negs.py pack MINED OUT [SQUAD] | negs.py unpack IN OUT"""

import bisect
import json
import lzma
import sys

from qa.evaluation.data import load_squad
from qa.training.negatives import Mined, read_mined


def articles(path: str) -> list[str]:
    return [r.text for r in load_squad(path).releases]


if sys.argv[1] == "pack":
    mined = read_mined(sys.argv[2])
    table: dict[str, int] = {}
    rows = [[m.id, [table.setdefault(t, len(table)) for t in m.negatives]] for m in mined.values()]
    squad = sys.argv[4] if len(sys.argv) > 4 else None
    texts = articles(squad) if squad else []
    whole = "\0".join(texts)
    starts = [0]
    for t in texts:
        starts.append(starts[-1] + len(t) + 1)
    passages: list[str | list[int]] = []
    for p in table:
        at = whole.find(p) if texts else -1
        if at < 0:
            passages.append(p)
            continue
        a = bisect.bisect_right(starts, at) - 1
        s = at - starts[a]
        assert texts[a][s : s + len(p)] == p
        passages.append([a, s, s + len(p)])
    with lzma.open(sys.argv[3], "wt", preset=9) as f:
        json.dump({"squad": squad is not None, "passages": passages, "rows": rows}, f)
    spans = sum(isinstance(p, list) for p in passages)
    print(len(rows), "rows", len(table), "passages", spans, "as spans")
else:
    with lzma.open(sys.argv[2], "rt") as z:
        d = json.load(z)
    texts = articles(sys.argv[4]) if d.get("squad") else []
    p = [x if isinstance(x, str) else texts[x[0]][x[1] : x[2]] for x in d["passages"]]
    with open(sys.argv[3], "w") as f:
        for i, idx in d["rows"]:
            f.write(Mined(i, tuple(p[k] for k in idx)).to_json() + "\n")
    print(len(d["rows"]), "rows")
