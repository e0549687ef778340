"""Load test (issue 8): ``python -m evals.loadtest [--clients 20] [--questions 50] [--out DIR]``.

Starts ``release-qa serve`` on a free 127.0.0.1 port over an index of ``corpus/`` (plus
``../shared/corpus/us-gov-cyber`` when present; built once with the real model and cached in
``evals/cache/``), then runs N threads, each its own ``gradio_client.Client``, each asking M
questions from ``evals/datasets/press-dev.jsonl`` through ``/ask`` in a fixed order (follow-ups
with their chain of earlier turns as history, as the eval harness asks them). Every request has
a timeout and the whole run a deadline, so the loop always ends. Each response is checked: it
must be the JSON of ``release-qa ask --json`` and its citation's range must hold the answer.

Writes ``loadtest.json`` and ``loadtest.md`` to DIR: requests, errors, latency p50/p95/max
(client side, submit to result, queue wait included), throughput, wall time, the server's
RSS and CPU time, and the load average. Exits 1 if any request failed or was malformed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from qa import Release
from qa.evaluation.data import NO_ANSWER_REPLY
from qa.index import Index

logger = logging.getLogger("evals.loadtest")

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "evals" / "datasets" / "press-dev.jsonl"
SEED = ROOT / "corpus"
SHARED_CORPUS = ROOT.parent / "shared" / "corpus" / "us-gov-cyber"
CACHE = ROOT / "evals" / "cache"
HOST = "127.0.0.1"

ANSWER_KEYS = {"text", "sentence", "score", "citation"}
CITATION_KEYS = {"release_id", "title", "date", "source", "url", "path", "start", "end"}


# ---------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    release: str | None
    history: tuple[tuple[str, str], ...] = ()

    def messages(self) -> list[dict[str, str]] | None:
        """The earlier turns as the API takes them (OpenAI-style), or None."""
        if not self.history:
            return None
        out: list[dict[str, str]] = []
        for q, a in self.history:
            out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        return out


def load_questions(
    path: Path = DATASET, keep: Callable[[dict[str, Any]], bool] | None = None
) -> list[Question]:
    """The dataset's questions in file order; a follow-up carries its chain of earlier turns,
    each earlier answer being that turn's first gold answer (as in ``qa.evaluation.data``)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {str(r["id"]): r for r in rows}
    out = []
    for r in rows:
        if keep is not None and not keep(r):
            continue
        chain: list[tuple[str, str]] = []
        parent = r.get("followup_of")
        while parent is not None:
            prev = by_id[str(parent)]
            chain.append(
                (str(prev["question"]), str(prev["answers"][0]) if prev["answers"] else NO_ANSWER_REPLY)
            )
            parent = prev.get("followup_of")
        out.append(Question(str(r["id"]), str(r["question"]), r.get("release"), tuple(reversed(chain))))
    return out


