# Process Atlas: every target installs what it needs into .venv first; `make` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet
# Pinned with hashes by `make lock`: running needs the runtime and the embedded servers,
# developing needs everything. A stamp per lock file records what .venv holds.
RUN_LOCK := requirements/embedded.txt
DEV_LOCK := requirements/dev.txt
RUN_STAMP := $(VENV)/.installed-run-$(shell cat pyproject.toml $(RUN_LOCK) | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat pyproject.toml $(DEV_LOCK) | cksum | cut -d' ' -f1)
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' --quiet $(UPGRADE)

.DEFAULT_GOAL := help
.PHONY: help install run dev test test-fast lint format typecheck lock migrate seed bench fuzz scale-demo pgbouncer \
	validate up down clean

help: ## list the targets (the default goal)
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^#]*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(RUN_STAMP): pyproject.toml $(RUN_LOCK) | $(BIN)/python
	$(PIP) install --require-hashes -r $(RUN_LOCK)
	$(PIP) install --no-deps -e .
	rm -f $(VENV)/.installed-run-* && touch $@

# The dev lock holds the run lock's pins (`make lock` derives one from the other), so it
# satisfies the run stamp too.
$(DEV_STAMP): pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(PIP) install --require-hashes -r $(DEV_LOCK)
	$(PIP) install --no-deps -e .
	rm -f $(VENV)/.installed-run-* $(VENV)/.installed-dev-* && touch $@ $(RUN_STAMP)

install: $(DEV_STAMP) ## create .venv with everything pinned in requirements/dev.txt

run: $(RUN_STAMP) ## run the API as in production: 2 workers, JSON logs (embedded servers unless DATABASE_URL/REDIS_URL)
	$(BIN)/python -m app serve

dev: $(RUN_STAMP) ## run the API for development: one worker, reloaded when app/ changes, readable logs
	LOG_JSON=$${LOG_JSON:-false} exec $(BIN)/python -m app serve --reload

test: $(DEV_STAMP) ## run the whole test suite in parallel
	$(BIN)/pytest -n auto -q

test-fast: $(DEV_STAMP) ## run the suite in one process, stopping at the first failure
	$(BIN)/pytest -x -q

lint: $(DEV_STAMP) ## every pre-commit hook on every tracked file: ruff, ruff format, mypy, import-linter, yamllint, hadolint
	$(BIN)/pre-commit run --all-files

format: $(DEV_STAMP) ## format with ruff and apply its safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(DEV_STAMP) ## mypy strict on app/
	$(BIN)/mypy

lock: $(DEV_STAMP) ## re-pin requirements/*.txt from pyproject.toml (asks PyPI; UPGRADE=--upgrade or UPGRADE="--upgrade-package NAME")
	$(LOCK) -o requirements/runtime.txt
	$(LOCK) --extra embedded -c requirements/runtime.txt -o requirements/embedded.txt
	$(LOCK) --extra dev -c requirements/embedded.txt -o requirements/dev.txt

migrate: $(RUN_STAMP) ## apply database migrations
	$(BIN)/python -m app migrate

seed: $(RUN_STAMP) ## load the demo organisation
	$(BIN)/python -m app seed --demo

fuzz: $(DEV_STAMP) ## schema fuzzing with many more generated requests (FUZZ_EXAMPLES, default 300)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/pytest -q -n auto tests/reliability/test_fuzz.py

scale-demo: $(DEV_STAMP) ## two instances behind HAProxy through PgBouncer (docs/scaling.md)
	$(BIN)/python docker/scale/demo.py

pgbouncer: ## build PgBouncer >= 1.21 from Debian's source into .data/pgbouncer (apt-get of build deps needs root)
	bash docker/scale/pgbouncer.sh

bench: $(DEV_STAMP) ## benchmark with locust (see docs/benchmarks.md; BENCH_ARGS="--scenario reference" to choose)
	$(BIN)/python locust/bench.py $(BENCH_ARGS)

validate: $(DEV_STAMP) ## validate Dockerfiles, compose files, Kubernetes manifests, Prometheus config and rules offline
	bash docker/validate.sh
	bash docker/kubernetes/validate.sh
	bash prometheus/check.sh

up: ## start the development stack of compose.yaml in Docker: API on :8000, Grafana on :3000
	docker compose up --build -d

down: ## stop that stack (its volumes stay: `docker compose down -v` drops them)
	docker compose down

clean: ## delete .venv, the embedded servers' data (.data) and the tool caches
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
