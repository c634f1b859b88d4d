"""Colab: what the bootstrap installs (only what Colab lacks), when it restarts the runtime, and
how the requirements files divide the work. The bootstrap itself runs for real in
`make colab-check` (tests/support/colab/), in a runtime with Colab's Python and package versions."""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import helpers._colab as colab
from helpers._colab import BOOTSTRAP_CELL, Change
from helpers._settings import PROJECT_ROOT
from tests.support.colab import pins

NEVER_ON_COLAB = {"jupyterlab", "nbval", "pytest", "ruff", "onnx", "noida-db"}
# Colab's own, kept: the bootstrap must never name them.
COLAB_KEEPS = {"torch", "torchvision", "numpy", "matplotlib", "pillow", "ipywidgets", "opencv-python", "pydantic"}


def pinned(path: Path) -> dict[str, str]:
    """{normalised name: version} of a requirements file's `name==version` lines."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            found[colab.normalise(name)] = version
    return found


def test_the_bootstrap_installs_only_packages_colab_does_not_ship() -> None:
    wanted = {colab.normalise(n): v for n, v in colab.read_pins(PROJECT_ROOT / colab.COLAB_REQUIREMENTS).items()}
    colab_ships = pins.colab_versions()
    assert not set(wanted) & set(colab_ships), "Colab ships these: keep Colab's versions"
    assert not set(wanted) & (NEVER_ON_COLAB | COLAB_KEEPS)
    assert {"elasticsearch", "inference", "roboflow", "supervision", "onnxruntime"} <= set(wanted)


def test_the_bootstrap_installs_the_versions_make_setup_tests() -> None:
    wanted = {colab.normalise(n): v for n, v in colab.read_pins(PROJECT_ROOT / colab.COLAB_REQUIREMENTS).items()}
    lock = pinned(PROJECT_ROOT / "requirements.txt")
    assert all(wanted[name] == lock[name] for name in set(wanted) & set(lock))


def test_runtime_and_developer_requirements_are_split() -> None:
    runtime = pinned(PROJECT_ROOT / "requirements.txt")
    dev_file = (PROJECT_ROOT / "requirements-dev.txt").read_text()
    dev = pinned(PROJECT_ROOT / "requirements-dev.txt")
    assert not set(runtime) & NEVER_ON_COLAB
    assert "-r requirements.txt" in dev_file.splitlines() and set(dev) >= NEVER_ON_COLAB
    driver = pinned(PROJECT_ROOT / "tests" / "support" / "colab" / "driver-requirements.txt")
    assert driver.items() <= dev.items(), "the rehearsal's tools should be the developers' versions"


def test_declared_ranges_hold_the_lock_and_colabs_versions() -> None:
    """pyproject's ranges are the tested ones: the lock (`make test`) and Colab's own versions
    (`make colab-check`) both fall inside each of them."""
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    lock = pinned(PROJECT_ROOT / "requirements.txt")
    colab_ships = pins.colab_versions()
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = colab.normalise(requirement.name)
        assert name in lock, f"{name} is declared but not locked in requirements.txt"
        assert requirement.specifier.contains(lock[name]), f"the lock's {name} {lock[name]} is outside {line}"
        if name in colab_ships:
            assert requirement.specifier.contains(colab_ships[name]), f"Colab's {name} is outside {line}"
    assert project["requires-python"] == ">=3.11,<3.14"


def test_colab_package_list_is_read_with_torchs_download_urls() -> None:
    versions = pins.colab_versions()
    assert versions["torch"] == "2.11.0" and versions["torchvision"] == "0.26.0"
    assert versions["numpy"] == "2.1.3" and "google-colab" not in versions
    assert set(pins.wanted_names()) <= set(versions)


def fake_installed(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str], modules: dict[str, set[str]]) -> None:
    monkeypatch.setattr(colab, "installed_version", versions.get)
    monkeypatch.setattr(colab, "top_level_modules", lambda name: modules.get(name, set()))


def test_pending_changes_are_what_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_installed(monkeypatch, {"elasticsearch": "8.19.3", "supervision": "0.29.0"}, {})
    wanted = {"elasticsearch": "8.19.3", "supervision": "0.30.9", "roboflow": "1.7.3"}
    assert colab.pending_changes(wanted) == [
        Change("supervision", "0.29.0", "0.30.9"),
        Change("roboflow", None, "1.7.3"),
    ]
    assert str(Change("roboflow", None, "1.7.3")) == "roboflow 1.7.3 (added)"
    assert str(Change("supervision", "0.29.0", "0.30.9")) == "supervision 0.29.0 -> 0.30.9"


def test_only_a_replaced_package_the_kernel_imported_needs_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_installed(monkeypatch, {}, {"pillow": {"PIL"}, "supervision": {"supervision"}, "roboflow": {"roboflow"}})
    changes = [Change("pillow", "11.3.0", "12.3.0"), Change("supervision", "0.29.0", "0.30.9")]
    changes.append(Change("roboflow", None, "1.7.3"))
    loaded = {"PIL": None, "PIL.Image": None, "numpy": None, "roboflow": None}
    assert colab.stale_imports(changes, loaded) == ["pillow"]  # roboflow was added, not replaced
    assert colab.stale_imports(changes, {"numpy": None}) == []


def test_top_level_modules_of_a_real_distribution() -> None:
    assert "yaml" in colab.top_level_modules("pyyaml")
    assert "elasticsearch" in colab.top_level_modules("elasticsearch")
    assert colab.top_level_modules("no-such-distribution") == set()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / colab.COLAB_REQUIREMENTS).write_text("# a comment\nelasticsearch==8.19.3\nsupervision==0.30.9\n")
    return tmp_path


def test_second_run_installs_nothing(project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    fake_installed(monkeypatch, {"elasticsearch": "8.19.3", "supervision": "0.30.9"}, {})
    monkeypatch.setattr(colab, "pip_install", lambda changes: pytest.fail("nothing to install"))
    monkeypatch.chdir(project)
    assert colab.bootstrap(project) == []
    out = capsys.readouterr().out
    assert f"Project: {project} (cloned from" in out and "All 2 packages" in out and "in place" in out


def test_an_install_beside_what_the_kernel_imported_needs_no_restart(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    fake_installed(monkeypatch, {}, {"elasticsearch": {"elasticsearch"}, "supervision": {"supervision"}})
    installed = []
    monkeypatch.setattr(colab, "pip_install", installed.extend)
    monkeypatch.setattr(colab, "restart_runtime", lambda stale: pytest.fail("no restart needed"))
    monkeypatch.chdir(project)
    changes = colab.bootstrap(project)
    assert changes == installed == [Change("elasticsearch", None, "8.19.3"), Change("supervision", None, "0.30.9")]
    out = capsys.readouterr().out
    assert "Installed 2 packages" in out and "  elasticsearch 8.19.3 (added)" in out


def test_replacing_an_imported_package_restarts_or_says_what_to_click(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_installed(monkeypatch, {"elasticsearch": "8.19.3", "supervision": "0.29.0"}, {"supervision": {"supervision"}})
    monkeypatch.setattr(colab, "pip_install", lambda changes: None)
    monkeypatch.setitem(sys.modules, "supervision", object())
    monkeypatch.chdir(project)
    restarts = []
    monkeypatch.setattr(colab, "restart_runtime", restarts.append)
    with pytest.raises(SystemExit):  # restart_runtime kills the kernel; had it returned, stop anyway
        colab.bootstrap(project)
    assert restarts == [["supervision"]]
    with pytest.raises(
        SystemExit,
        match=r"^The kernel had imported supervision, .*: click Runtime > Restart session, then Runtime > Run all\.$",
    ):
        colab.bootstrap(project, restart=False)


def test_write_bootstrap_replaces_only_the_first_code_cell(tmp_path: Path) -> None:
    source = PROJECT_ROOT / "notebooks" / "01_create_index.ipynb"
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    notebook = json.loads(copy.read_text())
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    first["source"] = ["print('an old bootstrap')"]
    first["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["old\n"]}]
    copy.write_text(json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n")

    assert colab.write_bootstrap([copy]) == [copy]
    assert colab.write_bootstrap([copy]) == []  # idempotent
    assert copy.read_text() == source.read_text()  # the committed notebooks carry the same cell


def test_the_bootstrap_cell_is_valid_python_that_does_nothing_off_colab() -> None:
    assert "google.colab" not in sys.modules
    namespace = {}
    exec(compile(BOOTSTRAP_CELL, "bootstrap", "exec"), namespace)
    assert namespace["REPOSITORY_URL"] == colab.REPOSITORY_URL
    assert re.search(r"^# Colab bootstrap", BOOTSTRAP_CELL)


def test_the_colab_page_justifies_every_package_the_bootstrap_adds() -> None:
    page = (PROJECT_ROOT / "docs" / "colab.md").read_text()
    why = page[: page.index("## The Colab rehearsal")]
    for name in colab.read_pins(PROJECT_ROOT / colab.COLAB_REQUIREMENTS):
        assert f"`{name}`" in why, f"docs/colab.md does not say why the bootstrap adds {name}"


def test_the_setup_cell_says_where_the_index_lives_and_offers_google_drive(tmp_path: Path) -> None:
    """Without a cluster the index lives and dies with the runtime: said once, with the way to
    keep it (mount Drive); with Drive mounted, the two settings that point into it, ready to run;
    with them set, where the next runtime finds the index."""
    drive = tmp_path / "drive"
    unmounted = colab.where_the_index_lives({}, drive)
    assert "gone when the runtime is" in unmounted and "drive.mount(" in unmounted
    (drive / "MyDrive").mkdir(parents=True)
    offer = colab.where_the_index_lives({}, drive)
    engine, cache = drive / "MyDrive" / "clip-image-search" / "engine", "embeddings.sqlite"
    assert f"%env EMBEDDED_ES_PATH={engine}" in offer and f"%env EMBEDDING_CACHE_PATH={engine.parent / cache}" in offer
    kept = colab.where_the_index_lives({"EMBEDDED_ES_PATH": str(engine)}, drive)
    assert "next runtime finds it" in kept and "gone" not in kept


def test_settings_pointed_into_drive_keep_the_index_and_the_cache_there(tmp_path: Path, monkeypatch) -> None:
    """What the offer's two lines do: the settings take absolute paths, outside the project."""
    from helpers._settings import load_settings

    engine, cache = tmp_path / "MyDrive" / "engine", tmp_path / "MyDrive" / "embeddings.sqlite"
    monkeypatch.setenv("EMBEDDED_ES_PATH", str(engine))
    monkeypatch.setenv("EMBEDDING_CACHE_PATH", str(cache))
    settings = load_settings()
    assert settings.embedded_es_path == engine and settings.embedding_cache_path == cache
