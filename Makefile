# Everything runs from .venv, which the targets below create on first use from the hash-pinned
# locks in requirements/ (only python3 3.11 must exist). See scripts/bootstrap.sh.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

export PYTHON ?= python3
export VENV := .venv
BIN := $(VENV)/bin

# Pass-through arguments, e.g. make test PYTEST_ARGS='-k gateway -x'
PYTEST_ARGS ?=
SERVE_ARGS ?=
BENCH_ARGS ?=
# e.g. make lock LOCK_ARGS=--upgrade   or   LOCK_ARGS='--upgrade-package ruff'
LOCK_ARGS ?=
# In CI, don't write .pytest_cache into the clone.
PYTEST_FLAGS ?= $(if $(filter true 1,$(CI)),-p no:cacheprovider)

# Where the CPU build of torch (torch-2.13.0+cpu) lies; recorded in the locks as --find-links.
WHEELS ?= /opt/wheels
LOCK_FLAGS := --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
              --no-emit-index-url --find-links=$(WHEELS) $(LOCK_ARGS)

.PHONY: help .venv venv venv-dev run test lint bench bench-flows lock clean distclean

help:
	@echo "make run      bootstrap .venv from requirements/run.txt, then 'interlace serve \$$SERVE_ARGS'"
	@echo "make test     bootstrap .venv from requirements/dev.txt, then pytest \$$PYTEST_ARGS"
	@echo "make lint     ruff check + mypy"
	@echo "make bench    python bench/run.py \$$BENCH_ARGS"
	@echo "make bench-flows  python bench/flows.py \$$BENCH_FLOWS_ARGS (NATS flow vs bare nats-py)"
	@echo "make lock     regenerate requirements/run.txt and dev.txt (LOCK_ARGS=--upgrade to upgrade)"
	@echo "make venv     just bootstrap .venv (runtime); make venv-dev for the dev tool chain"
	@echo "make clean    remove caches and build artefacts; make distclean also removes .venv"

.venv venv:
	@scripts/bootstrap.sh run

venv-dev:
	@scripts/bootstrap.sh dev

run: venv
	exec $(BIN)/interlace serve $(SERVE_ARGS)

test: venv-dev
	@echo "+ pytest $(PYTEST_FLAGS) $(PYTEST_ARGS)"; \
	rc=0; $(BIN)/pytest $(PYTEST_FLAGS) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): counted as a failure" >&2; fi; \
	exit $$rc

lint: venv-dev
	@rc=0; \
	echo "+ ruff check ."; $(BIN)/ruff check . || rc=1; \
	echo "+ mypy"; $(BIN)/mypy || rc=1; \
	exit $$rc

bench: venv-dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-flows: venv-dev
	$(BIN)/python bench/flows.py $(BENCH_FLOWS_ARGS)

# run.txt first; dev.txt is then held to run.txt's versions with -c. The dev venv only provides
# pip-compile here, so it is installed without the lock-vs-pyproject check (which would fail on a stale lock).
lock:
	@scripts/bootstrap.sh dev --no-verify
	@echo "locking requirements/run.txt (hashing every file; takes a few minutes)…"
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra local -o requirements/run.txt pyproject.toml
	@echo "locking requirements/dev.txt…"
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra local --extra dev -c requirements/run.txt -o requirements/dev.txt pyproject.toml
	@grep -q '^torch==2.13.0+cpu ' requirements/run.txt || { echo "lock: torch did not resolve to the local 2.13.0+cpu wheel in $(WHEELS)" >&2; exit 1; }

clean:
	rm -rf build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