def plan(pool: Sequence[Question], clients: int, questions: int) -> list[list[Question]]:
    """Client c asks ``questions`` consecutive questions (cyclically) starting at c/clients of
    the way through the pool: deterministic, and different clients ask different questions."""
    if not pool:
        raise ValueError("no questions to ask")
    n = len(pool)
    return [[pool[(c * n // clients + j) % n] for j in range(questions)] for c in range(clients)]


# ---------------------------------------------------------------- the index


def default_sources() -> list[Path]:
    return [SEED, *([SHARED_CORPUS] if SHARED_CORPUS.is_dir() else [])]


def cached_index(sources: Sequence[Path], cache: Path = CACHE) -> Path:
    """An index of ``sources`` with the real model under ``cache``; ``update_index`` embeds only
    what changed, so a second run reuses it."""
    from qa import update_index

    names = "\n".join(sorted(_rel(s) for s in sources))
    path = cache / f"loadtest-{hashlib.sha256(names.encode()).hexdigest()[:16]}"
    report = update_index(path, list(sources))
    for s in report.skipped:
        logger.warning("skipped %s", s)
    return path


def _rel(p: Path) -> str:
    p = Path(p).resolve()
    for base in (ROOT, ROOT.parent):
        if p.is_relative_to(base):
            return str(p.relative_to(base))
    return str(p)


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) in MB and user+system CPU seconds of a live process, from /proc."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0]) / 1024.0
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        pass
    return out


def serve_command() -> list[str]:
    exe = Path(sys.executable).with_name("release-qa")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("release-qa")
    return [found] if found else [sys.executable, "-m", "app.cli"]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    startup_s: float
    ready: dict[str, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C first (Gradio closes cleanly), then SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            proc.send_signal(sig)
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


@contextmanager
def running_server(
    index: Path, log: Path, startup_timeout: float = 600, attempts: int = 3
) -> Iterator[Server]:
    """``release-qa serve`` on a free 127.0.0.1 port, ready to answer; always stopped after.

    A free port can be taken between picking and binding it: then it tries another."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        port = free_port()
        url = f"http://{HOST}:{port}/"
        cmd = [*serve_command(), "serve", "--index", str(index), "--host", HOST, "--port", str(port)]
        t0 = time.perf_counter()
        with log.open("ab") as f:
            f.write(f"$ {' '.join(cmd)}\n".encode())
            f.flush()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            if _wait_ready(proc, url, startup_timeout):
                server = Server(proc, url, log, time.perf_counter() - t0)
                server.ready = proc_status(proc.pid)
                yield server
                return
            tail = log.read_text(errors="replace")[-2000:]
            port_taken = proc.poll() is not None and ("port" in tail.lower() or "address" in tail.lower())
            if not port_taken or attempt == attempts:
                raise RuntimeError(f"the server did not become ready at {url}; its log ({log}) ends:\n{tail}")
            logger.warning("port %d was taken; trying another", port)
        finally:
            _stop(proc)


class PeakSampler:
    """Polls a process's /proc status while the load runs (VmHWM alone would do; the samples
    also show when RSS grew)."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = proc_status(self.pid).get("VmRSS", 0.0)
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------- checking a response


def check_response(text: Any, question: str, releases: dict[str, Release]) -> str | None:
    """Why ``text`` is not the documented ``ask --json`` for ``question``, or None when it is."""
    if not isinstance(text, str):
        return f"not text: {type(text).__name__}"
    try:
        got = json.loads(text)
    except ValueError as e:
        return f"not JSON: {e}"
    if not isinstance(got, dict) or not {"question", "answer", "passages"} <= set(got):
        return f"missing keys: {sorted(got) if isinstance(got, dict) else type(got).__name__}"
    if got["question"] != question:
        return f"answers another question: {got['question']!r}"
    if not isinstance(got["passages"], list):
        return "passages is not a list"
    a = got["answer"]
    if a is None:
        return None
    if not isinstance(a, dict) or not set(a) >= ANSWER_KEYS:
        return f"answer lacks keys: {sorted(ANSWER_KEYS - set(a or {}))}"
    c = a["citation"]
    if not isinstance(c, dict) or not set(c) >= CITATION_KEYS:
        return f"citation lacks keys: {sorted(CITATION_KEYS - set(c or {}))}"
    rel = releases.get(c["release_id"])
    if rel is None:
        return f"cites a release not in the index: {c['release_id']}"
    if rel.text[c["start"] : c["end"]] != a["text"]:
        return f"citation range {c['start']}:{c['end']} does not hold the answer {a['text']!r}"
    if a["text"] not in (a["sentence"] or ""):
        return "the answer is not inside its sentence"
    return None


# ---------------------------------------------------------------- the clients


@dataclass
class Record:
    client: int
    seq: int
    qid: str
    latency_s: float | None = None
    error: str | None = None
    invalid: str | None = None
    answered: bool = False
    text: str | None = None


def run_clients(
    url: str,
    questions: list[list[Question]],
    releases: dict[str, Release],
    *,
    request_timeout: float = 300,
    deadline_s: float = 3600,
) -> tuple[list[Record], dict[str, float]]:
    """One thread and one ``gradio_client.Client`` per plan row; all start asking at once.

    Every request is bounded by ``request_timeout`` and the run by ``deadline_s``: questions
    left when the deadline passes are recorded as errors, never asked."""
    from gradio_client import Client

    n = len(questions)
    records: list[list[Record]] = [[] for _ in range(n)]
    gate = threading.Barrier(n + 1)
    stop_at = [0.0]

    def client_thread(c: int) -> None:
        client = None
        failed = None
        t = time.perf_counter()
        try:
            client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
        except Exception as e:
            failed = f"connect: {type(e).__name__}: {e}"
        connect_s[c] = time.perf_counter() - t
        with suppress(threading.BrokenBarrierError):
            gate.wait(timeout=max(60.0, request_timeout))
        try:
            for j, q in enumerate(questions[c]):
                rec = Record(c, j, q.id)
                records[c].append(rec)
                if failed or time.monotonic() > stop_at[0]:
                    rec.error = failed or "not asked: the run's deadline passed"
                    continue
                assert client is not None
                args: tuple[Any, ...] = (q.question,) if not q.history else (q.question, q.messages())
                t = time.perf_counter()
                try:
                    job = client.submit(*args, api_name="/ask")
                    text = job.result(timeout=request_timeout)
                except Exception as e:
                    rec.latency_s = time.perf_counter() - t
                    rec.error = f"{type(e).__name__}: {str(e)[:300]}"
                    continue
                rec.latency_s = time.perf_counter() - t
                rec.text = text
                rec.invalid = check_response(text, q.question, releases)
                rec.answered = rec.invalid is None and json.loads(text)["answer"] is not None
        finally:
            if client is not None:
                client.close()

    connect_s = [0.0] * n
    threads = [threading.Thread(target=client_thread, args=(c,), name=f"client-{c}") for c in range(n)]
    for th in threads:
        th.start()
    stop_at[0] = time.monotonic() + deadline_s + max(60.0, request_timeout) + 30
    with suppress(threading.BrokenBarrierError):
        gate.wait(timeout=max(60.0, request_timeout) + 30)
    t0 = time.perf_counter()
    stop_at[0] = time.monotonic() + deadline_s
    for th in threads:
        th.join(timeout=deadline_s + request_timeout + 60)
    wall = time.perf_counter() - t0
    stuck = [th.name for th in threads if th.is_alive()]
    if stuck:
        logger.error("client threads still running after the deadline: %s", stuck)
    flat = [r for rows in records for r in rows]
    return flat, {"wall_s": wall, "connect_s_max": max(connect_s), "stuck_clients": len(stuck)}


# ---------------------------------------------------------------- the run and its report


def summarize(records: Sequence[Record], planned: int, timing: dict[str, float]) -> dict[str, Any]:
    ok = [r for r in records if r.error is None and r.invalid is None]
    lat = np.array([r.latency_s for r in ok if r.latency_s is not None], dtype=float)
    errors = [r for r in records if r.error is not None]
    invalid = [r for r in records if r.error is None and r.invalid is not None]
    missing = planned - len(records)

    def pct(p: float) -> float | None:
        return round(float(np.percentile(lat, p)), 4) if lat.size else None

    kinds = Counter((r.error or r.invalid or "").split(":")[0] for r in [*errors, *invalid])
    samples = [
        {"client": r.client, "seq": r.seq, "id": r.qid, "error": r.error, "invalid": r.invalid}
        for r in [*errors, *invalid][:20]
    ]
    wall = timing["wall_s"]
    return {
        "requests": planned,
        "completed": len(ok),
        "errors": len(errors) + missing,
        "invalid": len(invalid),
        "answered": sum(r.answered for r in ok),
        "declined": sum(not r.answered for r in ok),
        "latency_s": {
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "max": round(float(lat.max()), 4) if lat.size else None,
            "min": round(float(lat.min()), 4) if lat.size else None,
            "mean": round(float(lat.mean()), 4) if lat.size else None,
        },
        "throughput_qps": round(len(ok) / wall, 3) if wall > 0 else None,
        "wall_s": round(wall, 2),
        "client_connect_s_max": round(timing["connect_s_max"], 2),
        "stuck_clients": timing["stuck_clients"],
        "error_kinds": dict(kinds),
        "error_samples": samples,
    }


def loadtest(
    index: Path,
    clients: int,
    questions: int,
    out: Path,
    *,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    request_timeout: float = 300,
    deadline_s: float = 3600,
    startup_timeout: float = 600,
) -> tuple[dict[str, Any], list[Record]]:
    """Serve ``index``, run the clients, stop the server; the summary and every record.

    ``keep`` picks dataset rows; by default, those whose release is in the index (and the
    unanswerable ones)."""
    releases = Index.load(index).releases
    names = {Path(r.path).name for r in releases.values()}
    pool = load_questions(DATASET, keep or (lambda r: r.get("release") is None or r["release"] in names))
    rows = plan(pool, clients, questions)
    load_start = list(os.getloadavg())
    out.mkdir(parents=True, exist_ok=True)
    log = out / "server.log"
    log.unlink(missing_ok=True)
    with running_server(index, log, startup_timeout) as server:
        logger.info("server ready at %s in %.1f s (pid %d)", server.url, server.startup_s, server.pid)
        before = proc_status(server.pid)
        mine = resource.getrusage(resource.RUSAGE_SELF)
        with PeakSampler(server.pid) as sampler:
            records, timing = run_clients(
                server.url, rows, releases, request_timeout=request_timeout, deadline_s=deadline_s
            )
        mine_after = resource.getrusage(resource.RUSAGE_SELF)
        after = proc_status(server.pid)
        alive = server.proc.poll() is None
    summary = summarize(records, clients * questions, timing)
    cpu = after.get("cpu_s", 0.0) - before.get("cpu_s", 0.0)
    summary = {
        "clients": clients,
        "questions_per_client": questions,
        **summary,
        "server": {
            "pid": server.pid,
            "startup_s": round(server.startup_s, 1),
            "rss_ready_mb": round(server.ready.get("VmRSS", 0.0), 1),
            "peak_rss_mb": round(max(after.get("VmHWM", 0.0), sampler.peak_rss_mb), 1),
            "cpu_s_during_load": round(cpu, 1),
            "cpu_ms_per_request": round(1000 * cpu / max(1, summary["completed"]), 1),
            "alive_after_load": alive,
        },
        "clients_cpu_s": round(mine_after.ru_utime + mine_after.ru_stime - mine.ru_utime - mine.ru_stime, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "index": {"path": _rel(index), "releases": len(releases)},
        "dataset": {
            "path": _rel(DATASET),
            "pool": len(pool),
            "distinct_asked": len({q.id for r in rows for q in r}),
        },
    }
    (out / "loadtest.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "loadtest.md").write_text(render(summary), encoding="utf-8")
    return summary, records


def render(s: dict[str, Any]) -> str:
    lat, srv, m = s["latency_s"], s["server"], s["machine"]
    verdict = "PASS" if s["errors"] == 0 and s["invalid"] == 0 else "FAIL"
    lines = [
        f"# Load test: {s['clients']} clients x {s['questions_per_client']} questions ({verdict})",
        "",
        f"`release-qa serve` on 127.0.0.1 over `{s['index']['path']}` ({s['index']['releases']} releases); "
        f"each client its own `gradio_client.Client` calling `/ask`, questions from "
        f"`{s['dataset']['path']}` ({s['dataset']['distinct_asked']} distinct of {s['dataset']['pool']}, "
        "follow-ups with their earlier turns as history). Latency is client side, from submit to "
        "result, so it includes the wait in Gradio's queue.",
        "",
        "| | |",
        "|---|---|",
        f"| requests | {s['requests']} |",
        f"| completed | {s['completed']} ({s['answered']} answered, {s['declined']} declined) |",
        f"| errors | {s['errors']} |",
        f"| malformed responses | {s['invalid']} |",
        f"| latency p50 / p95 / p99 / max | {_s(lat['p50'])} / {_s(lat['p95'])} / {_s(lat['p99'])} / "
        f"{_s(lat['max'])} |",
        f"| throughput | {s['throughput_qps']} questions/s |",
        f"| wall time | {s['wall_s']} s |",
        f"| server start (spawn to ready) | {srv['startup_s']} s |",
        f"| server RSS ready / peak | {srv['rss_ready_mb']} MB / {srv['peak_rss_mb']} MB |",
        f"| server CPU during load | {srv['cpu_s_during_load']} s "
        f"({srv['cpu_ms_per_request']} ms per request) |",
        f"| load average (1/5/15 min), start / end | {_la(m['load_avg_start'])} / {_la(m['load_avg_end'])} |",
        f"| load generator CPU (the clients, same machine) | {s['clients_cpu_s']} s |",
        f"| CPUs | {m['cpus']} (shared) |",
        "",
    ]
    if s["error_kinds"]:
        lines += ["## Errors", "", *(f"- {k}: {v}" for k, v in s["error_kinds"].items()), ""]
        lines += [
            f"- client {e['client']} #{e['seq']} {e['id']}: {e['error'] or e['invalid']}"
            for e in s["error_samples"]
        ]
        lines.append("")
    return "\n".join(lines)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def _la(x: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.loadtest", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--questions", type=int, default=50, help="questions per client")
    p.add_argument(
        "--index", type=Path, help="serve this index as it is (default: build or reuse a cached one)"
    )
    p.add_argument(
        "--corpus", type=Path, nargs="+", help="folders to index (default: corpus/ + shared us-gov-cyber)"
    )
    p.add_argument("--out", type=Path, default=ROOT / "evals" / "reports" / "loadtest")
    p.add_argument("--request-timeout", type=float, default=300, help="seconds one request may take")
    p.add_argument("--deadline", type=float, default=3600, help="seconds the whole run may take")
    args = p.parse_args(argv)
    if args.clients < 1 or args.questions < 1:
        p.error("--clients and --questions must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.index is None:
        t = time.perf_counter()
        index = cached_index(args.corpus or default_sources())
        logger.info("index %s ready in %.1f s", index, time.perf_counter() - t)
    else:
        index = args.index
    summary, _ = loadtest(
        index,
        args.clients,
        args.questions,
        args.out,
        request_timeout=args.request_timeout,
        deadline_s=args.deadline,
    )
    print(render(summary))
    print(f"wrote {args.out / 'loadtest.md'} and {args.out / 'loadtest.json'}")
    return 0 if summary["errors"] == 0 and summary["invalid"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
