"""Google Colab: where the project is published, the notebooks' bootstrap cell, and installing
only what a Colab runtime lacks.

Colab ships its own numpy, pillow, matplotlib, torch, torchvision, opencv, pydantic, ipywidgets
and hundreds more; the kernel has imported some of them before the first cell runs. Installing
the project's full lock over them (or Roboflow Inference with its declared closure, which asks
for newer pillow, setuptools and a different torch) replaces dozens of Colab's packages and
breaks the running kernel. So the bootstrap installs `requirements-colab.txt` exactly, without
dependencies: the packages the notebooks import that Colab does not have, at versions proven
beside Colab's own by `make colab-check`. If that ever changes a package the kernel has already
imported, the bootstrap restarts the runtime; a second run finds everything in place and does
nothing.

Standard library only: this file runs on its own, before anything is installed.

    python helpers/_colab.py write-bootstrap   # put BOOTSTRAP_CELL first in every notebook
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_URL = "https://github.com/clip-image-search/clip-elasticsearch-image-search"
# The environment variable, or Colab secret, that points the bootstrap at another clone (a fork,
# a mirror, a local path in the rehearsal) without editing any notebook.
REPOSITORY_SETTING = "REPOSITORY_URL"
COLAB_PROJECT_DIR = "/content/clip-elasticsearch-image-search"
COLAB_REQUIREMENTS = "requirements-colab.txt"
COLAB_DRIVE = Path("/content/drive")  # where drive.mount() puts Google Drive
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The notebooks' first code cell, the same in every notebook (`write-bootstrap` puts it there and
# tests/test_notebooks.py checks it). Short on purpose: the work is in this file, in the clone,
# which the cell runs on its own (runpy), not through the `helpers` package: importing the
# package needs elasticsearch and the rest, which are what this file installs.
BOOTSTRAP_CELL = f'''\
# Colab bootstrap: on Google Colab, clone the project and install only what Colab lacks.
# Locally it does nothing (`make setup` installed everything). Safe to run again.
import contextlib
import os
import runpy
import subprocess
import sys

REPOSITORY_URL = "{REPOSITORY_URL}"
COLAB_PROJECT_DIR = "{COLAB_PROJECT_DIR}"
if "google.colab" in sys.modules:
    if not os.path.isdir(COLAB_PROJECT_DIR):
        from google.colab import userdata

        # A fork or a mirror: set {REPOSITORY_SETTING} in the environment or in Colab's secrets.
        url = os.environ.get("{REPOSITORY_SETTING}")
        with contextlib.suppress(Exception):  # no such secret, or access not granted
            url = url or userdata.get("{REPOSITORY_SETTING}")
        url = url or REPOSITORY_URL
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, COLAB_PROJECT_DIR], check=True)
    if COLAB_PROJECT_DIR not in sys.path:
        sys.path.insert(0, COLAB_PROJECT_DIR)
    # The installer alone, standard library only: `import helpers` needs what it installs.
    runpy.run_path(f"{{COLAB_PROJECT_DIR}}/helpers/_colab.py")["bootstrap"]()'''


@dataclass(frozen=True)
class Change:
    """One package the bootstrap installs: `before` is None when Colab does not have it."""

    name: str
    before: str | None
    after: str

    def __str__(self) -> str:
        if self.before is None:
            return f"{self.name} {self.after} (added)"
        return f"{self.name} {self.before} -> {self.after}"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """{name: version} from a file of `name==version` lines (comments and blanks allowed)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            if not version or ";" in line:
                raise ValueError(f"{path.name}: only exact `name==version` lines, not {line!r}")
            pins[name.strip()] = version.strip()
    return pins


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def pending_changes(pins: dict[str, str]) -> list[Change]:
    """What installing `pins` would change here; empty when everything is in place."""
    changes = []
    for name, version in pins.items():
        before = installed_version(name)
        if before != version:
            changes.append(Change(name, before, version))
    return changes


