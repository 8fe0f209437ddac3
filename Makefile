# `make demo` and `make test` are the contract: each installs what it needs on a fresh machine.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTHON  ?= python3

.PHONY: install demo test lint dev clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/charters demo --exit-when-done

dev: install
	$(VENV)/bin/charters dev

test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check charters tests
	$(VENV)/bin/mypy charters

clean:
	rm -rf $(VENV) .charters test-artifacts bench-results
