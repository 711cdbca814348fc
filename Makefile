# churnops - two commands for a fresh Linux machine with Python 3.10+ and make:
#   make run    set up .venv and run the whole pipeline on the embedded data, in ./demo (its own
#               git repository and DVC remote: nothing is committed in this clone)
#   make test   set up .venv and run the whole test suite (lint included)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
PYTEST_ARGS ?=

.PHONY: help setup run test lint format bench clean

help:
	@echo "make run    - set up and run the pipeline on the embedded data (workspace: $(DEMO)/)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make bench  - run the benchmarks in benchmarks/"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/churnops demo $(DEMO)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python benchmarks/bench_monitor.py

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
