"""The notebooks as documents: structure, Colab bootstrap, and what their outputs may hold.
(Their cells are executed and checked by nbval in the same `make test` run.)"""

import itertools
import os
import re
import runpy
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from helpers._colab import BOOTSTRAP_CELL, COLAB_PROJECT_DIR, REPOSITORY_URL, badge_url
from helpers._settings import PROJECT_ROOT, SECRET_NAMES

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
MACHINE_PATHS = re.compile(r"/work/|/root/|/home/\w+|/tmp/\w|/private/var/|[A-Z]:\\\\Users")
CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@|ApiKey [A-Za-z0-9+/=]{8,}|(api_key|password)['\"]?\s*[:=]\s*['\"]\w")


def cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def outputs_text(path: Path) -> str:
    texts = []
    for cell in cells(path):
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts += [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
            texts += output.get("traceback", [])
    return "\n".join(t if isinstance(t, str) else "".join(t) for t in texts)


def test_the_guide_and_beyond_have_seven_notebooks_in_order() -> None:
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_", "07_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_introduced_and_short(path: Path) -> None:
    all_cells = cells(path)
    first = all_cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "What you will do" in first.source and "What you need" in first.source
    for before, cell in itertools.pairwise(all_cells):
        if cell.cell_type == "code":
            assert before.cell_type == "markdown", f"code cell without an introduction: {cell.source[:60]!r}"
            heading, *prose = before.source.split("\n", 1)
            assert heading.startswith("## ") and prose and prose[0].strip(), f"no heading and sentence: {heading!r}"
            code = [line for line in cell.source.splitlines() if not line.startswith("# NBVAL_")]
            assert len(code) <= 16 or "Colab bootstrap" in cell.source
    assert all_cells[-2].source.startswith("## Clean up") and "es.close()" in all_cells[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_one_bootstrap(path: Path) -> None:
    """`python helpers/_colab.py write-bootstrap` writes it; nobody edits it by hand."""
    bootstrap = next(c for c in cells(path) if c.cell_type == "code").source
    assert bootstrap == BOOTSTRAP_CELL, f"{path.name}: run `python helpers/_colab.py write-bootstrap`"
    assert f'REPOSITORY_URL = "{REPOSITORY_URL}"' in bootstrap
    assert f'COLAB_PROJECT_DIR = "{COLAB_PROJECT_DIR}"' in bootstrap


GUIDE_CALLS = {
    "02_embed_and_index.ipynb": ["Roboflow(", "Clip(", ".embed_image(", ".embed_text(", "bulk(", '"_op_type"'],
    "03_search_by_text.ipynb": ["es.search(", "knn={", 'query={"knn"', "sv.plot_images_grid("],
    "04_search_by_image.ipynb": ["es.search(", 'query={"knn"', "sv.plot_images_grid(", 'fields=["image_vector"]'],
}
# Each helper may appear only after the guide's call it wraps has been shown (in series order).
WRAPS = {
    "helpers.embedder_for(": "Clip(",
    "helpers.index_folder(": "bulk(",
    "helpers.search_text(": "es.search(",
    "helpers.search_image(": "es.search(",
    "helpers.search_similar(": 'fields=["image_vector"]',
    "helpers.plot_hits(": "sv.plot_images_grid(",
}


def code_of(path: Path) -> str:
    return "\n".join(c.source for c in cells(path) if c.cell_type == "code")


@pytest.mark.parametrize("name", sorted(GUIDE_CALLS))
def test_the_guides_calls_appear_in_code_cells_before_the_helpers_that_wrap_them(name: str) -> None:
    code = code_of(PROJECT_ROOT / "notebooks" / name)
    for call in GUIDE_CALLS[name]:
        assert call in code, f"{name} does not show {call}"
    series = "\n".join(code_of(path) for path in NOTEBOOKS if path.name <= name)
    for helper, wrapped in WRAPS.items():
        if helper in series:
            assert wrapped in series and series.index(wrapped) < series.index(helper), f"{helper} before {wrapped}"


def test_notebook_01_shows_the_client_the_mapping_and_a_clean_up_that_cannot_fail() -> None:
    code = code_of(NOTEBOOKS[0])
    assert "Elasticsearch(settings.elasticsearch_url, api_key=" in code and "Elasticsearch(cloud_id=" in code
    assert '"type": "dense_vector"' in code and "ignore_unavailable=True" in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_has_its_colab_badge_and_names_the_whole_series(path: Path) -> None:
    title = cells(path)[0].source
    assert badge_url(path.name) in title
    assert "01 create the index → 02 embed and index" in title.replace("**", "")
    assert "05 beyond the guide → 06 evaluate" in title.replace("**", "")


INFERENCE_PRINTS = re.compile(r"Creating inference sessions|CLIP model loaded in|ExecutionProvider|Warning:")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_hold_no_library_prints_warnings_or_text_progress_bars(path: Path) -> None:
    for cell in cells(path):
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"stderr output in {path.name}: {output.get('text', '')[:80]!r}"
            text = output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
            assert not INFERENCE_PRINTS.search(text), INFERENCE_PRINTS.search(text).group(0)
            assert "\r" not in text and "it/s]" not in text and "img/s]" not in text


def test_readme_links_every_notebook_to_colab() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert badge_url(path.name) in readme, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_hold_no_secrets_or_machine_paths(path: Path) -> None:
    text = outputs_text(path)
    assert text.strip(), "the notebook was committed without outputs: run `make notebooks`"
    assert not MACHINE_PATHS.search(text), MACHINE_PATHS.search(text).group(0)
    assert not CREDENTIALS.search(text)
    for name in SECRET_NAMES:
        if os.environ.get(name):
            assert os.environ[name] not in text
    assert all(c.get("outputs", []) == [] or "error" not in {o["output_type"] for o in c.outputs} for c in cells(path))


def test_bootstrap_clones_and_installs_on_colab_only(tmp_path: Path, monkeypatch) -> None:
    """Fake Colab: the first cell clones the project (from the address in the REPOSITORY_URL
    setting, here this checkout) and runs the install step; without Colab it does nothing."""
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("the bootstrap test clones this checkout, and this copy is not a git checkout")
    target = tmp_path / "project"
    source = BOOTSTRAP_CELL.replace(COLAB_PROJECT_DIR, str(target))
    installs = []

    def run_path(path: str) -> dict:  # the installer, found in the clone, stands by
        return {"bootstrap": lambda: installs.append(str(Path(path).parent.parent))}

    monkeypatch.setattr(runpy, "run_path", run_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("REPOSITORY_URL", str(PROJECT_ROOT))

    exec(compile(source, "bootstrap", "exec"), {})  # not on Colab
    assert not target.exists() and installs == []

    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=lambda name: pytest.fail("the environment comes first"))
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", colab.userdata)
    exec(compile(source, "bootstrap", "exec"), {})
    assert (target / "helpers" / "__init__.py").is_file() and (target / "requirements.txt").is_file()
    assert installs == [str(target)] and sys.path[0] == str(target)
    origin = subprocess.run(["git", "-C", str(target), "remote", "get-url", "origin"], capture_output=True, text=True)
    assert origin.stdout.strip() == str(PROJECT_ROOT)

    exec(compile(source, "bootstrap", "exec"), {})  # a second notebook: no second clone, one sys.path entry
    assert installs == [str(target), str(target)] and sys.path.count(str(target)) == 1
