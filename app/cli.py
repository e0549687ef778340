"""The ``release-qa`` command line: index, ask, serve (and eval, when installed)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parser stays light: the training stack loads only when a command runs
    from qa.training.shared_norm import SharedNormConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_INDEX = "embeddings/default"
DEFAULT_TRAIN = "../shared/train/squad-v1.1-train.json.gz"
"""SQuAD v1.1 train, where this repository's checkout finds it (beside it, in shared/)."""


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {value!r}")
    return n


def _add_reader(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reader",
        choices=("auto", "neural", "features"),
        default=None,
        help="neural: the trained reader; features: the feature-based answerer; "
        "auto (default, or $RELEASE_QA_READER): neural when installed",
    )


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="date_from", type=_date, help="only releases on or after this date")
    p.add_argument("--to", dest="date_to", type=_date, help="only releases on or before this date")
    p.add_argument("--source", action="append", help="only releases from this source (repeatable)")


def cmd_index(args: argparse.Namespace) -> int:
    from qa import ChunkerSettings, HashingEmbedder, update_index
    from qa.embedding import SentenceTransformerEmbedder

    settings = ChunkerSettings(max_tokens=args.max_tokens)
    test_mode = args.embedder == "hashing"  # tests: no model and no spaCy, seconds faster
    encoder = None if args.encoder is None else SentenceTransformerEmbedder(backend=args.encoder)
    build = dict(
        embedder=HashingEmbedder() if test_mode else encoder,
        chunker=ChunkerSettings(max_tokens=args.max_tokens, annotator=None) if test_mode else settings,
        strict=args.strict,
        progress=not args.quiet,
        compress=args.pq,
        annotate=args.annotate,
    )
    if args.ray is None:
        report = update_index(args.index, args.paths, **build)
    else:
        from qa.index.ray_build import RayBuild  # the only place Ray is imported

        with RayBuild(args.ray or None, workers=args.ray_workers) as workers:
            report = update_index(args.index, args.paths, workers=workers, **build)
    for s in report.skipped:
        print(f"skipped {s}", file=sys.stderr)
    state = "up to date" if report.up_to_date else ("rebuilt" if report.rebuilt else "updated")
    print(
        f"{report.path}: {state}; {report.releases} releases read, {len(report.skipped)} skipped, "
        f"{report.added} added, {report.removed} removed; {report.passages} passages, "
        f"{report.sentences} sentences; {report.seconds:.1f} s"
    )
    for table, recall in report.recall.items():
        print(f"{table} stored as IVF-PQ codes: recall@10 against exact search {recall:.3f}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from qa import Assistant, Filters
    from qa.serialize import answer_to_dict

    assistant = Assistant.load(args.index, reader=args.reader)
    filters = Filters(args.date_from, args.date_to, tuple(args.source) if args.source else None)
    answer = assistant.ask(args.question, k=args.k, filters=filters)
    if args.json:
        print(json.dumps(answer_to_dict(answer), ensure_ascii=False, indent=2))
        return 0
    if answer.text is None or answer.citation is None:
        print("The releases I have don't answer this.")
        for h in answer.hits[:3]:
            print(f"  closest: {h.release.title} [{h.release.path}] ({h.score:.2f})")
        return 0
    c = answer.citation
    print(f"“{answer.text}”")
    if answer.sentence and answer.sentence != answer.text:
        print(f"  in: “{answer.sentence}”")
    print()
    print(f"— {c.title}")
    print(f"  date: {c.date.isoformat() if c.date else 'unknown'}; source: {c.source or 'unknown'}")
    if c.url:
        print(f"  url: {c.url}")
    print(f"  file: {c.path}, characters {c.start}-{c.end}")
    print(f"  score {answer.score:.2f}: {answer.confidence} confidence")
    if answer.alternatives:
        label = "other candidates to check" if answer.confidence == "low" else "also answered by"
        print(f"  {label}:")
        texts = {h.release.id: h.release.text for h in answer.hits}
        for a in answer.alternatives:
            quote = texts.get(a.release_id, "")[a.start : a.end]
            print(f"    “{quote}” — {a.title} [{a.path}]" if quote else f"    {a.title} [{a.path}]")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from app.chat import AUTH_ENV, parse_auth, serve

    if args.reader is not None:
        os.environ["RELEASE_QA_READER"] = args.reader
    auth = parse_auth(args.auth if args.auth is not None else os.environ.get(AUTH_ENV))
    serve(args.index, host=args.host, port=args.port, auth=auth, insecure_no_auth=args.insecure_no_auth)
    return 0


def cmd_train_answerer(args: argparse.Namespace) -> int:
    from qa.training.answerer import TrainSettings, train_answerer

    settings = TrainSettings(
        articles=args.articles,
        questions=args.questions,
        seed=args.seed,
        model=args.model,
        trees=args.trees,
        span_target=args.span_target,
    )
    from qa.answer.feature_answerer import MODEL_PATH

    out = args.out if args.out is not None else MODEL_PATH
    payload = train_answerer(out, data=args.data, settings=settings, cache=args.cache)
    print(json.dumps({"out": str(out), "threshold": payload["threshold"], **payload["metrics"]}, indent=2))
    return 0


def cmd_train_reader(args: argparse.Namespace) -> int:
    from qa.training.reader import ReaderTrainConfig, train_reader

    cfg = ReaderTrainConfig(
        train=args.data,
        dev=args.dev or None,
        base=args.base,
        out=args.out,
        max_length=args.max_length,
        stride=args.stride,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=args.epochs,
        max_examples=args.max_examples,
        max_minutes=args.max_minutes,
        checkpoint_minutes=args.checkpoint_minutes,
        dev_questions=args.dev_questions,
        seed=args.seed,
        threads=args.threads,
        skip_windows=args.skip_windows,
    )
    meta = train_reader(cfg)
    print(json.dumps({k: meta[k] for k in ("steps", "windows_seen", "seconds", "history")}, indent=2))
    return 0


def cmd_mine_negatives(args: argparse.Namespace) -> int:
    from qa.embedding import SentenceTransformerEmbedder
    from qa.training.negatives import mine_squad

    n = mine_squad(
        args.data,
        args.out,
        args.cache,
        SentenceTransformerEmbedder(),
        questions=args.questions,
        seed=args.seed,
        progress=True,
    )
    print(f"mined negatives for {n} questions into {args.out}")
    return 0


def cmd_mine_press(args: argparse.Namespace) -> int:
    from qa.embedding import SentenceTransformerEmbedder
    from qa.training.negatives import mine_press

    with open(args.rows, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    n = mine_press(rows, args.archive, args.out, args.cache, SentenceTransformerEmbedder())
    print(f"mined {n} of {len(rows)} press rows into {args.out}")
    return 0


def cmd_mine_headers(args: argparse.Namespace) -> int:
    from qa.training.headers import cached_index_roots, index_headers, squad_headers, write_headers

    caches = args.cache or ["checkpoints/negatives-index", "checkpoints/press-index"]
    roots = [r for c in caches for r in cached_index_roots(c)]
    if not roots:
        raise SystemExit(f"no index under {caches!r}: run mine-negatives and mine-press first")
    n = write_headers([squad_headers(args.data), *(index_headers(r) for r in roots)], args.out)
    print(f"wrote the headers of {n:,} passages ({len(roots)} indexes) into {args.out}")
    return 0


def cmd_train_open_reader(args: argparse.Namespace) -> int:
    from qa.training.shared_norm import train

    meta = train(open_reader_config(args), resume=args.resume)
    print(json.dumps({k: meta[k] for k in ("state", "seconds", "history", "done")}, indent=2))
    return 0


def open_reader_config(args: argparse.Namespace) -> SharedNormConfig:
    """The run ``train-open-reader``'s options ask for (validated by the config)."""
    from qa.training.shared_norm import SharedNormConfig

    return SharedNormConfig(
        train=args.data,
        negatives=args.negatives,
        out=args.out,
        base=args.base,
        dev=args.dev or None,
        press=args.press,
        press_negatives=args.press_negatives,
        press_answer=args.press_answer,
        lr=args.lr,
        target_windows=args.target_windows,
        max_minutes=args.max_minutes,
        decay_by_time=args.decay_by_time,
        checkpoint_minutes=args.checkpoint_minutes,
        seed=args.seed,
        threads=args.threads,
        groups_per_batch=args.groups_per_batch,
        precision=args.precision,
        teacher=args.teacher,
        layers=_layers(args.layers),
        distill_weight=args.distill_weight,
        distill_groups=args.distill_groups,
        temperature=args.temperature,
        press_every=args.press_every,
        freeze_word_embeddings=args.freeze_word_embeddings,
        headers=args.headers,
    )


def _layers(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(x) for x in value.split(","))
    except ValueError:
        raise SystemExit(f"release-qa: --layers takes comma-separated layer numbers, got {value!r}") from None


def cmd_export_reader(args: argparse.Namespace) -> int:
    from qa.answer.span_reader import READER_PATH
    from qa.training.export import export_reader

    out = args.out if args.out is not None else READER_PATH
    note = None
    if args.card_note is not None:
        if not Path(args.card_note).is_file():
            raise SystemExit(f"--card-note {args.card_note!r}: no such file")
        note = Path(args.card_note).read_text(encoding="utf-8")
    print(export_reader(args.checkpoint, out, blend=args.blend, weight=args.weight, note=note))
    return 0


def release_names(path: str | os.PathLike[str]) -> list[str]:
    """The release file names a list names: one per line in a text file, or a QA JSONL's
    ``near`` and ``release`` fields."""
    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"{p}: no such file (a list of release names, or QA rows in JSONL)")
    text = p.read_text(encoding="utf-8")
    if p.suffix != ".jsonl":
        return sorted({x.strip() for x in text.splitlines() if x.strip()})
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return sorted({str(r[k]) for r in rows for k in ("near", "release") if r.get(k)})


def cmd_train_reranker(args: argparse.Namespace) -> int:
    import random

    from qa.assistant import Assistant
    from qa.embedding import SentenceTransformerEmbedder
    from qa.evaluation.data import load_jsonl, load_squad, sample
    from qa.ingest.releases import read_releases
    from qa.retrieval.rerank import RERANKER_PATH, Reranker
    from qa.training.negatives import retrieval_index
    from qa.training.rerank import collect, distractors, fit, recall

    emb = SentenceTransformerEmbedder()
    names = release_names(args.press)
    archive = Path(args.archive)
    press = load_jsonl(args.press, [archive / n for n in names], "press-train")
    extra: list[str] = []
    if args.press_distractors:
        extra = distractors(
            [p.name for p in archive.iterdir() if p.is_file()],
            args.press_distractors,
            seed=args.seed,
            exclude={*names, *(n for path in args.exclude for n in release_names(path))},
        )
        print(f"press: {len(extra)} releases of {archive} added to the index as distractors")
    squad = sample(load_squad(args.squad), args.squad_questions, seed=args.seed)
    ranked = []
    for eval_set, source, cache in ((press, "press", args.press_cache), (squad, "squad", args.squad_cache)):
        releases = list(eval_set.releases)
        if source == "press" and extra:
            seen = {r.id for r in releases}  # the archive repeats a few texts under two names
            releases += [r for r in read_releases([archive / n for n in extra]).releases if r.id not in seen]
        index = retrieval_index(releases, emb, cache)
        got = collect(Assistant(index, emb, reader="features"), eval_set, source, depth=args.depth)
        print(f"{source}: {len(got)} answerable questions")
        ranked += got
    order = list(range(len(ranked)))
    random.Random(args.seed).shuffle(order)
    held = set(order[: len(order) // 5])
    model = fit([r for i, r in enumerate(ranked) if i not in held], seed=args.seed)
    held_out: dict[str, object] = {}
    for source in ("press", "squad"):
        rows = [r for i, r in enumerate(ranked) if i in held and r.source == source]
        held_out[source] = {
            "questions": len(rows),
            **{f"fused_r@{k}": round(recall(rows, None, k), 4) for k in (1, 3)},
            **{f"reranked_r@{k}": round(recall(rows, model, k), 4) for k in (1, 3)},
        }
        print(f"held out, {source}: {held_out[source]}")
    model = fit(ranked, seed=args.seed)  # the shipped model reads every question
    out = Reranker(model, args.depth).save(
        args.out or RERANKER_PATH,
        encoder=emb.name,
        trained_on={s: sum(r.source == s for r in ranked) for s in ("press", "squad")},
        held_out=held_out,
        command=" ".join(
            ["release-qa train-reranker"]
            + ([f"--seed {args.seed}"] if args.seed else [])
            + ([f"--press-distractors {args.press_distractors}"] if args.press_distractors else [])
            + [f"--exclude {x}" for x in args.exclude]
        ),
    )
    print(f"wrote {out}")
    return 0


def cmd_train_prior(args: argparse.Namespace) -> int:
    from qa.answer.prior import PRIOR_PATH
    from qa.training.prior import train_prior

    prior = train_prior(args.press, args.archive, bits=args.bits, c=args.c)
    out = prior.save(args.out if args.out is not None else PRIOR_PATH)
    info = prior.info or {}
    print(
        f"wrote {out}: {info.get('sentences')} sentences of {info.get('releases')} releases, "
        f"{info.get('answer_sentences')} hold answers; held-out AUC {info.get('held_out_auc')} "
        f"({info.get('held_out_releases')} releases kept out of a first fit)"
    )
    return 0


CALIBRATION_PLACES = ("archive", "squad", "cache", "collected", "out")
"""calibrate-reader's flags that say where things are on one machine, not what is fitted."""


def settings_command(prog: str, args: dict[str, Any], defaults: dict[str, Any], places: Sequence[str]) -> str:
    """The call that repeats a run anywhere: its flags that differ from their defaults, without
    the ones naming this machine's paths and caches (a shipped file records it)."""
    skip = {"func", "command", *places}
    flags = [
        f"--{k.replace('_', '-')} {v}"
        for k, v in args.items()
        if k not in skip and k in defaults and v != defaults[k]
    ]
    return " ".join([prog, *flags])


def calibration_recipe(args: argparse.Namespace, shipped: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The features and selection features to fit, with ``args.passages`` and
    ``args.select_features`` filled in so the recorded command says them. Unset: the shipped
    calibration's, or after export-reader (which drops it) the project's recipe."""
    from app.eval_cli import comma_list
    from qa.answer.neural import READ_PASSAGES, RECIPE, SELECT_RECIPE, Calibration

    before = Calibration.load(shipped) if shipped.is_file() else None
    if args.features is not None:
        features = comma_list(args.features)
    else:
        features = before.features if before is not None else RECIPE
    if args.select_features is not None:
        select = comma_list(args.select_features)
    else:
        select = before.select_features if before is not None else SELECT_RECIPE
        args.select_features = ",".join(select)
    if args.passages is None:
        args.passages = before.passages if before is not None else READ_PASSAGES
    if args.passages < 1:
        raise SystemExit(f"release-qa: --passages must be >= 1, got {args.passages!r}")
    return features, select


def cmd_calibrate_reader(args: argparse.Namespace) -> int:
    from app.eval_cli import DEFAULT_CACHE
    from qa.embedding import SentenceTransformerEmbedder
    from qa.evaluation.data import article_half, load_jsonl, load_squad, sample
    from qa.training.calibrate import TUNING_HALF, calibrate, write

    press_files = set(release_names(args.press)) | set(release_names(args.press_corpus))
    archive = Path(args.archive)
    press = load_jsonl(args.press, [archive / name for name in sorted(press_files)], "press-tune")
    squad = sample(article_half(load_squad(args.squad), TUNING_HALF), args.limit)
    from qa.answer.span_reader import READER_PATH

    shipped = READER_PATH / "calibration.json"
    features, select = calibration_recipe(args, shipped)
    result = calibrate(
        [(press, "press"), (squad, "squad")],
        args.cache or os.environ.get("RELEASE_QA_EVAL_CACHE") or DEFAULT_CACHE,
        SentenceTransformerEmbedder(),
        features=features,
        select_features=select,
        passages=args.passages,
        precision=args.precision,
        progress=True,
        collected=args.collected,
        max_declined=args.max_declined,
        confidence=args.confidence,
        min_unanswerable_declined=args.min_unanswerable_declined,
        unanswerable_confidence=args.unanswerable_confidence,
    )
    defaults = vars(build_parser().parse_args(["calibrate-reader"]))
    command = settings_command("release-qa calibrate-reader", vars(args), defaults, CALIBRATION_PLACES)
    out = write(result, args.out or shipped, command)
    d = result.decision
    print(f"wrote {out}")
    print(f"threshold {d.threshold:.3f} (set by the {d.limited_by} bound), confident from {d.confident:.3f}")
    print(
        f"press-tune: answerable declined {d.answerable_declined:.1%}, unanswerable declined "
        f"{d.unanswerable_declined:.1%}, answerable answered right {d.answered_right:.1%}, ECE {d.ece:.3f} "
        f"(held out: {result.held_out_ece:.3f})"
    )
    print("ablation (refitted without one feature, same rule):")
    print("| calibration | answerable declined | unanswerable declined | answered right | ECE |")
    print("|---|---|---|---|---|")
    for name, x in (("all features", d), *result.ablation):
        print(
            f"| {name} | {x.answerable_declined:.1%} | {x.unanswerable_declined:.1%} "
            f"| {x.answered_right:.1%} | {x.ece:.3f} |"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="release-qa", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and decisions")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update an index of releases")
    p.add_argument("paths", nargs="+", help="files or folders of releases")
    p.add_argument("--index", default=DEFAULT_INDEX, help=f"index folder (default {DEFAULT_INDEX})")
    p.add_argument("--strict", action="store_true", help="fail on the first unreadable file")
    p.add_argument("--max-tokens", type=int, default=192, help="passage budget in model tokens")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--embedder",
        choices=("minilm", "hashing"),
        default="minilm",
        help="hashing: the deterministic test embedder and no spaCy annotation (tests only)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="read, chunk, annotate and encode on Ray (pip install 'release-qa[cluster]'): alone, a "
        "local Ray runtime; with an address (auto, ray://head:10001), that cluster",
    )
    p.add_argument(
        "--pq",
        action="store_true",
        help="store the vectors as IVF-PQ codes (96 bytes, not 1.5 KB, a vector; for archives whose "
        "vectors do not fit in RAM); prints recall@10 against exact search",
    )
    p.add_argument(
        "--encoder",
        choices=("onnx", "onnx-int8", "torch"),
        default=None,
        help="how the model encodes: onnx-int8 (int8 weights) builds about twice as fast, and the "
        "index is then always asked with it; changing it rebuilds (default: what the index was "
        "built with, else $RELEASE_QA_ENCODER or onnx)",
    )
    p.add_argument(
        "--annotate",
        action="store_true",
        help="parse every sentence with spaCy while building (about half the encoder's time again) "
        "instead of when the feature answerer first reads it; the answers are the same",
    )
    p.add_argument(
        "--ray-workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Ray encoder workers (default: every CPU; a local runtime gets N CPUs)",
    )
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer a question with a quote and its citation")
    p.add_argument("question")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("-k", type=int, default=10, help="passages to retrieve")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_reader(p)
    _add_filters(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="serve the web chat")
    p.add_argument("--index", default=DEFAULT_INDEX)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", help="user:password to sign in (default $RELEASE_QA_AUTH); needed off 127.0.0.1")
    p.add_argument(
        "--insecure-no-auth", action="store_true", help="serve beyond 127.0.0.1 without a password (unsafe)"
    )
    _add_reader(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("train-answerer", help="train the answerer's models on SQuAD v1.1 train")
    p.add_argument("--data", default=str(DEFAULT_TRAIN), help="SQuAD v1.1 train JSON (.json or .json.gz)")
    p.add_argument("--out", default=None, help="where the model JSON goes (default: the packaged model)")
    p.add_argument("--articles", type=int, default=40)
    p.add_argument("--questions", type=int, default=5000)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--model", choices=("gbm", "lr"), default="gbm", help="boosted trees or logistic regression"
    )
    p.add_argument("--trees", type=int, default=150, help="boosting rounds (gbm)")
    p.add_argument("--span-target", choices=("em", "f1"), default="em", help="what the span model learns")
    p.add_argument("--cache", default=None, help="folder for the training index (default: a temp folder)")
    p.set_defaults(func=cmd_train_answerer)

    p = sub.add_parser("train-reader", help="fine-tune the neural reader on SQuAD v1.1 train")
    p.add_argument("--data", default=str(DEFAULT_TRAIN), help="SQuAD v1.1 train JSON (.json or .json.gz)")
    p.add_argument(
        "--dev", default="../shared/evals/squad-v1.1-dev-shared.json", help="dev set scored at checkpoints"
    )
    p.add_argument("--out", default="checkpoints/reader", help="checkpoint folder (export-reader ships it)")
    p.add_argument("--base", default=None, help="start from this model (default: the packaged MiniLM)")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--stride", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-examples", type=int, default=None, help="train on this many questions only")
    p.add_argument(
        "--max-minutes", type=float, default=None, help="time budget; the learning rate decays to it"
    )
    p.add_argument("--checkpoint-minutes", type=float, default=15.0)
    p.add_argument("--dev-questions", type=int, default=300)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--skip-windows",
        type=int,
        default=0,
        help="skip this many windows of the seeded order (continue a --base run on unseen data)",
    )
    p.set_defaults(func=cmd_train_reader)

    p = sub.add_parser(
        "mine-negatives", help="hard negatives for reader training: retrieved passages without the answer"
    )
    p.add_argument("--data", default=str(DEFAULT_TRAIN), help="SQuAD v1.1 train JSON (.json or .json.gz)")
    p.add_argument("--out", default="checkpoints/negatives.jsonl", help="JSONL, appended (resumable)")
    p.add_argument("--cache", default="checkpoints/negatives-index", help="the training articles' index")
    p.add_argument("--questions", type=int, default=40000, help="the first N of the trainer's order")
    p.add_argument("--seed", type=int, default=17, help="the trainer's seed (its question order)")
    p.set_defaults(func=cmd_mine_negatives)

    p = sub.add_parser("mine-press", help="gold passages and negatives for press QA rows (press-train)")
    p.add_argument("--rows", default="evals/datasets/press-train.jsonl")
    p.add_argument(
        "--archive", default="../shared/corpus/wh-briefings", help="the folder of the rows' releases"
    )
    p.add_argument("--out", default="checkpoints/press-negatives.jsonl")
    p.add_argument("--cache", default="checkpoints/press-index", help="the index of the rows' releases")
    p.set_defaults(func=cmd_mine_press)

    p = sub.add_parser(
        "mine-headers", help="each mined passage's header (its release's title and date) for --headers"
    )
    p.add_argument("--data", default=str(DEFAULT_TRAIN), help="SQuAD v1.1 train JSON (its article titles)")
    p.add_argument(
        "--cache",
        action="append",
        help="an index cache the mining built (default: checkpoints/negatives-index and press-index)",
    )
    p.add_argument("--out", default="checkpoints/headers.json")
    p.set_defaults(func=cmd_mine_headers)

    p = sub.add_parser(
        "train-open-reader",
        help="train the reader on gold + retrieved passages under one normalisation (resumable)",
    )
    p.add_argument("--data", default=str(DEFAULT_TRAIN))
    p.add_argument("--negatives", default="checkpoints/negatives.jsonl")
    p.add_argument("--press", default=None, help="press-train rows (evals/datasets/press-train.jsonl)")
    p.add_argument("--press-negatives", default=None, help="their mined passages")
    p.add_argument("--dev", default="../shared/evals/squad-v1.1-dev-shared.json")
    p.add_argument("--out", default="checkpoints/open-reader")
    p.add_argument("--base", default=None, help="start from this model (default: the shipped reader)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--target-windows", type=int, default=120000, help="the schedule's length")
    p.add_argument("--groups-per-batch", type=int, default=8)
    p.add_argument("--press-every", type=int, default=6, help="one press group in this many")
    p.add_argument(
        "--press-answer",
        choices=("first", "any"),  # qa.training.shared_norm.PRESS_ANSWERS
        default="first",
        help="a press group's target: its first answer, or any inside it (the first is the fullest form)",
    )
    p.add_argument("--max-minutes", type=float, default=None, help="stop (checkpointed) after this long")
    p.add_argument(
        "--decay-by-time",
        action="store_true",
        help="the rate also decays over --max-minutes (whichever of it and the target comes first)",
    )
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),  # qa.training.shared_norm.PRECISIONS, not imported: the parser stays light
        default="fp32",
        help="bf16: bfloat16 autocast (1.4x a step on AMX CPU cores; more on a GPU)",
    )
    p.add_argument("--teacher", default=None, help="distil: a reader whose span distributions it also learns")
    p.add_argument(
        "--layers", default=None, help="a student: keep these encoder layers of --base, e.g. 0,2,4"
    )
    p.add_argument("--distill-weight", type=float, default=0.7, help="the teacher's share of the loss")
    p.add_argument(
        "--distill-groups",
        choices=("all", "squad"),  # qa.training.shared_norm.DISTILL_GROUPS
        default="all",
        help="squad: only SQuAD groups learn from the teacher (press groups from their gold alone)",
    )
    p.add_argument("--temperature", type=float, default=2.0, help="softens both distributions")
    p.add_argument(
        "--freeze-word-embeddings", action="store_true", help="keep the base's word embeddings (a student)"
    )
    p.add_argument(
        "--headers", help="read each passage under its release's title and date (mine-headers' JSON)"
    )
    p.set_defaults(func=cmd_train_open_reader)

    p = sub.add_parser("export-reader", help="ship a reader checkpoint into the package (fp16)")
    p.add_argument("checkpoint", help="a train-reader checkpoint folder")
    p.add_argument("--out", default=None, help="where it goes (default: the packaged reader)")
    p.add_argument(
        "--blend",
        default=None,
        help="a reader of the same shape to average with (e.g. the one it started from)",
    )
    p.add_argument("--weight", type=float, default=1.0, help="the checkpoint's share of the blend (0-1)")
    p.add_argument(
        "--card-note",
        default=None,
        help="a Markdown file appended to the model card (e.g. docs/reader-card-note.md: which weights "
        "the training commands' paths held)",
    )
    p.set_defaults(func=cmd_export_reader)

    p = sub.add_parser(
        "train-reranker",
        help="fit the retriever's reranker on press-train and SQuAD train questions over their releases",
    )
    p.add_argument("--press", default="evals/datasets/press-train.jsonl", help="press QA rows to learn from")
    p.add_argument("--archive", default="../shared/corpus/wh-briefings", help="the rows' releases")
    p.add_argument("--press-cache", default="checkpoints/press-index", help="their index (mine-press's)")
    p.add_argument("--squad", default=str(DEFAULT_TRAIN), help="SQuAD v1.1 train JSON (.json or .json.gz)")
    p.add_argument("--squad-cache", default="checkpoints/negatives-index", help="its index")
    p.add_argument("--squad-questions", type=int, default=6000, help="a seeded sample of them")
    p.add_argument("--depth", type=int, default=20, help="how many fused passages it reorders")
    p.add_argument(
        "--press-distractors",
        type=int,
        default=0,
        help="a seeded sample of other archive releases added to the press index (harder negatives)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="releases never drawn as distractors: a list of names or QA JSONL (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: the packaged qa/models/reranker.json")
    p.set_defaults(func=cmd_train_reranker)

    p = sub.add_parser(
        "train-prior",
        help="fit the sentence prior (which sentences hold answers, from their surface) on press-train",
    )
    p.add_argument("--press", default="evals/datasets/press-train.jsonl", help="press QA rows to learn from")
    p.add_argument("--archive", default="../shared/corpus/wh-briefings", help="the rows' releases")
    p.add_argument("--bits", type=int, default=15, help="hash buckets: 2**bits weights")
    p.add_argument("--c", type=float, default=0.5, help="inverse L2 strength (scikit-learn's C)")
    p.add_argument("--out", default=None, help="a folder (default: the packaged qa/models/sentence_prior)")
    p.set_defaults(func=cmd_train_prior)

    p = sub.add_parser(
        "calibrate-reader",
        help="fit the neural answerer's calibration and decision on press-tune + SQuAD v2.0 half 0",
    )
    p.add_argument("--press", default="evals/datasets/press-tune.jsonl", help="press QA rows that tune")
    p.add_argument(
        "--press-corpus",
        default="evals/datasets/press-tune-distractors.txt",
        help="releases that join the tuning corpus as distractors: a list of names or QA JSONL "
        "(default: press-train's releases of rounds 1-3, so the tuning corpus stays as it was)",
    )
    p.add_argument("--archive", default="../shared/corpus/wh-briefings", help="the press rows' releases")
    p.add_argument("--squad", default="../shared/evals/squad-v2.0-dev-shared.json")
    p.add_argument("--cache", default=None, help="eval index cache (default: the eval's)")
    p.add_argument("--limit", type=int, default=800, help="a seeded sample of SQuAD's tuning half")
    p.add_argument(
        "--passages",
        type=int,
        default=None,
        help="how many top passages the reader reads (default: the shipped calibration's, or after "
        "export-reader qa.answer.neural.READ_PASSAGES)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="the reader's ONNX precision to fit with (int8: dynamically quantized, faster)",
    )
    p.add_argument(
        "--collected",
        default=None,
        help="an .npz of the collected candidates: read if it exists, else written",
    )
    p.add_argument(
        "--max-declined",
        type=float,
        default=0.10,
        help="the largest share of answerable questions the threshold may decline (default 0.10)",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=0.5,
        help="how sure to be that new questions stay within --max-declined (0.5: on average)",
    )
    p.add_argument(
        "--min-unanswerable-declined",
        type=float,
        default=0.70,
        help="go lower than --max-declined allows down to where this share of unanswerable "
        "questions is still declined (default 0.70; 0: never lower)",
    )
    p.add_argument(
        "--unanswerable-confidence",
        type=float,
        default=0.95,
        help="how sure to be that new unanswerable questions are declined at least that often",
    )
    p.add_argument("--out", default=None, help="where to write (default: calibration.json beside the reader)")
    p.add_argument(
        "--features",
        default=None,
        help="comma-separated calibration features (default: the shipped calibration's, or after "
        "export-reader qa.answer.neural.RECIPE)",
    )
    p.add_argument(
        "--select-features",
        default=None,
        help="comma-separated features of a model that picks each question's answer among its "
        "candidates ('': the most probable; default: the shipped calibration's, or after "
        "export-reader qa.answer.neural.SELECT_RECIPE)",
    )
    p.set_defaults(func=cmd_calibrate_reader)

    try:
        from app.eval_cli import add_eval_parser
    except ImportError:
        pass
    else:
        add_eval_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:  # bm25s sets its own logger to DEBUG at import
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    for noisy in ("faiss.loader", "sentence_transformers", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from qa import QAIndexError, ReleaseError

    try:
        return int(args.func(args))
    except (QAIndexError, ReleaseError, ValueError, FileNotFoundError) as e:
        print(f"release-qa: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
