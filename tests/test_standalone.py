"""Every notebook stands alone, as its Colab badge opens it: a fresh clone, a fresh kernel, an
empty engine folder and no data set on disk. It runs to the end with no error and no stderr,
and shows what its committed outputs show: the notebooks that need the tutorial index build it
and say so in one extra line, nothing else differs.

And an `images` index that is wrong for the notebooks (made for another model, or guessed by
Elasticsearch from a first document) ends each notebook that reads it in one line that says
what to do, never a traceback."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbval.plugin import coalesce_streams, get_sanitize_patterns

from embedded_es import embedded_client
from embedded_es.node import close_store
from helpers._settings import PROJECT_ROOT
from tests.support.nbval_env import NOTEBOOK_ENV, shown_text, unchecked

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
# The one line a notebook adds when it runs alone, by notebook (the others add none).
ALONE_SAYS = {
    "02_embed_and_index.ipynb": "Created index 'images' with notebook 01's mapping",
    "03_search_by_text.ipynb": "Index 'images' is missing, as in a runtime that has not run notebook 02",
    "04_search_by_image.ipynb": "Index 'images' is missing, as in a runtime that has not run notebook 02",
    "07_find_the_object.ipynb": "Index 'images' is missing, as in a runtime that has not run notebook 02",
}
READS_THE_INDEX = sorted(ALONE_SAYS)


# nbval's masks (tests/support/nbval_sanitize.cfg), read and applied the way nbval reads and applies them.
MASKS = get_sanitize_patterns((PROJECT_ROOT / "tests" / "support" / "nbval_sanitize.cfg").read_text())


def masked(text: str) -> str:
    for pattern, replacement in MASKS:
        text = re.sub(pattern, replacement, text)
    return text


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a clone holds: the files git tracks or would track (this checkout's edits included),
    without data sets, engine folders or caches, which git ignores."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    archive = tmp_path_factory.mktemp("snapshot") / "tree.tar"
    with tarfile.open(archive, "w") as tar:
        for name in filter(None, listed):
            if (PROJECT_ROOT / name).exists():
                tar.add(PROJECT_ROOT / name, arcname=name, recursive=False)
    return archive


def fresh_clone(snapshot: Path, where: Path) -> Path:
    with tarfile.open(snapshot) as tar:
        tar.extractall(where, filter="tar")
    return where


def run_alone(clone: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run all, in a fresh kernel started in the clone's notebooks folder, importing the
    clone's `helpers`, with the regression run's offline settings. Stops at the first error."""
    for variable, value in NOTEBOOK_ENV.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("PYTHONPATH", str(clone))
    for variable in ("EMBEDDING_CACHE_PATH", "DATASETS_PATH"):  # the clone's own, empty
        monkeypatch.delenv(variable, raising=False)
    notebook = nbformat.read(clone / "notebooks" / name, as_version=4)
    client = NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(clone / "notebooks")}})
    with contextlib.suppress(CellExecutionError):  # the error output is in the notebook, for the caller
        client.execute()
    return notebook


def code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_each_notebook_runs_alone_in_a_fresh_clone(
    name: str, snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = fresh_clone(snapshot, tmp_path / "clone")
    assert not (clone / NOTEBOOK_ENV["EMBEDDED_ES_PATH"]).exists() and not (clone / "data" / "demo").exists()
    live = run_alone(clone, name, monkeypatch)
    committed = nbformat.read(PROJECT_ROOT / "notebooks" / name, as_version=4)
    extra = ALONE_SAYS.get(name)
    for ran, stored in zip(code_cells(live), code_cells(committed), strict=True):
        seen = [masked(text) for text in shown_text(coalesce_streams(ran.outputs))]
        assert not any(text.startswith(("error:", "stderr:")) for text in seen), f"{ran.source[:60]!r}: {seen}"
        if unchecked(ran.source):
            continue
        expected = [masked(text) for text in shown_text(coalesce_streams(stored.outputs))]
        if extra and seen and seen[0].startswith(f"stdout: {extra}"):
            rest = seen[0].partition("\n")[2]
            seen = [rest, *seen[1:]] if rest else seen[1:]
            extra = None  # said once
        assert seen == expected, f"{name}, cell {ran.source[:60]!r}"
    assert extra is None, f"{name} never said why it built the index"


def wrong_index(engine: Path, kind: str) -> None:
    """An `images` index a learner may meet on a configured cluster: one that Elasticsearch
    created from a first document (dynamic mapping), or one made for another CLIP model while
    CLIP_MODEL asks for the demo model (the regression run's setting)."""
    es = embedded_client(engine)
    if kind == "guessed":
        es.index(index="images", document={"filename": "a.jpg", "labels": ["cup"], "image_vector": [0.5] * 512})
    else:
        vector = {"type": "dense_vector", "dims": 768, "index": True, "similarity": "cosine"}
        mappings = {"_meta": {"model": "clip/ViT-L-14", "mapping_version": 2}, "properties": {"image_vector": vector}}
        es.indices.create(index="images", mappings=mappings)
    es.close()
    close_store(engine)  # the notebook's kernel opens it next


@pytest.mark.parametrize("kind", ["guessed", "another model"])
@pytest.mark.parametrize("name", READS_THE_INDEX)
def test_a_wrong_index_ends_the_notebook_in_one_line_that_says_what_to_do(
    name: str, kind: str, snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = fresh_clone(snapshot, tmp_path / "clone")
    wrong_index(clone / NOTEBOOK_ENV["EMBEDDED_ES_PATH"], kind)
    live = run_alone(clone, name, monkeypatch)
    errors = [output for cell in live.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert len(errors) == 1, f"{name} ran on with a wrong index"
    (error,) = errors
    assert error.ename == "IndexMismatch" and error.traceback == [f"IndexMismatch: {error.evalue}"]
    assert "\n" not in error.evalue and "INDEX_NAME" in error.evalue and "re-create" in error.evalue
    counts = embedded_client(clone / NOTEBOOK_ENV["EMBEDDED_ES_PATH"]).count(index="images")["count"]
    assert counts == (1 if kind == "guessed" else 0), "the notebook wrote into the wrong index"
    shutil.rmtree(clone)
