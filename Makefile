# Two commands do all the set-up:  `make train`  and  `make test`.
# torch goes in first: torch==2.13.0 is the CPU build where a local wheel is provided (a plain
# `torch` requirement there would pull a multi-GB CUDA build); elsewhere pip fetches the normal
# torch 2.13.0 wheel for the platform. Override with `make TORCH=torch ...` for another version.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
# corpora: copied from a local mirror when one is next to the checkout, else downloaded
export MT_CORPUS_MIRROR ?= $(if $(wildcard ../shared/corpora),$(abspath ../shared/corpora),)

.PHONY: install train test test-fast lint reference everyday-results clean

$(BIN)/mt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[plot,ja,ct2,dev,tensorboard,serve,browser,dict]"
	touch $(BIN)/mt

install: $(BIN)/mt

train: install
	$(BIN)/mt train --model transformer

# every test, the slow ones too (DDP, kills, soak, browser, benchmarks, longer trainings): what CI runs (.ci/run). `pytest` alone
# (pyproject's addopts: -m 'not slow') leaves those out: `make test-fast`.
test: install
	$(BIN)/python -m pytest -q -m ""

test-fast: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check mt tests

# docs/everyday.md's scores and `mt check` totals: each run on small_parallel_enja's and the everyday set's test
# halves (and Tatoeba's), with the run's own decode settings and EVAL_ARGS (e.g. EVAL_ARGS="--coverage 0.5"); then
# every run's outputs checked for `dropped` by one model that reads raw Japanese (CHECKER), so the counts compare
RUNS ?= everyday
EVAL_ARGS ?=
CHECKER ?= everyday
CORPORA := small_parallel_enja everyday tatoeba_jpn_eng
RUNS_DIR = $(or $(MT_RUNS_DIR),experiments/runs)
everyday-results: install
	@for run in $(RUNS); do for corpus in $(CORPORA); do \
	  echo "== $$run on $$corpus test"; $(BIN)/mt evaluate --run $$run --corpus $$corpus --split test $(EVAL_ARGS) || exit 1; done; done
	@for run in $(RUNS); do for corpus in $(CORPORA); do \
	  src=$$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["src"])' $(RUNS_DIR)/$$run/eval-$$corpus-test.json) \
	  && echo "== $$run on $$corpus test: dropped, read by $(CHECKER)" \
	  && out=$$($(BIN)/mt check --run $(CHECKER) --dropped --src $$src --hyp $(RUNS_DIR)/$$run/hyps-$$corpus-test.txt) \
	  && echo "$$out" | tail -1 || exit 1; done; done

# docs/reference.md's commands part, from the parser (tests/test_cli.py fails when it is stale)
reference: install
	$(BIN)/python -m mt.commands.reference

clean:
	rm -rf $(VENV) *.egg-info
