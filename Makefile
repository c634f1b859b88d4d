# One virtual environment at .venv, created once and reused by every target.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench lint notebooks bootstrap-cell colab-check browser-check ort-check

setup: $(STAMP)

# requirements-dev.txt includes requirements.txt: the runtime lock plus the developer tools.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# The project itself, editable: notebooks in notebooks/ then import helpers from anywhere.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m helpers demo

# Two workers on the two cores: the notebooks in guide order on one, the rest spread over both.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

bench: $(STAMP)
	$(PY) -m bench

# Re-execute the notebooks offline, in order, and store their outputs (what nbval compares to).
notebooks: $(STAMP)
	$(PY) -m tests.support.nbval_env

# Put the one Colab bootstrap cell (helpers/_colab.py) first in every notebook.
bootstrap-cell:
	$(PYTHON) helpers/_colab.py write-bootstrap

# The Colab rehearsal: a Python 3.13 runtime with Colab's package versions, built once under
# ~/.cache/clip-elasticsearch-image-search/colab-runtime/ (COLAB_RUNTIME_DIR; root, about 7 GB), then every notebook as a Colab user runs it, nbval,
# the restart, and the test suite on 3.13. See docs/colab.md.
colab-check:
	tests/support/colab/check.sh

# JupyterLab in Debian's Chromium, as a learner sees it: every notebook run in the browser, and
# the search widget answering a typed query, an upload and "more like this" (tests/support/browser_check.py).
browser-check: $(STAMP)
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(PY) -m tests.support.browser_check

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The notebook suite, committed outputs compared, under three ONNX Runtime configurations that
# round the same model differently, as another CPU would (tests/support/ort_session/sitecustomize.py):
# a stored output that changes between them depends on digits no reader needs.
ort-check: $(STAMP)
	$(PY) -m tests.support.environment ort-check
