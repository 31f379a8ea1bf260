# The two commands: `make dev` and `make test` (a fresh clone needs only python3.12 and make).
PYTHON ?= python3.12
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/python -m dev

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python -m bench.imports
