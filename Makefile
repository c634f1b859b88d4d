# One virtual environment at .venv, created once and reused by every target.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench lint notebooks

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The project itself, editable: notebooks in notebooks/ then import helpers from anywhere.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m helpers demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

# Re-execute the notebooks offline, in order, and store their outputs (what nbval compares to).
notebooks: $(STAMP)
	$(PY) -m tests.nbval_env

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
