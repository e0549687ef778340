# The two commands a new user runs: `make chat` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLUSTER := $(VENV)/.cluster
INDEX ?= embeddings/default
CORPUS ?= corpus
EVAL_ARGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: chat test eval bench loadtest lint format index setup clean train-reader train-student

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build on this machine's disk, never a CUDA download
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# $(INDEX)/uploads holds releases added in the chat: indexing keeps them
index: $(STAMP)
	$(VENV)/bin/release-qa index $(CORPUS) $(wildcard $(INDEX)/uploads) --index $(INDEX)

chat: index
	$(VENV)/bin/release-qa serve --index $(INDEX)

# Ray (the optional 'cluster' extra) for the tests of `release-qa index --ray`; the chat needs none
$(CLUSTER): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,cluster]'
	touch $(CLUSTER)

test: $(STAMP) $(CLUSTER)
	$(PY) -m pytest -q

eval: $(STAMP)
	# the peer cairn-pipeline in its own venv (evals/.peers/cairn); the report says so if it fails
	evals/peers/setup_cairn.sh || echo "cairn peer setup failed: the report will say it was not run"
	$(VENV)/bin/release-qa eval --suite standard --out evals/reports/latest $(EVAL_ARGS)
	# answering alone: each SQuAD v1.1 question asked of its own paragraph, both readers
	$(VENV)/bin/release-qa eval --dataset ../shared/evals/squad-v1.1-dev-shared.json --gold-context \
		--out evals/reports/latest-gold $(EVAL_ARGS)

bench: $(STAMP)
	# the whole real archive built (about 45 min on 2 cores), then asked beside the synthetic sizes
	$(PY) -m evals.bench_archive --index evals/cache/bench-archive --replace --out evals/reports/bench
	$(PY) -m evals.bench --out evals/reports/bench --real evals/cache/bench-archive
	# the chat page with the whole real archive indexed (Debian's chromium), beside the seed alone
	$(PY) -m evals.bench_chat --out evals/reports/bench

# issue 8: 20 gradio_client clients x 50 questions against `release-qa serve` on a free 127.0.0.1 port
loadtest: $(STAMP)
	$(PY) -m evals.loadtest --out evals/reports/loadtest

# issue 14: the open-corpus reader, resumable across sessions (each step skips what is done);
# TRAIN_ARGS adds e.g. --max-minutes 150 or --threads 2
TRAIN_ARGS ?=
# the shipped reader's run (stage 3, on a GPU): resuming it goes on with the same schedule and mix
READER_SCHEDULE := --target-windows 220000 --groups-per-batch 16 --press-every 24 --lr 5e-5
SHIPPED_READER := config.json tokenizer.json tokenizer_config.json training.json model.safetensors
train-reader: $(STAMP)
	# a new machine has no checkpoint: go on from the shipped reader (its weights and place in the
	# schedule; AdamW's moments are not shipped, so the rate is warmed up again)
	test -f checkpoints/open-reader/training.json || (mkdir -p checkpoints/open-reader && cp \
		$(addprefix qa/models/reader/,$(SHIPPED_READER)) checkpoints/open-reader/)
	$(VENV)/bin/release-qa mine-negatives --questions 87599
	# press-train newer than its mined passages (a new round of data): mine it again
	test checkpoints/press-negatives.jsonl -nt evals/datasets/press-train.jsonl || $(VENV)/bin/release-qa mine-press
	# each mined passage's header (its release's title and date): the shipped reader reads them
	test checkpoints/headers.json -nt checkpoints/press-negatives.jsonl || $(VENV)/bin/release-qa mine-headers
	$(VENV)/bin/release-qa train-open-reader --resume $(READER_SCHEDULE) --headers checkpoints/headers.json \
		--press evals/datasets/press-train.jsonl --press-negatives checkpoints/press-negatives.jsonl $(TRAIN_ARGS)

# issue 16: a 3-layer student distilled from the shipped reader (its teacher and its starting layers),
# resumable like the teacher's run; needs the negatives `make train-reader` mines
train-student: $(STAMP)
	$(VENV)/bin/release-qa train-open-reader --resume --base qa/models/reader --teacher qa/models/reader \
		--layers 0,2,4 --freeze-word-embeddings --out checkpoints/student --target-windows 120000 --lr 1e-4 \
		--press-every 8 --seed 23 --threads 2 \
		--press evals/datasets/press-train.jsonl --press-negatives checkpoints/press-negatives.jsonl $(TRAIN_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check qa app evals tests
	$(VENV)/bin/ruff format --check qa app evals tests

format: $(STAMP)
	$(VENV)/bin/ruff format qa app evals tests
	$(VENV)/bin/ruff check --fix qa app evals tests

clean:
	rm -rf $(VENV) embeddings/default
