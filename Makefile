# `make demo` and `make test` are the contract: each installs what it needs on a fresh machine.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= python3

.PHONY: install demo test lint dev clean browser

install: $(STAMP)

# Bytecode for the editable packages, written once here: with PYTHONDONTWRITEBYTECODE set (as on
# this machine) nothing else writes it, and every sandboxed workflow run would compile the workflow
# module from source again. (pip compiles the non-editable dependencies itself.)
BYTECODE = $(PY) -m compileall -q charters devtools/charters_dev

$(STAMP): pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./devtools
	$(BYTECODE)
	touch $(STAMP)

demo: install
	$(VENV)/bin/charters demo --exit-when-done

dev: install
	$(VENV)/bin/charters dev

# Two processes, each test file whole in one (its module fixtures and its stack stay together).
TEST_WORKERS ?= 2
test: install browser
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

# Headless Chromium for tests/test_browser.py: Debian's package (Playwright's own browser download
# does not work here). Idempotent; without apt-get (or without root and sudo) it says so and the
# browser tests skip themselves.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "chromium: $(CHROMIUM) present"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium: $(CHROMIUM) missing and apt-get unavailable; browser tests will be skipped"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "chromium: $(CHROMIUM) missing and not root (no sudo); browser tests will be skipped"; exit 0; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium \
	  || echo "chromium: install failed; browser tests will be skipped"; \
	fi

lint: install
	$(VENV)/bin/ruff check charters devtools/charters_dev tests
	$(VENV)/bin/mypy charters devtools/charters_dev tests

clean:
	rm -rf $(VENV) .charters test-artifacts bench-results

# Chaos run on its own fresh stack: bookings through injected 5xx/throttle/reset/slow answers and
# kills of the Temporal server and of workers, a rolling deploy; every effect counted in the
# emulated systems; fails on a duplicate, a loss or a mismatch.
# Options: make chaos CHAOS_ARGS="--bookings 300 --kills 8 --server-kills 3 --workers 3 --seed 7"
.PHONY: chaos
chaos: install
	$(VENV)/bin/charters chaos $(CHAOS_ARGS)

# Latency/throughput bench on its own fresh stack (every external call delayed; C = 1, 10, 50);
# results in bench-results/<timestamp>.json and .png. The PNG needs the `bench` extra (matplotlib).
# Options: make bench BENCH_ARGS="--latency-ms 50 --concurrency 1 --bookings 20"
BENCH_STAMP := $(VENV)/.bench-installed
.PHONY: bench
bench: $(BENCH_STAMP)
	$(VENV)/bin/charters bench $(BENCH_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e './devtools[bench]'
	$(BYTECODE)
	touch $(BENCH_STAMP)
