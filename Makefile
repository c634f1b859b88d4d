# One virtual environment at .venv, created once and reused by every target.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench lint notebooks bootstrap-cell colab-check

setup: $(STAMP)

# requirements-dev.txt includes requirements.txt: the runtime lock plus the developer tools.
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

# Put the one Colab bootstrap cell (helpers/_colab.py) first in every notebook.
bootstrap-cell:
	$(PYTHON) helpers/_colab.py write-bootstrap

# The Colab rehearsal: a Python 3.13 runtime with Colab's package versions, built once under
# ~/.cache/clip-elasticsearch-image-search/colab-runtime/ (COLAB_RUNTIME_DIR; root, about 7 GB), then every notebook as a Colab user runs it, nbval,
# the restart, and the test suite on 3.13. See the README's "Colab" section.
colab-check:
	tests/colab/check.sh

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