def top_level_modules(name: str) -> set[str]:
    """The importable top-level names of an installed distribution (empty if not installed)."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return set()
    top = (dist.read_text("top_level.txt") or "").split()
    if top:
        return set(top)
    names = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__"):
            continue
        names.add(first.removesuffix(".py") if first.endswith(".py") else first)
    return {n for n in names if n.isidentifier()}


def stale_imports(changes: list[Change], modules: dict | None = None) -> list[str]:
    """Packages among `changes` (replaced, not added) that the kernel has already imported: the
    old code stays loaded until the runtime restarts. Call before installing."""
    modules = sys.modules if modules is None else modules
    loaded = {name.partition(".")[0] for name in modules}
    return sorted(c.name for c in changes if c.before is not None and top_level_modules(c.name) & loaded)


def pip_install(changes: list[Change]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check"]
    result = subprocess.run(
        [*command, *(f"{c.name}=={c.after}" for c in changes)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"pip could not install {', '.join(c.name for c in changes)}: see its message above.")


def restart_runtime(stale: list[str]) -> None:
    """Colab restarts a runtime whose kernel process dies: the clone, the data under it and the
    secrets store stay; only Python's memory goes. Elsewhere nothing would restart it."""
    print(
        f"Restarting the runtime: the kernel had imported {', '.join(stale)}, which the install replaced. "
        "When Colab has reconnected, run the notebook again from the top (Runtime > Run all).",
        flush=True,
    )
    time.sleep(0.5)  # let the line reach the notebook before the kernel goes
    os.kill(os.getpid(), signal.SIGKILL)


def where_the_index_lives(environ: dict[str, str] | None = None, drive: Path = COLAB_DRIVE) -> str:
    """One paragraph, once per runtime: without a cluster, the embedded engine's index (and the
    embedding cache) live in this runtime's disk and go with it; Google Drive keeps them."""
    environ = os.environ if environ is None else environ
    engine, cache = environ.get("EMBEDDED_ES_PATH", ""), environ.get("EMBEDDING_CACHE_PATH", "")
    if engine.startswith(str(drive)):
        return f"The embedded engine keeps its index in Google Drive ({engine}): the next runtime finds it there."
    said = (
        "Without a cluster (ELASTICSEARCH_URL or ELASTIC_CLOUD_ID), the embedded engine keeps the index in this "
        "runtime: it is gone when the runtime is, and every notebook opened from its badge gets a runtime of its own."
    )
    if not (drive / "MyDrive").is_dir():
        mount = f"from google.colab import drive; drive.mount('{drive}')"
        return f"{said} To keep it, mount Google Drive ({mount}) and run this cell again."
    keep = drive / "MyDrive" / "clip-image-search"
    lines = [f"%env EMBEDDED_ES_PATH={keep / 'engine'}"]
    if not cache.startswith(str(drive)):
        lines.append(f"%env EMBEDDING_CACHE_PATH={keep / 'embeddings.sqlite'}")
    return (
        f"{said} Google Drive is mounted: to keep the index and the embeddings there for the next runtime, run\n  "
        + "\n  ".join(lines)
        + "\nin a cell, then this notebook from the next cell on."
    )


def bootstrap(root: Path = PROJECT_ROOT, restart: bool = True) -> list[Change]:
    """Report what was cloned, install what Colab lacks, restart if that is needed."""
    origin = subprocess.run(
        ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, check=False
    ).stdout.strip()
    head = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %cs"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"Project: {root} (cloned from {origin or 'an unknown address'}, commit {head or 'unknown'})")
    os.chdir(root)
    pins = read_pins(root / COLAB_REQUIREMENTS)
    changes = pending_changes(pins)
    print(where_the_index_lives())
    if not changes:
        print(f"All {len(pins)} packages the notebooks need beyond Colab's own are in place.")
        return []
    stale = stale_imports(changes)
    started = time.monotonic()
    pip_install(changes)
    importlib.invalidate_caches()  # new packages import without a restart
    print(f"Installed {len(changes)} packages in {time.monotonic() - started:.0f} s, Colab's own left as they were:")
    for change in changes:
        print(f"  {change}")
    if stale:
        if restart:
            restart_runtime(stale)
        raise SystemExit(
            f"The kernel had imported {', '.join(stale)}, which the install replaced: "
            "click Runtime > Restart session, then Runtime > Run all."
        )
    return changes


def badge_url(notebook: str) -> str:
    owner_repo = REPOSITORY_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{notebook}"


def first_code_cell(notebook: dict) -> dict:
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")


def cell_source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def write_bootstrap(notebooks: list[Path]) -> list[Path]:
    """Replace each notebook's first code cell with BOOTSTRAP_CELL (outputs cleared); returns the
    notebooks that changed. Only that cell is touched, and the file keeps Jupyter's layout."""
    changed = []
    for path in notebooks:
        notebook = json.loads(path.read_text())
        cell = first_code_cell(notebook)
        if cell_source(cell) == BOOTSTRAP_CELL and not cell.get("outputs"):
            continue
        cell["source"] = BOOTSTRAP_CELL.splitlines(keepends=True)
        cell["outputs"] = []  # what it printed belonged to the old source
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if argv != ["write-bootstrap"]:
        print("usage: python helpers/_colab.py write-bootstrap", file=sys.stderr)
        return 2
    for path in write_bootstrap(sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))):
        print(f"bootstrap cell written: {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
