"""The notebooks' regression run: offline stand-ins, the embedded engine, a store of its own.

Loaded as a pytest plugin (pyproject.toml): each notebook's kernel starts with
`NOTEBOOK_ENV`, so `make test` never touches a user's cluster or index, and its checked
outputs do not depend on the network. `python -m tests.support.nbval_env` re-executes the notebooks
in the same environment and stores their outputs (`make notebooks`).
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from helpers._settings import DATA_DIR, PROJECT_ROOT
from tests.support import environment

ENGINE_DIR = DATA_DIR / "nbval-engine"
NOTEBOOK_ENV = {
    "CLIP_MODEL": "demo",
    "ELASTICSEARCH_URL": "",  # empty hides a cluster configured in the environment or .env
    "ELASTIC_CLOUD_ID": "",
    "INFERENCE_SERVER_URL": "",  # the regression run embeds in process, whatever .env says
    "EMBEDDED_ES_PATH": str(ENGINE_DIR.relative_to(PROJECT_ROOT)),
    "INDEX_NAME": "images",
    "PYTHONHASHSEED": "0",
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_saved_env: dict[str, str] = {}


def enter() -> None:
    """Start from an empty store, as a learner on a fresh clone does."""
    shutil.rmtree(ENGINE_DIR, ignore_errors=True)
    _saved_env.update(os.environ)
    os.environ.update(NOTEBOOK_ENV)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the first notebook cell's kernel starts: switch to the notebook environment."""
    if item.path.parent == PROJECT_ROOT / "notebooks" and not _saved_env:  # not a test's own notebook
        enter()


def shown_text(outputs: list) -> list[str]:
    """What a reader sees as text: streams and the text of results (pictures and widgets aside)."""
    texts = []
    for output in outputs:
        kind, data = output.get("output_type"), output.get("data", {})
        if kind == "stream":
            texts.append(f"{output['name']}: {output['text']}")
        elif kind == "error":
            texts.append(f"error: {output['ename']}")
        elif "text/plain" in data and WIDGET_VIEW not in data and "image/png" not in data:
            texts.append(data["text/plain"])
    return texts


def unchecked(source: str) -> bool:
    """Cells whose text is not compared: the Colab bootstrap (on Colab it says what it cloned and
    installed, elsewhere nothing) and measurements marked `# NBVAL_IGNORE_OUTPUT` (kNN recall on
    a graph, which another CPU may build a little differently). They still run, and an error fails."""
    return source.startswith(("# Colab bootstrap", "# NBVAL_IGNORE_OUTPUT"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Every cell, checked or not, shows the text its committed outputs hold (after the same
    masks): what a learner sees live is what the notebook shows, but for the `unchecked` cells."""
    result = yield
    live = getattr(item, "test_outputs", None)
    source = item.cell.source if hasattr(item, "cell") else ""
    if item.path.suffix == ".ipynb" and live is not None and not unchecked(source):
        from nbval.plugin import coalesce_streams

        seen = [item.sanitize(text) for text in shown_text(live)]
        committed = [item.sanitize(text) for text in shown_text(coalesce_streams(item.cell.outputs))]
        assert seen == committed, f"the cell shows {seen!r} live, but its committed outputs hold {committed!r}"
    return result


def leave() -> None:
    """Back to the environment the tests had, for whatever runs after the notebooks."""
    if _saved_env:
        os.environ.clear()
        os.environ.update(_saved_env)
        _saved_env.clear()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last notebook cell (with two workers, other tests may follow on this one)."""
    if item.path.suffix == ".ipynb" and (nextitem is None or nextitem.path.suffix != ".ipynb"):
        leave()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With two workers (make test), the notebooks run in guide order on one of them, and so do the
    other tests that execute the notebooks in place (they share the notebooks' engine folder)."""
    for item in items:
        if item.path.suffix == ".ipynb" or item.get_closest_marker("notebooks_in_place"):
            item.add_marker(pytest.mark.xdist_group("notebooks"))


def pytest_unconfigure(config: pytest.Config) -> None:
    leave()


def execute_in_place() -> None:
    """Run every notebook in order, each in a fresh kernel, and store the outputs."""
    import nbformat
    from nbclient import NotebookClient

    environment.apply()
    enter()
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in notebook.cells:
            cell.metadata.pop("execution", None)  # timestamps would make every refresh a diff
            for output in cell.get("outputs", []):  # a widget's text fallback is a frozen text bar
                if WIDGET_VIEW in output.get("data", {}):
                    output["data"].pop("text/plain", None)
        nbformat.write(notebook, path)
        print(f"executed {path.relative_to(PROJECT_ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    execute_in_place()
