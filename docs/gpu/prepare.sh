#!/bin/bash
# Everything a lent GPU's call carries, made here (docs/gpu-training.md): on a new machine about
# 20 minutes of the 2 cores (mining), then seconds. Idempotent: what is there is kept.
# usage: docs/gpu/prepare.sh [PRESS_NEGATIVES]   (default checkpoints/press-negatives.r6.jsonl)
set -e
PY=${PY:-.venv/bin/python}
PRESS=${1:-checkpoints/press-negatives.r6.jsonl}
TRAIN=../shared/train/squad-v1.1-train.json.gz
export HF_HUB_OFFLINE=1
mkdir -p .gpu
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
# negatives for every SQuAD question (seed 50's order; all mined covers every seed's order)
$PY -m app.cli mine-negatives --data $TRAIN --questions 87599 --seed 50
[ -f "$PRESS" ] || $PY -m app.cli mine-press --out "$PRESS"
[ -f .gpu/squad-train.json.xz ] || zcat $TRAIN | xz -9e > .gpu/squad-train.json.xz
[ -f .gpu/dev.json.xz ] || xz -9e -c ../shared/evals/squad-v1.1-dev-shared.json > .gpu/dev.json.xz
xz -9 -c "$PRESS" > .gpu/press-negatives.jsonl.xz
$PY docs/gpu/negs.py pack checkpoints/negatives.jsonl .gpu/negatives.json.xz $TRAIN
cp docs/gpu/negs.py docs/gpu/pack.py docs/gpu/setup.sh docs/gpu/run.sh docs/gpu/run-parallel.sh .gpu/
# what a call carries: the tracked tree, untracked files git does not ignore, and .gpu/ (64 MiB)
total=$( (git ls-files -z; git ls-files -z --others --exclude-standard; find .gpu -type f -print0) \
  | xargs -0 du -cb | awk '/total$/ {s += $1} END {print s}')
echo "a call carries $total bytes of 67108864"
[ "$total" -le 67108864 ] || { echo "over the 64 MiB a call carries" >&2; exit 1; }
