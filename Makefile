# churnops - two commands for a fresh Linux machine with Python 3.10+ and make:
#   make run    set up .venv with churnops and DVC, and run the whole pipeline on the embedded data
#               in ./demo (its own git repository and DVC remote: nothing is committed in this clone)
#   make test   set up .venv with every extra and run the whole test suite (lint included)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
PYTEST_ARGS ?=

.PHONY: help setup setup-all run test lint format bench clean

help:
	@echo "make run    - set up churnops + DVC and run the pipeline on the embedded data (workspace: $(DEMO)/)"
	@echo "make test   - set up churnops with every extra and run the whole test suite"
	@echo "make bench  - run the benchmarks in benchmarks/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs churnops and DVC only (about 110 packages, 800 MB, 2 minutes on a fresh machine).
$(BIN)/.installed-run: pyproject.toml | $(BIN)/python
	@echo "Installing churnops and DVC into $(VENV) (about 110 packages, 800 MB, about 2 minutes)..."
	$(BIN)/python -m pip install --progress-bar on -e '.[dvc]'
	touch $@

# The test suite uses every extra (Evidently, MLflow, Dask, the test tools: about 220 packages,
# 5-8 minutes on a fresh machine).
$(BIN)/.installed-all: pyproject.toml | $(BIN)/python
	@echo "Installing churnops with every extra and the test tools into $(VENV) (about 220 packages, 1.8 GB, 5-8 minutes)..."
	$(BIN)/python -m pip install --progress-bar on -e '.[all,dev]'
	touch $@ $(BIN)/.installed-run

setup: $(BIN)/.installed-run

setup-all: $(BIN)/.installed-all

run: setup
	$(BIN)/churnops demo $(DEMO)
	@echo ""
	@echo "Open the report: $(DEMO)/monitoring/monitoring_report.html"

lint: setup-all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src/churnops/__init__.py src/churnops/api.py

test: lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

format: setup-all
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup-all
	$(BIN)/python benchmarks/bench_monitor.py

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
