"""The tests own their environment: a pytest plugin, loaded first (pyproject.toml's addopts).

Notebook kernels and every subprocess the tests start inherit this process's environment, so
the caller's shell would otherwise leak into what the notebooks show: `MPLBACKEND=Agg` turns
every figure into "<Figure size ...>", `TZ` and the locale change printed dates, `COLUMNS`
changes wrapped text, and Python start-up hooks (PYTHONSTARTUP, PYTHONPATH, a user site,
IPython's profile start-up files, a matplotlibrc) run code of the caller's in every kernel.

`pinned()` is the environment they get instead. `ORT_SESSION_CONFIG` (see
tests/support/ort_session/sitecustomize.py and `make ort-check`) is the one way in for a test run that
asks ONNX Runtime to compute differently on purpose.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORT_SESSION_DIR = PROJECT_ROOT / "tests" / "support" / "ort_session"
# Per-user configuration folders pointed at empty ones of the project's (under data/, ignored by
# git): IPython's profile (start-up files, config), Jupyter's config, matplotlib's matplotlibrc.
CONFIG_HOME = PROJECT_ROOT / "data" / "test-environment"
FIXED = {
    "TZ": "UTC",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "COLUMNS": "80",
    "LINES": "24",
    "PYTHONHASHSEED": "0",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONNOUSERSITE": "1",  # no usercustomize or packages from the caller's ~/.local
    "IPYTHONDIR": str(CONFIG_HOME / "ipython"),
    "JUPYTER_CONFIG_DIR": str(CONFIG_HOME / "jupyter"),
    "MPLCONFIGDIR": str(CONFIG_HOME / "matplotlib"),
}
# Dropped: the matplotlib backend, locale details under LC_ALL, and every PYTHON* variable but
# the ones set above (PYTHONSTARTUP, PYTHONPATH, PYTHONWARNINGS, PYTHONBREAKPOINT, ...).
DROPPED_PREFIXES = ("PYTHON", "LC_")
DROPPED = {"MPLBACKEND", "LANGUAGE", "JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"}
ORT_SESSION_CONFIGS = ("no-graph-optimisation", "1-thread", "2-threads")


def pinned(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without what the caller's shell should not decide, plus the fixed values. The
    kernels import `helpers` from this checkout (PYTHONPATH), not from wherever it is installed."""
    env = {
        name: value for name, value in environ.items() if name not in DROPPED and not name.startswith(DROPPED_PREFIXES)
    }
    env |= FIXED
    path = [str(PROJECT_ROOT)]
    config = environ.get("ORT_SESSION_CONFIG")
    if config:
        if config not in ORT_SESSION_CONFIGS:
            raise pytest.UsageError(
                f"ORT_SESSION_CONFIG must be one of {', '.join(ORT_SESSION_CONFIGS)}, not {config!r}"
            )
        path.insert(0, str(ORT_SESSION_DIR))  # its sitecustomize sets ONNX Runtime's session options
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def apply() -> None:
    """Pin this process's environment, which every kernel and subprocess it starts inherits."""
    env = pinned(os.environ)
    for folder in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "MPLCONFIGDIR"):
        Path(env[folder]).mkdir(parents=True, exist_ok=True)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    apply()


def ort_check() -> int:
    """`make ort-check`: the notebook suite once per ONNX Runtime configuration, each reported."""
    failed = []
    for config in ORT_SESSION_CONFIGS:
        print(f"[ort-check] the notebook suite with ONNX Runtime's {config}", flush=True)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "notebooks"]
        run = subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, "ORT_SESSION_CONFIG": config}, check=False)
        if run.returncode != 0:
            failed.append(config)
    print(f"[ort-check] {'FAILED under ' + ', '.join(failed) if failed else 'passed under all three'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] != ["ort-check"]:
        sys.exit("usage: python -m tests.support.environment ort-check")
    sys.exit(ort_check())
