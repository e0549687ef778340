"""The benchmark's markdown report, from the JSON it writes beside it."""

from __future__ import annotations

from statistics import median
from typing import Any


def _f(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return f"{x:,.{nd}f}" if isinstance(x, int | float) else str(x)


def _ok(good: bool | None) -> str:
    return "–" if good is None else ("met" if good else "**not met**")


def _build_rates(b: dict[str, Any]) -> tuple[float, float, float]:
    """Build passages/s, raw encoder passages/s on the same texts, and on the passages alone."""
    n = b["passages"]
    return n / b["seconds"], n / b["raw_encoder_seconds_all_texts"], n / b["raw_encoder_seconds_passages"]


def _largest(q: dict[str, Any]) -> tuple[str, dict[str, Any]] | tuple[None, None]:
    if not q:
        return None, None
    label = list(q)[-1]
    return label, q[label]


def targets(r: dict[str, Any]) -> list[str]:
    rows = ["| target | measured | |", "|---|---|---|"]
    label, big = _largest(r.get("queries", {}))
    if big:
        ours = big["systems"]["ours"]
        p50 = ours["ms"]["e2e_ms"]["p50"]
        rows.append(f"| `ask` p50 at {label} passages <= 15 ms | {_f(p50)} ms | {_ok(p50 <= 15)} |")
        for peer in ("txtai", "haystack"):
            s = big["systems"].get(peer, {})
            if "ms" in s:
                ratio = s["ms"]["e2e_ms"]["p50"] / p50
                rows.append(
                    f"| >= 3x faster than {peer} dense retrieval alone ({label}) | {_f(ratio, 2)}x "
                    f"({_f(s['ms']['e2e_ms']['p50'])} ms) | {_ok(ratio >= 3)} |"
                )
        cold = ours["ready"]["cold"]
        cs = cold["imports_s"] + cold["load_index_s"] + cold["load_model_s"]
        rows.append(
            f"| cold start (imports + load index + model) <= 5 s at {label} | {_f(cs, 2)} s "
            f"| {_ok(cs <= 5)} |"
        )
        rss = ours.get("peak_rss_mb")
        if rss is not None:
            rows.append(f"| peak RSS <= 1.5 GB at {label} | {_f(rss / 1024, 2)} GB | {_ok(rss <= 1536)} |")
        add = big.get("add_one_release", {})
        if "add_s" in add:
            rows.append(
                f"| add one release to the {label} index <= 1 s, no rebuild | "
                f"{_f(add['add_s'], 2)} s in memory"
                + (
                    f" (the first add {_f(add['first_add_s'], 2)} s: loads spaCy)"
                    if "first_add_s" in add
                    else ""
                )
                + f"; +{_f(add['save_full_snapshot_s'], 1)} s to save a snapshot | {_ok(add['add_s'] <= 1)} "
                f"(in memory) |"
            )
    base = r.get("base_build")
    if base and "raw_encoder_seconds_all_texts" in base:
        b, raw, _ = _build_rates(base)
        rows.append(
            f"| index build >= 0.9x raw encoder (same texts, {base['passages']} passages) | "
            f"{_f(b / raw, 2)}x ({_f(b)} vs {_f(raw)} passages/s) | {_ok(b / raw >= 0.9)} |"
        )
    neural = big["systems"].get("ours-neural", {}) if big else {}
    if "ms" in neural:
        n50 = neural["ms"]["e2e_ms"]["p50"]
        rows.append(
            f"| `ask` p50 with the neural reader <= 60 ms at {label} | {_f(n50)} ms "
            f"(reader stage {_f(neural['ms']['answer']['p50'])} ms) | {_ok(n50 <= 60)} |"
        )
    hr = big["systems"].get("haystack-reader", {}) if big else {}
    if "ms" in neural and "ms" in hr:
        n50, h50 = neural["ms"]["e2e_ms"]["p50"], hr["ms"]["e2e_ms"]["p50"]
        rows.append(
            f"| >= 3x faster than Haystack's ExtractiveReader pipeline, same reader weights ({label}) "
            f"| {_f(h50 / n50, 2)}x ({_f(h50)} ms: dense top 3 + reader) | {_ok(h50 / n50 >= 3)} |"
        )
        alone = big.get("reader_alone", {}).get("haystack_read_ms")
        if alone:
            ours_read = neural["ms"]["answer"]["p50"]
            rows.append(
                f"| the reader alone on the same passages: Haystack / ours ({label}) "
                f"| {_f(alone['p50'] / ours_read, 2)}x ({_f(alone['p50'])} vs {_f(ours_read)} ms) "
                f"| {_ok(alone['p50'] / ours_read >= 3)} |"
            )
    elif "ms" in neural:
        rows.append(
            "| 3x faster than Haystack's ExtractiveReader on the same reader weights "
            f"| not run at {label} ({hr.get('error', 'peer skipped')[:60]}) | – |"
        )
    return rows


def queries(r: dict[str, Any]) -> list[str]:
    out = []
    for label, res in r.get("queries", {}).items():
        ours = res["systems"]["ours"]
        o50 = ours["ms"]["e2e_ms"]["p50"]
        out += [
            f"### {label} passages ({_f(ours['ready']['passages'], 0)} passages, "
            f"{_f(ours['ready']['sentences'], 0)} sentences)",
            "",
            "| system | what runs per question | p50 ms | p95 ms | p50 / ours | peak RSS MB | build |",
            "|---|---|---|---|---|---|---|",
        ]
        what = {
            "ours": "`Assistant.ask`: encode, hybrid BM25 + dense search, feature answerer",
            "ours-neural": "`Assistant.ask` with the neural reader (the top passages its calibration names)",
            "ours-neural-fp32": "the same, the reader's float ONNX model",
            "ours-neural-int8": "the same, the reader quantized to int8",
            "ours-neural-beside": "the same, the reader in `--beside` (e.g. the teacher), its calibration",
            "bm25s": "bm25s top-10 alone",
            "txtai": "txtai `search` (dense, faiss)",
            "haystack": "Haystack text embedder -> in-memory embedding retriever",
            "haystack-reader": "the same, top 3 -> Haystack's extractive reader on our reader's weights",
        }
        for name, s in res["systems"].items():
            if "ms" not in s:
                out.append(f"| {name} | {what.get(name, '')} | failed: {s.get('error', '?')[:80]} | | | | |")
                continue
            p = s["ms"]["e2e_ms"]
            ready = s["ready"]
            build = ""
            if ready.get("build_s") is not None:
                embedded = "embedded by peer" if ready.get("embedded_by_peer") else "vectors given"
                build = f"{_f(ready['build_s'])} s ({embedded})"
                if ready.get("faiss_description"):
                    build += f"; {ready['faiss_description']}"
            out.append(
                f"| {name} | {what.get(name, '')} | {_f(p['p50'], 2)} | {_f(p['p95'], 2)} | "
                f"{_f(p['p50'] / o50, 2)} | {_f(s.get('peak_rss_mb'), 0)} | {build} |"
            )
        out.append("")
    return out


def stages(r: dict[str, Any]) -> list[str]:
    out = [
        "| size | reader | encode p50 / p95 | search p50 / p95 | answer p50 / p95 | ask p50 / p95 "
        "| answered |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, res in r.get("queries", {}).items():
        for name in ("ours", *(n for n in res["systems"] if n.startswith("ours-neural"))):
            if "ms" not in res["systems"].get(name, {}):
                continue
            ms = res["systems"][name]["ms"]
            cells = [
                f"{_f(ms[k]['p50'], 2)} / {_f(ms[k]['p95'], 2)}"
                for k in ("encode", "search", "answer", "e2e_ms")
            ]
            answered = res["systems"][name].get("answered")
            reader = res["systems"][name]["ready"].get("reader") or (
                "features" if name == "ours" else "neural"
            )
            out.append(
                f"| {label} | {reader} | "
                + " | ".join(cells)
                + f" | {answered} of {r['questions']['n']} per round |"
            )
    return out


def reader_split(r: dict[str, Any]) -> list[str]:
    """The neural answerer's time per question by stage (issue 16): p50 / p95 ms."""
    keys = ("tokenize", "onnx", "spans", "calibrate", "answer", "e2e_ms")
    out = [
        "| size | system (reader/precision) | tokenize | ONNX | span search | calibration "
        "| answer stage | ask |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, res in r.get("queries", {}).items():
        for name, sys_ in res["systems"].items():
            ms = sys_.get("ms", {})
            if "onnx" not in ms:
                continue
            cells = [f"{_f(ms[k]['p50'], 1)} / {_f(ms[k]['p95'], 1)}" if k in ms else "–" for k in keys]
            out.append(f"| {label} | {name} ({sys_['ready'].get('reader')}) | " + " | ".join(cells) + " |")
    return out if len(out) > 2 else []


def cold(r: dict[str, Any]) -> list[str]:
    out = [
        "| size | imports s | load index s | load model s | first ask s (builds BM25) "
        "| process to first answer s | RSS after load MB | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, res in r.get("queries", {}).items():
        o = res["systems"]["ours"]
        c = o["ready"]["cold"]
        out.append(
            f"| {label} | {_f(c['imports_s'], 2)} | {_f(c['load_index_s'], 2)} | "
            f"{_f(c['load_model_s'], 2)} | "
            f"{_f(c['first_ask_s'], 2)} | {_f(c['process_to_first_answer_s'], 2)} | "
            f"{_f(o['ready'].get('rss_after_load_mb'), 0)} | {_f(o.get('peak_rss_mb'), 0)} |"
        )
    return out


def build(r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    base = r.get("base_build")
    if base and "stages" in base:
        b, raw_all, raw_p = _build_rates(base)
        out += [
            f"Base corpus ({base['releases']} releases, {base['passages']} passages, {base['sentences']} "
            f"sentences; built {base.get('built_at', '?')} with {base.get('encoder', '?')}, cached since): "
            f"{_f(base['seconds'])} s, **{_f(b, 2)} passages/s**. The encoder alone on the same "
            f"{base['texts_embedded']} texts (passages and sentences, as the index embeds them): "
            f"{_f(raw_all, 2)} passages/s, so the build runs at **{_f(b / raw_all, 2)}x** the encoder; "
            f"on the passages alone the encoder does {_f(raw_p, 2)} passages/s.",
            "",
            "| stage | seconds | share |",
            "|---|---|---|",
        ]
        for name, s in sorted(base["stages"].items(), key=lambda x: -x[1]):
            out.append(f"| {name} | {_f(s, 2)} | {_f(100 * s / base['seconds'], 1)}% |")
        out.append("")
    bb = r.get("build")
    if bb:
        out += [
            f"Same build on {bb['releases']} us-gov-cyber releases, each backend {bb['rounds']} time(s), "
            "interleaved (medians):",
            "",
            "| encoder | build passages/s | encoder alone, same texts | ratio "
            "| encoder alone, passages only |",
            "|---|---|---|---|---|",
        ]
        for backend, runs in bb["runs"].items():
            rates = [_build_rates(x) for x in runs]
            b = median(x[0] for x in rates)
            raw = median(x[1] for x in rates)
            out.append(
                f"| {backend} | {_f(b, 2)} | {_f(raw, 2)} | {_f(median(x[0] / x[1] for x in rates), 2)}x | "
                f"{_f(median(x[2] for x in rates), 2)} |"
            )
        out.append("")
    return out


def encoder(r: dict[str, Any]) -> list[str]:
    e = r.get("encoder")
    if not e:
        return []
    rows = [
        f"{e['texts_compared']} real texts: cosine ONNX vs torch min {e['cosine_min']:.6f}, mean "
        f"{e['cosine_mean']:.6f}. {e['passages']} passages per batch, {e['questions']} single questions, "
        f"{e['rounds']} interleaved round(s).",
        "",
        "| | torch | ONNX Runtime | gain |",
        "|---|---|---|---|",
        f"| batch passages/s (p50) | {_f(e['passages_per_s']['torch']['p50'], 2)} | "
        f"{_f(e['passages_per_s']['onnx']['p50'], 2)} | {_f(e['throughput_ratio']['p50'], 2)}x |",
        f"| one question, ms p50 | {_f(e['query_encode_ms']['torch']['p50'], 2)} | "
        f"{_f(e['query_encode_ms']['onnx']['p50'], 2)} | {_f(e['query_ratio'], 2)}x |",
        f"| one question, ms p95 | {_f(e['query_encode_ms']['torch']['p95'], 2)} | "
        f"{_f(e['query_encode_ms']['onnx']['p95'], 2)} | |",
        f"| cold start: import, load, first vector, s (p50) | {_f(e['cold_start_s']['torch']['p50'], 2)} | "
        f"{_f(e['cold_start_s']['onnx']['p50'], 2)} | "
        f"{_f(e['cold_start_s']['torch']['p50'] / e['cold_start_s']['onnx']['p50'], 2)}x |",
    ]
    return rows


def ann(r: dict[str, Any]) -> list[str]:
    out = [
        "| size | vectors | flat p50 / p95 ms | flat, 1 OpenMP thread | HNSW build s | "
        "HNSW ef=32 p50 ms, recall@10 | ef=64 | ef=128 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [(label, "", res["ann"]) for label, res in r.get("queries", {}).items() if res.get("ann")]
    rows += [
        (label, " near-dup.", res["ann_near_duplicates"])
        for label, res in r.get("queries", {}).items()
        if res.get("ann_near_duplicates")
    ]
    for label, tag, a in rows:
        cells = [f"{_f(h['ms']['p50'], 3)}, {h['recall_at_10']:.3f}" for h in a["hnsw"].values()]
        out.append(
            f"| {label}{tag} | {_f(a['n'], 0)} | "
            f"{_f(a['flat_ms']['p50'], 3)} / {_f(a['flat_ms']['p95'], 3)} | "
            f"{_f(a['flat_1_thread_ms']['p50'], 3)} / {_f(a['flat_1_thread_ms']['p95'], 3)} | "
            f"{_f(a['hnsw_build_s'], 1)} | " + " | ".join(cells) + " |"
        )
    return out


def ivf(r: dict[str, Any]) -> list[str]:
    out = [
        "| size | vectors | what | IVF lists | train s | nprobe: p50 ms, recall@10 |",
        "|---|---|---|---|---|---|",
    ]
    for label, res in r.get("queries", {}).items():
        for key, what in (
            ("ann", "passages"),
            ("ann_near_duplicates", "passages, near-dup."),
            ("ivf_sentences", "sentences"),
            ("ivf_sentences_near_duplicates", "sentences, near-dup."),
        ):
            v = res.get(key) or {}
            v = v.get("ivf", v) if key.startswith("ann") else v
            if "runs" not in v:
                continue
            cells = ", ".join(
                f"{n}{' (shipped)' if int(n) == v['nprobe'] else ''}: {_f(x['ms']['p50'], 2)}, "
                f"{x['recall_at_10']:.3f}"
                for n, x in v["runs"].items()
            )
            out.append(
                f"| {label} | {_f(v['n'], 0)} | {what} | {v['nlist']} | {_f(v['train_s'], 1)} | {cells} |"
            )
    return out if len(out) > 2 else []


def adds(r: dict[str, Any]) -> list[str]:
    out = [
        "| size | first add s | next add (chunk, embed, insert) s "
        "| ask right after s | save a full snapshot s | found |",
        "|---|---|---|---|---|---|",
    ]
    for label, res in r.get("queries", {}).items():
        a = res.get("add_one_release", {})
        if "add_s" in a:
            first = _f(a["first_add_s"], 2) if "first_add_s" in a else "–"
            out.append(
                f"| {label} | {first} | {_f(a['add_s'], 2)} | {_f(a['ask_after_add_s'], 3)} | "
                f"{_f(a['save_full_snapshot_s'], 2)} | {a['found_new']} |"
            )
    return out


def _probes(b: dict[str, Any]) -> str:
    """The bare encoder's two estimates, where the build report has them (timed before and after)."""
    if "bare_encoder_before_s" not in b:
        return ""
    before, after = b["bare_encoder_before_s"] / 60, b["bare_encoder_after_s"] / 60
    steal = (
        f"; the host took {b['steal_share']['build']:.0%} of the CPU during the build"
        if "steal_share" in b
        else ""
    )
    return f" (timed before the build: {before:.1f}, after: {after:.1f}{steal})"


def real(r: dict[str, Any]) -> list[str]:
    """The real archive: its build (evals/bench_archive.py, same run) and every system over it."""
    if not r.get("real"):
        return []
    sub = {"queries": r["real"], "questions": r.get("real_questions", r["questions"])}
    out = ["## The real archive", ""]
    b = r.get("real_build")
    if b:
        out += [
            f"Built by `release-qa index` (`evals/bench_archive.py`, encoder {b['encoder']}): "
            f"{b['releases']:,} releases, {b['passages']:,} passages, {b['sentences']:,} sentences in "
            f"{b['build_s'] / 60:.1f} min ({b['passages_per_s']:.1f} passages/s); the bare encoder on the "
            f"same texts {b['bare_encoder_s'] / 60:.1f} min{_probes(b)}: build throughput "
            f"{b['ratio']:.2f}x the bare encoder's. Load average {b['load_before'][0]:.1f} before the build. "
            f"{b.get('note', '')}",
            "",
        ]
    out += [
        f"Questions: {sub['questions']['n']} press-train questions (wh-briefings releases), top 10. "
        "The peers search our passage vectors with the float model's question vectors.",
        "",
        *queries(sub),
        "",
        *stages(sub),
        "",
        *reader_split(sub),
        "",
        *cold(sub),
        "",
        *adds(sub),
        "",
    ]
    return out


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# release-qa: speed and scale benchmark",
        "",
        f"Run {r['started']}{' (--quick)' if r['quick'] else ''}, {m['cpus']} CPU cores shared with other "
        f"work (load average {m['load_before'][0]:.1f} before, {m.get('load_after', [float('nan')])[0]:.1f} "
        f"after), Python {m['python']}, faiss {m['faiss']}; {_f(r.get('seconds'), 0)} s in all. Systems are "
        f"interleaved round by round; figures are medians (p50) and 95th percentiles over "
        f"{r['questions']['n']} questions x rounds. Absolute times on a loaded machine swing widely: "
        "read the ratios measured in the same run.",
        "",
        "Rerun: `make bench` (or `python -m evals.bench --out DIR [--quick]`).",
        "",
        "## Targets (issue 7)",
        "",
        *targets(r),
        "",
        *real(r),
    ]
    if not r.get("queries"):  # `--real-only`: the real archive alone
        return "\n".join(lines)
    lines += [
        "## Query latency beside the peers",
        "",
        "Same passages (title + passage text, as our dense index embeds them), same questions (press-dev "
        "questions and SQuAD questions, alternating), top 10. Ours answers; the peers only retrieve.",
        "",
        *queries(r),
        "## Ours per stage (ms)",
        "",
        *stages(r),
        "",
        "The neural answerer's stage split (p50 / p95 ms; calibration = the answer stage less the "
        "reader's three):",
        "",
        *reader_split(r),
        "",
        "## Cold start and memory (ours)",
        "",
        *cold(r),
        "",
        "## Index build against the raw encoder",
        "",
        *build(r),
        "## Lever 1: the encoder through ONNX Runtime",
        "",
        *encoder(r),
        "",
        "## Lever 2: flat against HNSW and IVF (IVF adopted from 50,000 vectors)",
        "",
        "Passage vectors of each index, question vectors as queries, one question at a time. Recall@10 "
        "counts ties with the exact 10th score as hits (republished copies share vectors). Rows marked "
        "near-dup. nudge each copy's vector (cosine ~0.98 to its original, `bench_ann.near_duplicates`): "
        "exact duplicates by the hundred break HNSW's graph, near-duplicates are what a real archive holds.",
        "",
        *ann(r),
        "",
        "IVF, as the index builds it from `qa.index.IVF_FROM` vectors (`qa.index.sized`): recall@10 "
        "against exact search, ties counted, at the shipped nprobe and below it.",
        "",
        *ivf(r),
        "",
        "## Adding one release (no rebuild)",
        "",
        *adds(r),
        "",
        "## How the corpora are made",
        "",
        "1k: the seed release, the 89 us-gov-cyber releases and SQuAD dev contexts (two paragraphs of one "
        "article per release) up to 1,000 passages, indexed by the real pipeline (`update_index`). "
        "10k and 100k: those releases republished (`evals/bench_corpus.py`): each copy has its own date, "
        "source, path and a trailing reference line, so it is a distinct release, while title and "
        "passages keep their text, model vectors and annotations (copied: embedding 100k passages on "
        "these shared cores would take hours). Everything is cached under `.bench/` (gitignored).",
        "",
    ]
    return "\n".join(lines)
