#!/bin/bash
# The device run (docs/gpu-training.md): the reader trained on from the shipped one, then a 3-layer
# student distilled from it. Copied with its data into .gpu/ (ignored, carried by the call).
# usage: [GPB=16] [PRESS_EVERY=24] [LR=5e-5] [READER_ARGS=...] [LAYERS=0,2,4] .gpu/run.sh OUTDIR TEACHER_S STUDENT_S TARGET
#   (STUDENT_S 0: no student; READER_ARGS: more train-open-reader options for the reader's run, e.g.
#   "--teacher qa/models/reader --distill-weight 0.5 --seed 19" for stage 4 held to the shipped reader)
set -x
OUTDIR=$1; TS=$2; SS=$3; TARGET=$4
PY=${PY:-python3}
. .gpu/setup.sh  # the environment, the data unpacked into /tmp/data
COMMON="--data /tmp/data/squad-train.json --dev /tmp/data/dev.json --negatives /tmp/data/negatives.jsonl
  --press evals/datasets/press-train.jsonl --press-negatives /tmp/data/press-negatives.jsonl
  --groups-per-batch ${GPB:-16} --press-every ${PRESS_EVERY:-24} --checkpoint-minutes 2 --precision bf16"
# a SIGTERM at the limit stops a run at its next step with a checkpoint (qa.training.stopping)
timeout -s TERM $((TS + ${MARGIN:-60})) $PY -m app.cli -v train-open-reader $COMMON --base qa/models/reader \
  --out /tmp/teacher --target-windows $TARGET --lr ${LR:-5e-5} ${READER_ARGS:-} --max-minutes $($PY -c "print($TS/60)") 2>&1 \
  | grep -v "it/s\]$" >> $OUTDIR/train.log; tail -4 $OUTDIR/train.log
$PY .gpu/pack.py /tmp/teacher $OUTDIR teacher
[ "$SS" -gt 0 ] || { ls -la $OUTDIR; exit 0; }
ST=$($PY -c "import json; m=json.load(open('/tmp/teacher/training.json')); print(int(m['state']['windows'] / m['seconds'] * $SS * 0.9))")
timeout -s TERM $((SS + ${MARGIN:-60})) $PY -m app.cli -v train-open-reader $COMMON --base /tmp/teacher --teacher /tmp/teacher \
  --layers ${LAYERS:-0,2,4} --freeze-word-embeddings --out /tmp/student --target-windows $ST --lr 1e-4 \
  --max-minutes $($PY -c "print($SS/60)") 2>&1 | grep -v "it/s\]$" >> $OUTDIR/train.log; tail -4 $OUTDIR/train.log
$PY .gpu/pack.py /tmp/student $OUTDIR student
ls -la $OUTDIR
