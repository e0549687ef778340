"""Mined negatives <-> a compact transport form (a table of distinct passages + each row's indices)."""

import json
import lzma
import sys

from qa.training.negatives import Mined, read_mined

if sys.argv[1] == "pack":
    mined = read_mined(sys.argv[2])
    table: dict[str, int] = {}
    rows = [[m.id, [table.setdefault(t, len(table)) for t in m.negatives]] for m in mined.values()]
    with lzma.open(sys.argv[3], "wt", preset=9) as f:
        json.dump({"passages": list(table), "rows": rows}, f)
    print(len(rows), "rows", len(table), "passages")
else:
    with lzma.open(sys.argv[2], "rt") as z:
        d = json.load(z)
    p = d["passages"]
    with open(sys.argv[3], "w") as f:
        for i, idx in d["rows"]:
            f.write(Mined(i, tuple(p[k] for k in idx)).to_json() + "\n")
    print(len(d["rows"]), "rows")
