"""The tests own their environment (tests/support/environment.py): a caller's shell cannot change what a
notebook shows. Proven end to end: a notebook that draws a figure and prints the time zone,
checked by nbval in a pytest run started with a hostile environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from helpers._settings import PROJECT_ROOT
from tests.support.environment import FIXED, ORT_SESSION_CONFIGS, pinned

FIGURE = "<Figure size 640x480 with 1 Axes>"  # the text beside the picture; alone it means no picture
HOSTILE = {
    "MPLBACKEND": "Agg",
    "TZ": "Pacific/Kiritimati",
    "LANG": "C",
    "LC_ALL": "C",
    "COLUMNS": "40",
}


def test_the_pinned_environment_drops_the_callers_settings_and_start_up_hooks() -> None:
    env = pinned({**HOSTILE, "PYTHONSTARTUP": "/tmp/x.py", "PYTHONPATH": "/elsewhere", "PYTHONWARNINGS": "error"})
    assert "MPLBACKEND" not in env and "PYTHONSTARTUP" not in env and "PYTHONWARNINGS" not in env
    assert env["PYTHONPATH"] == str(PROJECT_ROOT)
    assert {name: env[name] for name in FIXED} == FIXED


def test_a_hostile_shell_changes_nothing_a_notebook_shows(tmp_path: Path) -> None:
    """The figure is a picture (not '<Figure size ...>'), the time zone is UTC, the width is
    80 columns: the committed outputs hold exactly that, and nbval compares them."""
    startup = tmp_path / "startup.py"
    startup.write_text("print('the caller ran code here')\n")
    code = (
        "# NBVAL_CHECK_OUTPUT\n"
        "import shutil, time\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot([0, 1])\n"
        "plt.show()\n"
        "print(time.strftime('%Z'), shutil.get_terminal_size().columns, plt.get_backend())"
    )
    cell = nbformat.v4.new_code_cell(code, execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "", "text/plain": FIGURE}),
        nbformat.v4.new_output("stream", name="stdout", text="UTC 80 module://matplotlib_inline.backend_inline\n"),
    ]
    path = tmp_path / "hostile.ipynb"
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata=kernel), path)
    env = {**os.environ, **HOSTILE, "PYTHONSTARTUP": str(startup)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(PROJECT_ROOT)]
    command += ["-c", str(PROJECT_ROOT / "pyproject.toml"), "-p", "no:xdist", str(path)]
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "1 passed" in run.stdout


PROBE = """
import json, sys
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("data/demo_model/visual.onnx")
given = session.get_inputs()[0]
batch = np.random.default_rng(0).normal(size=[d if isinstance(d, int) else 4 for d in given.shape])
vectors = session.run(None, {given.name: batch.astype(np.float32)})[0]
options = session.get_session_options()
print(json.dumps({"threads": options.intra_op_num_threads, "optimised": int(options.graph_optimization_level),
                  "vectors": vectors.tolist()}))
"""


def probe(config: str | None) -> dict:
    """The demo model's image tower on a fixed batch, in a process started as the tests start
    theirs, under one ONNX Runtime configuration of `make ort-check`."""
    import json

    env = pinned({**os.environ, "ORT_SESSION_CONFIG": config or ""})
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_each_ort_check_configuration_reaches_every_session_and_changes_the_rounding() -> None:
    """What `make ort-check` relies on: each configuration reaches a session opened the plain way
    (as Inference opens CLIP's), and turning graph optimisations off changes the model's last
    digits: the kind of difference another CPU makes, which the stored outputs must not show."""
    import numpy as np

    default = probe(None)
    configured = {config: probe(config) for config in ORT_SESSION_CONFIGS}
    assert configured["no-graph-optimisation"]["optimised"] == 0 and default["optimised"] > 0
    assert configured["1-thread"]["threads"] == 1 and configured["2-threads"]["threads"] == 2
    plain, unoptimised = (np.array(c["vectors"]) for c in (default, configured["no-graph-optimisation"]))
    assert (plain != unoptimised).any() and np.allclose(plain, unoptimised, atol=1e-4)
