# Every target the README names. The venv lives in .venv; `make install` (re)creates it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: help install dev test test-fast test-cluster lint typecheck check bench images chart-readme cluster cluster-down clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Every dependency, test and dev tool at the exact, hash-checked version of requirements/dev.txt
# (scripts/lock.sh writes it from pyproject.toml), then the project itself on top.
$(BIN)/queue-worker: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/queue-worker  ## create .venv and install the project with its locked dev/test tools

dev: install  ## run the API and one worker on SQLite; open http://localhost:$(PORT)
	$(BIN)/queue-worker dev --port $(PORT)

test: install  ## install what the tests need (Chromium, Postgres check) and run every test
	./scripts/test-deps.sh
	$(BIN)/pytest --ignore=tests/cluster

test-cluster: install  ## the Kubernetes tests: against $$KUBECONFIG, or a local cluster brought up and down
	./scripts/test-deps.sh
	./scripts/test-cluster.sh

test-fast: install  ## seconds: unit tests and the API in process on SQLite (no Postgres, no browser)
	$(BIN)/pytest tests/unit -q

lint: install  ## ruff format check and lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install  ## mypy --strict
	$(BIN)/mypy

check: lint typecheck  ## everything CI checks before the tests

bench: install  ## benchmarks; results in bench/results/ (BENCH_ARGS=--quick for a short run)
	./scripts/bench-deps.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

images:  ## build both container images (see docs/kubernetes.md)
	./scripts/images.sh

chart-readme: install  ## regenerate charts/queue-worker/README.md from values.yaml (a test fails when stale)
	$(BIN)/python scripts/chart-readme.py

cluster: install  ## a local Kubernetes 1.34 built from the upstream modules; KUBECONFIG=.cluster/kubeconfig
	./deploy/local-cluster/up.sh

cluster-down:  ## stop the local cluster (exactly the processes `make cluster` started)
	./deploy/local-cluster/down.sh

clean:  ## remove the venv, caches and the dev SQLite file
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dbos_queue_worker.sqlite*
