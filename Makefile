# Conveyor — two commands do all set-up on a fresh machine:
#   make demo   runs the main job       make test   runs the tests
# Each bootstraps .venv from the pinned lock (requirements.lock) when missing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-from-lock
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-from-lock

# Conveyor's own processes send no usage telemetry (MLflow 3 and DVC do by default).
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

.PHONY: demo test test-tools lint typecheck imports pytest bench lock clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found (set PYTHON=python3.11 or newer)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/conveyor demo

test: $(STAMP) test-tools lint typecheck imports pytest

# Debian packages the tests drive for real: promtool (/metrics), Chromium (the operations page's browser
# test), PostgreSQL (the shared state store and MLflow's backend store), HAProxy (replicas behind a load
# balancer). Installed when missing and running as root; otherwise the tests that need them are skipped.
DEBIAN_TOOLS := promtool=prometheus chromium=chromium '/usr/lib/postgresql/*/bin/initdb=postgresql' haproxy=haproxy

test-tools:
	@scripts/ensure-debian-tools $(DEBIAN_TOOLS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

# The import contracts in pyproject.toml ([tool.importlinter]): the layers of docs/architecture.md,
# serving ⟂ deploy, no private cross-package imports, no package cycles.
imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

pytest: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -n 2 --dist loadgroup -q

$(BENCH_STAMP): requirements-bench.lock pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.lock
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(BENCH_STAMP)

# Every benchmark in turn; each one's output replaces its block in docs/benchmarks.md.
bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  timeout 300 apt-get install -y -q wrk >/dev/null 2>&1; } || true
	PATH="$(CURDIR)/$(BENCH_VENV)/bin:$$PATH" $(BENCH_VENV)/bin/python -m benchmarks --record

# Re-pin the lock from pyproject.toml (needs the package registry).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^conveyor' > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
