# churnops - two commands for a fresh Linux machine with Python 3.10+ and make:
#   make run    set up .venv with churnops and DVC, and run the whole pipeline on the embedded data
#               in ./demo (its own git repository and DVC remote: nothing is committed in this clone)
#   make test   set up .venv with every extra and run the whole test suite (lint included)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
PYTEST_ARGS ?=

.PHONY: help setup setup-all run test lint format bench docs docs-serve clean

help:
	@echo "make run    - set up churnops + DVC and run the pipeline on the embedded data (workspace: $(DEMO)/)"
	@echo "make test   - set up churnops with every extra and run the whole test suite"
	@echo "make bench  - run the benchmarks in benchmarks/"
	@echo "make docs   - build the documentation site into site/ (make docs-serve: on http://127.0.0.1:8000)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs churnops and DVC only (about 110 packages, 800 MB, 2 minutes on a fresh machine).
$(BIN)/.installed-run: pyproject.toml | $(BIN)/python
	@echo "Installing churnops and DVC into $(VENV) (about 110 packages, 800 MB, about 2 minutes)..."
	$(BIN)/python -m pip install --progress-bar on -e '.[dvc]'
	touch $@

# The test suite uses every extra (Evidently, MLflow, Dask, Spark, Prefect, the documentation tools, the
# test tools: about 340 packages, 6-9 minutes on a fresh machine).
$(BIN)/.installed-all: pyproject.toml | $(BIN)/python
	@echo "Installing churnops with every extra and the test tools into $(VENV) (about 340 packages, 3 GB, 6-9 minutes)..."
	$(BIN)/python -m pip install --progress-bar on -e '.[all,dev,docs,prefect]'
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

# The site: docs/cli.md is rewritten from the commands' --help and the notebook executed first.
docs: setup-all
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: setup-all
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

bench: setup-all
	$(BIN)/python benchmarks/bench_monitor.py

clean:
	rm -rf $(DEMO) site .pytest_cache .ruff_cache
