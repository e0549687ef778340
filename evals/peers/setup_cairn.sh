#!/usr/bin/env bash
# Creates the cairn-pipeline peer's own venv under evals/.peers/cairn (gitignored), apart from
# the project's .venv, so the peer never becomes a dependency of release-qa.
# torch goes first and pinned: any other torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=evals/.peers/cairn
PYTHON=${PYTHON:-python3}
if [ -f "$VENV/.installed" ] && [ -x "$VENV/bin/python" ]; then
  echo "cairn peer: venv ready at $VENV"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q "cairn-pipeline[local,faiss]==0.1.0"
touch "$VENV/.installed"
echo "cairn peer: venv ready at $VENV"
