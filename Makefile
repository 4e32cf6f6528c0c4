# BioProcessML — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.9.30
# CPU-only torch: pip's configured find-links dir holds the CPU wheel on these machines.
FIND_LINKS ?= $(shell pip config get global.find-links 2>/dev/null)
UV_FLAGS := --python $(BIN)/python --compile-bytecode $(if $(FIND_LINKS),--find-links $(FIND_LINKS),)
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup lock lint test test-slow test-fast demo up stop bench clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(BIN)/activate: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip sync $(UV_FLAGS) requirements.lock
	$(BIN)/uv pip install $(UV_FLAGS) --no-deps -e .
	touch $(BIN)/activate

setup: $(BIN)/activate ## Create .venv from the lock (CPU-only torch)

lock: ## Re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 $(if $(FIND_LINKS),--find-links $(FIND_LINKS),) -o requirements.lock

lint: setup ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup lint ## Set up, lint and run the test suite (all but the slow campaign test)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup ## The slow campaign test: a short demo through the real servers (~8 min)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

test-fast: setup ## Unit and data tests only
	$(BIN)/pytest -m "unit or data" $(PYTEST_ARGS)

demo: setup ## Set up and run the demo campaign
	$(BIN)/bioprocessml demo

up: setup ## Start Prefect server, deployments, worker and watcher (state in .bioprocessml/)
	$(BIN)/bioprocessml up

stop: ## Stop everything `make up` / `make demo` started
	@if [ -x $(BIN)/bioprocessml ]; then $(BIN)/bioprocessml down; fi

bench: setup ## Run the benchmarks; results in benchmarks/results/
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/validation.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/serving.py

clean: ## Remove the venv and local state
	rm -rf $(VENV) .bioprocessml
