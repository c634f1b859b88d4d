"""The Colab rehearsal, run inside the Colab-like runtime by its driver venv (tests/support/colab/check.sh).

For each notebook, what a learner who clicks its Colab badge does, in a runtime of its own
(check.sh puts Colab's packages back before each; no clone, no data, no index): open it (a
copy in /content, the kernel's working directory), Run all in a kernel that has imported at
start what Colab's kernel does (tests/support/colab/kernel_startup.py), and if the bootstrap restarts
the runtime, Run all again; the second bootstrap must install nothing. Then nbval runs every
notebook again in fresh kernels and compares the outputs the notebooks check, offline (demo
model, embedded engine), and the test suite runs on this Python. Standard library, nbclient
and pytest only.

    python tests/support/colab/rehearse.py SNAPSHOT_REPO --notebook NAME | --suite [--no-suite] | --restart-leg
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

CONTENT = Path("/content")
CLONE = CONTENT / "clip-elasticsearch-image-search"
KERNEL = "colab"
RESTARTED = "Restarting the runtime"
IN_PLACE = "are in place"
# The restart leg's older elasticsearch, and what it needs that an earlier bootstrap had brought.
RESTART_LEG_VERSION = "8.19.2"
PINS_BEFORE_RESTART = ["elastic-transport==8.19.0"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def say(message: str) -> None:
    print(f"[colab-check] {message}", flush=True)


def notebook_env(snapshot: Path) -> dict[str, str]:
    """The offline stand-ins nbval uses (NOTEBOOK_ENV in tests/support/nbval_env.py), and the bootstrap
    pointed at the snapshot of this checkout instead of GitHub (its REPOSITORY_URL setting).
    Read, not imported: importing it imports `helpers`, which needs what the bootstrap has yet
    to install. Only its assignments of ENGINE_DIR and NOTEBOOK_ENV run, with the clone's paths."""
    tree = ast.parse((snapshot / "tests" / "support" / "nbval_env.py").read_text())
    wanted = {"ENGINE_DIR", "NOTEBOOK_ENV"}
    tree.body = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and {getattr(t, "id", None) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])} & wanted
    ]
    namespace = {"DATA_DIR": CLONE / "data", "PROJECT_ROOT": CLONE, "Path": Path, "os": os}
    exec(compile(tree, "tests/support/nbval_env.py", "exec"), namespace)
    return {**namespace["NOTEBOOK_ENV"], "REPOSITORY_URL": f"file://{snapshot}"}


def outputs_text(cell) -> str:
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            texts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(texts)


