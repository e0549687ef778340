#!/bin/bash
# The device run with the reader and a student side by side on one GPU (docs/gpu-training.md): the
# host, not the GPU, set the rate of one run, so two processes use the lent minutes twice over.
# The reader trains on from the shipped one; the student is distilled from the shipped one (the
# reader it is judged against), not from the new run. Both decay their rate over the time given.
# SEED: the order the mined negatives were mined for (release-qa mine-negatives --seed), else the
# SQuAD stream is the few questions that happen to lead both orders.
# usage: [SEED=50] [GPB=16] [PRESS_EVERY=2] [LR=2e-5] [READER_ARGS=...] [LAYERS=0,2,4] [STUDENT_ARGS=...]
#        .gpu/run-parallel.sh OUTDIR SECONDS
set -x
OUTDIR=$1; S=$2
PY=${PY:-python3}
. .gpu/setup.sh  # the environment, the data unpacked into /tmp/data
COMMON="--data /tmp/data/squad-train.json --dev /tmp/data/dev.json --negatives /tmp/data/negatives.jsonl
  --press evals/datasets/press-train.jsonl --press-negatives /tmp/data/press-negatives.jsonl
  --seed ${SEED:-50} --groups-per-batch ${GPB:-16} --checkpoint-minutes 3 --precision bf16 --target-windows 10000000
  --max-minutes $($PY -c "print($S/60)") --decay-by-time"
# a SIGTERM at the limit stops a run at its next step with a checkpoint (qa.training.stopping)
timeout -s TERM $((S + ${MARGIN:-90})) $PY -m app.cli -v train-open-reader $COMMON --base qa/models/reader \
  --out /tmp/teacher --press-every ${PRESS_EVERY:-2} --lr ${LR:-2e-5} ${READER_ARGS:-} 2>&1 \
  | grep -v "it/s\]$" > $OUTDIR/teacher.log &
timeout -s TERM $((S + ${MARGIN:-90})) $PY -m app.cli -v train-open-reader $COMMON --base qa/models/reader \
  --teacher qa/models/reader --layers ${LAYERS:-0,2,4} --freeze-word-embeddings --out /tmp/student \
  --press-every 8 --lr 1e-4 ${STUDENT_ARGS:-} 2>&1 | grep -v "it/s\]$" > $OUTDIR/student.log &
wait
tail -n 3 $OUTDIR/teacher.log $OUTDIR/student.log
$PY .gpu/pack.py /tmp/teacher $OUTDIR teacher
$PY .gpu/pack.py /tmp/student $OUTDIR student
ls -la $OUTDIR
