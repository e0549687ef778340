# Sourced by run.sh and run-parallel.sh (PY and OUTDIR set): the environment of a device run and
# the carried data unpacked into /tmp/data.
mkdir -p /tmp/stub /tmp/data $OUTDIR
echo "def __getattr__(name): return lambda *a, **k: None" > /tmp/stub/faiss.py  # imported by the library, unused here
export PYTHONPATH=$PWD:/tmp/stub PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi -L; nproc; $PY -c "import torch, transformers; print(torch.__version__, transformers.__version__, torch.cuda.is_available())"
$PY -c "import lzma; open('/tmp/data/press-negatives.jsonl','wb').write(lzma.open('.gpu/press-negatives.jsonl.xz').read())" &
xz -dc .gpu/dev.json.xz > /tmp/data/dev.json; xz -dc .gpu/squad-train.json.xz > /tmp/data/squad-train.json
$PY .gpu/negs.py unpack .gpu/negatives.json.xz /tmp/data/negatives.jsonl /tmp/data/squad-train.json
wait; wc -l /tmp/data/*
rm -rf /tmp/teacher /tmp/student