def run_all(path: Path) -> tuple[str, str | None]:
    """Run all, as Colab's menu does: stop at the first error. Returns (the bootstrap cell's
    output, None) or (that output, the reason the run stopped)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name=KERNEL, timeout=900, resources={"metadata": {"path": str(CONTENT)}})
    bootstrap = next(cell for cell in notebook.cells if cell.cell_type == "code")
    try:
        client.execute()
    except DeadKernelError:
        return outputs_text(bootstrap), "the kernel died"
    except CellExecutionError as error:
        lines = ANSI.sub("", str(error)).strip().splitlines()
        sys.stdout.write("".join(f"    ! {line}\n" for line in lines[-40:]))
        return outputs_text(bootstrap), lines[-1]
    return outputs_text(bootstrap), None


def as_a_learner(path: Path) -> dict:
    """One notebook on Colab: Run all; after a restart, Run all again. Returns what happened."""
    started = time.monotonic()
    first, stopped = run_all(path)
    sys.stdout.write("".join(f"    | {line}\n" for line in first.splitlines()))
    report = {"notebook": path.name, "restarted": False, "installed": IN_PLACE not in first}
    if stopped is not None and RESTARTED in first:
        report["restarted"] = True
        say(f"{path.name}: the bootstrap restarted the runtime; Run all again")
        second, stopped = run_all(path)
        sys.stdout.write("".join(f"    | {line}\n" for line in second.splitlines()))
        if IN_PLACE not in second:
            stopped = stopped or "the bootstrap installed again after the restart"
    report["seconds"] = round(time.monotonic() - started, 1)
    if stopped is not None:
        raise SystemExit(f"[colab-check] FAILED: {path.name}: {stopped}")
    say(f"{path.name}: ran top to bottom in {report['seconds']} s")
    return report


def pip_freeze() -> dict[str, str]:
    """The kernel's packages (the system interpreter's, not this driver venv's)."""
    out = subprocess.run(
        ["/usr/bin/python3", "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}


def run_nbval(notebooks: list[Path]) -> None:
    """The notebooks' regression run, as `make test` does it, but in Colab's kernel."""
    say("nbval: every notebook again, each in a fresh Colab kernel, outputs compared")
    command = [sys.executable, "-m", "pytest", "-c", "pyproject.toml", "--rootdir", ".", "-p", "no:cacheprovider"]
    command += ["--nbval-kernel-name", KERNEL, *map(str, notebooks)]
    if subprocess.run(command, cwd=CLONE, check=False).returncode != 0:
        raise SystemExit("[colab-check] FAILED: nbval in the Colab runtime")


def run_suite() -> int:
    """The project's test suite on this Python (3.13), beside Colab's packages."""
    say(f"the test suite on Python {sys.version.split()[0]}")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "embedded_es/tests"]
    return subprocess.run(command, cwd=CLONE, check=False).returncode


def restart_leg(snapshot: Path) -> dict:
    """The restart, for real: an earlier bootstrap of this runtime installed an older
    elasticsearch and the kernel has imported it; the project now pins a newer one. The
    bootstrap must replace it, restart the runtime (the kernel dies, Colab starts a new one),
    and the second Run all must install nothing and pass."""
    pins = (snapshot / "requirements-colab.txt").read_text()
    wanted = next(line for line in pins.splitlines() if line.startswith("elasticsearch=="))
    older = RESTART_LEG_VERSION
    assert wanted != f"elasticsearch=={older}", "pick another version for the restart leg"
    say(f"restart leg: elasticsearch {older} installed and imported before the bootstrap ({wanted} pinned)")
    pip = ["/usr/bin/python3", "-m", "pip", "install", "--quiet", "--no-deps", "--break-system-packages"]
    subprocess.run([*pip, "--root-user-action=ignore", *PINS_BEFORE_RESTART, f"elasticsearch=={older}"], check=True)
    os.environ["COLAB_REHEARSAL_PREIMPORT"] = "elasticsearch"
    source = sorted((snapshot / "notebooks").glob("*.ipynb"))[0]
    copy = CONTENT / source.name
    shutil.copy(source, copy)
    report = as_a_learner(copy)
    if not report["restarted"]:
        raise SystemExit("[colab-check] FAILED: the bootstrap replaced an imported package without a restart")
    say("restart leg passed: replaced, restarted, second run installed nothing and ran to the end")
    return report


def alone(snapshot: Path, name: str) -> dict:
    """One notebook as its Colab badge opens it: a runtime of its own (check.sh resets Colab's
    packages before each), no clone, no data, no index; the bootstrap clones and installs, and
    Run all goes to the end. Colab's own packages must stay as they were."""
    shutil.rmtree(CLONE, ignore_errors=True)
    for old in CONTENT.glob("*.ipynb"):
        old.unlink()
    before = pip_freeze()
    copy = CONTENT / name  # Colab opens a copy; its kernel starts in /content
    shutil.copy(snapshot / "notebooks" / name, copy)
    report = as_a_learner(copy)
    after = pip_freeze()
    changed = {n: (before.get(n), v) for n, v in after.items() if before.get(n) != v}
    moved = sorted(n for n, (old, _) in changed.items() if old is not None)
    if moved:
        raise SystemExit(f"[colab-check] FAILED: {name}: the bootstrap replaced Colab's own {', '.join(moved)}")
    if not report["installed"]:
        raise SystemExit(f"[colab-check] FAILED: {name}: a fresh runtime's bootstrap installed nothing")
    say(f"{name}: alone in a fresh runtime, the bootstrap added {len(changed)} packages, none of Colab's changed")
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("snapshot", type=Path)
    legs = parser.add_mutually_exclusive_group(required=True)
    legs.add_argument("--notebook", help="one notebook alone, in this fresh runtime")
    legs.add_argument("--suite", action="store_true", help="nbval over every notebook, then the test suite on 3.13")
    legs.add_argument("--restart-leg", action="store_true", help="only the restart leg (notebook 01)")
    parser.add_argument("--no-suite", action="store_true", help="with --suite: nbval only, not the test suite")
    args = parser.parse_args()

    os.environ.update(notebook_env(args.snapshot))  # the kernels inherit it
    if args.restart_leg:
        restart_leg(args.snapshot)
    elif args.notebook:
        alone(args.snapshot, args.notebook)
    else:
        for source in sorted((args.snapshot / "notebooks").glob("*.ipynb")):
            shutil.copy(source, CONTENT / source.name)
        notebooks = sorted(CONTENT.glob("*.ipynb"))
        run_nbval(notebooks)
        if not args.no_suite and run_suite():
            raise SystemExit("[colab-check] FAILED: the test suite on Python 3.13")
        say("passed")


if __name__ == "__main__":
    main()
