# Process Atlas: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test test-fast lint format typecheck migrate seed bench fuzz scale-demo validate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev extra

run: $(STAMP) ## run the API (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/python -m app serve

test: $(STAMP) ## run the whole test suite in parallel
	$(BIN)/pytest -n auto -q

test-fast: $(STAMP) ## run the suite in one process, stopping at the first failure
	$(BIN)/pytest -x -q

lint: $(STAMP) ## ruff (lint and format check) and mypy strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

migrate: $(STAMP) ## apply database migrations
	$(BIN)/python -m app migrate

seed: $(STAMP) ## load the demo organisation
	$(BIN)/python -m app seed --demo

fuzz: $(STAMP) ## schema fuzzing with many more generated requests (FUZZ_EXAMPLES, default 300)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/pytest -q -n auto tests/reliability/test_fuzz.py

scale-demo: $(STAMP) ## two instances behind HAProxy through PgBouncer (docs/scaling.md)
	$(BIN)/python docker/scale/demo.py

bench: $(STAMP) ## benchmark with locust (see docs/benchmarks.md; BENCH_ARGS="--scenario reference" to choose)
	$(BIN)/python locust/bench.py $(BENCH_ARGS)

validate: $(STAMP) ## validate Dockerfiles, compose files, Kubernetes manifests, Prometheus config and rules offline
	bash docker/validate.sh
	bash docker/kubernetes/validate.sh
	bash prometheus/check.sh

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
