"""The online path, rehearsed: the unchanged roboflow SDK and Roboflow Inference, pointed by
their own settings (`API_URL`, `API_BASE_URL`) at a double of Roboflow's API on 127.0.0.1
(tests/support/roboflow_double.py), driven through the command line a user runs, each run in a
fresh process as a user's is (Inference reads its settings once, at import).

The main job runs once; every fault ends in one line that names the fix, exit status 2, no
traceback, and neither of the two recognisable keys anywhere in the output.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers._settings import PROJECT_ROOT
from tests.support.roboflow_assets import PHOTOS, coco128_export, vit_b16_pair
from tests.support.roboflow_double import RoboflowDouble

KEY = "rf-rehearsal-Key-4c0ffee7e1"  # the account's key: served by the double, never printed
WRONG_KEY = "rf-mistyped-Key-9d15c0"  # a key Roboflow does not know: never printed either
VISUAL = "/storage/clip/ViT-B-16/visual.onnx"
PASSED_ON = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "XDG_CACHE_HOME", "SYSTEMROOT")


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def error_line(self) -> str:
        """The one line a failure prints; anything else on stderr may only be progress bars."""
        assert self.code == 2, self.text
        assert "Traceback" not in self.text, self.text
        lines = [line for line in self.err.splitlines() if line.strip() and "%|" not in line]
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]


@pytest.fixture(scope="module")
def double() -> Iterator[RoboflowDouble]:
    with RoboflowDouble(vit_b16_pair(), coco128_export(), KEY) as double:
        yield double


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model cache shared by the runs that are not about the download (filled by the main job)."""
    cache = tmp_path_factory.mktemp("model-cache")
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_weights_left_behind(tmp_path: Path) -> Iterator[None]:
    """600 MB per downloaded model: pytest keeps the last three runs' folders, not their weights."""
    yield
    shutil.rmtree(tmp_path / "model-cache", ignore_errors=True)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A folder with one real photograph, for `index` runs that test the model's download."""
    folder = tmp_path / "photo"
    folder.mkdir()
    shutil.copy(PHOTOS[0][0], folder / "coffee.png")
    return folder


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(base_url: str, tmp: Path, key: str, model_cache: Path | None = None, **extra: str) -> dict[str, str]:
    """A user's environment, pointed at `base_url`, with every folder of its own under `tmp`,
    and nothing else from this test process: neither the machine's own settings nor what a
    demo model loaded here put into the environment (Inference sets its offline mode there)."""
    env = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    env |= {
        "API_URL": base_url,  # the roboflow SDK's setting
        "API_BASE_URL": base_url,  # Roboflow Inference's setting
        "ROBOFLOW_CONFIG_DIR": str(tmp / "roboflow-config.json"),  # no saved login
        "ROBOFLOW_API_KEY": key,
        "MODEL_CACHE_DIR": str(model_cache or tmp / "model-cache"),
        "DATASETS_PATH": str(tmp / "datasets"),
        "EMBEDDED_ES_PATH": str(tmp / "engine"),
        "EMBEDDING_CACHE_PATH": str(tmp / "embeddings.sqlite"),
        "ELASTICSEARCH_URL": "",
        "ELASTIC_CLOUD_ID": "",
        "CLIP_MODEL": "",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    return env | extra


def cli(env: dict[str, str], *args: str, timeout: float = 240) -> Run:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "helpers", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    run = Run(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)
    assert KEY not in run.text and WRONG_KEY not in run.text, "a key was printed"
    return run


# The main job.


def test_the_main_job_online(double: RoboflowDouble, tmp_path: Path, warm_cache: Path) -> None:
    double.reset()
    env = environment(double.url, tmp_path, KEY, warm_cache, HTTPS_PROXY=double.url)  # https only: GitHub
    run = cli(env, "demo", "--out", str(tmp_path / "demo.png"))
    assert run.code == 0, run.text
    assert "Data: COCO 128 from Roboflow (team-roboflow/coco-128 version 2, YOLOv8 export)" in run.out
    size = sum(stored.size for stored in double.files.values()) / 1e6
    assert f"Downloading CLIP model clip/ViT-B-16 from Roboflow ({size:,.0f} MB, once" in run.out, run.out
    assert "CLIP weights: 100%" in run.err  # the download's progress
    hits, by_object = run.out.split("Text query 'coffee':")[1].split("Image query")[0].split(", by object")
    assert len(re.findall(r"^\s+\d\. \d\.\d{4}  \S+\.jpg", hits, re.MULTILINE)) == 5, hits
    assert len(re.findall(r"^\s+matched .+ at box \(\d+, \d+, \d+, \d+\)", by_object, re.MULTILINE)) == 5, by_object
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert double.served("/team-roboflow/coco-128/2/yolov8") >= 2  # polled through the 202 "in progress"
    assert double.served("/storage/") == 2
    assert not [r for r in double.requests if r.startswith("CONNECT")]  # DISABLE_VERSION_CHECK: GitHub not asked

    double.reset()
    again = cli(env, "search", "--text", "coffee", "--k", "3")  # no CLIP_MODEL: the index's model
    assert again.code == 0 and "Model: clip/ViT-B-16, ready in" in again.out, again.text
    assert double.requests == []  # everything came from the caches


def test_after_an_offline_demo_search_uses_the_demo_model_the_index_records(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{closed_port()}"  # Roboflow, and through the proxy GitHub's public zip
    env = environment(nowhere, tmp_path, "", HTTPS_PROXY=nowhere, HTTP_PROXY=nowhere, NO_PROXY="")
    demo = cli(env, "demo", "--out", str(tmp_path / "demo.png"))
    assert demo.code == 0 and "Data: the synthetic demo set" in demo.out, demo.text
    run = cli(env, "search", "--text", "a red circle", "--k", "3")
    assert run.code == 0 and "Model: clip/demo (" in run.out, run.text
    assert len(re.findall(r"^\s+\d\. \d\.\d{4}  \S+\.(jpg|png)", run.out, re.MULTILINE)) == 3, run.out


# No key, wrong key, unreachable: each stops in one line.


def test_no_key_for_the_model(double: RoboflowDouble, tmp_path: Path, photo: Path) -> None:
    line = cli(environment(double.url, tmp_path, ""), "index", str(photo)).error_line()
    assert "needs a key: set ROBOFLOW_API_KEY (a free Roboflow account gives one" in line
    assert "CLIP model and the COCO 128 download need it" in line


def test_wrong_key_for_the_model(double: RoboflowDouble, tmp_path: Path, photo: Path) -> None:
    line = cli(environment(double.url, tmp_path, WRONG_KEY), "index", str(photo)).error_line()
    assert "Roboflow rejected ROBOFLOW_API_KEY for the CLIP model clip/ViT-B-16" in line


def test_wrong_key_for_the_data_stops_without_a_stand_in(double: RoboflowDouble, tmp_path: Path) -> None:
    run = cli(environment(double.url, tmp_path, WRONG_KEY), "demo", "--out", str(tmp_path / "demo.png"))
    line = run.error_line()
    assert "Roboflow rejected ROBOFLOW_API_KEY (This API key does not exist (or has been revoked).)" in line
    assert "demo set" not in run.out and not (tmp_path / "datasets").exists()


@pytest.mark.parametrize("command", ["demo", "index"])
def test_unreachable_with_a_key_set(tmp_path: Path, photo: Path, command: str) -> None:
    port = closed_port()
    args = ["demo", "--out", str(tmp_path / "demo.png")] if command == "demo" else ["index", str(photo)]
    line = cli(environment(f"http://127.0.0.1:{port}", tmp_path, KEY), *args).error_line()
    assert f"cannot reach Roboflow's API at 127.0.0.1:{port}" in line and "check the network" in line


# Server errors, broken files and stalls.


def test_a_500_from_storage_is_retried(double: RoboflowDouble, tmp_path: Path, photo: Path) -> None:
    with double.faulty(status_once={VISUAL: 500}):
        run = cli(environment(double.url, tmp_path, KEY), "index", str(photo))
        assert run.code == 0, run.text
        assert double.served(VISUAL) == 2  # Inference retried it: TRANSIENT_ROBOFLOW_API_ERRORS


def test_without_retries_a_500_is_one_line_and_the_next_run_recovers(
    double: RoboflowDouble, tmp_path: Path, photo: Path
) -> None:
    env = environment(double.url, tmp_path, KEY, TRANSIENT_ROBOFLOW_API_ERRORS="")
    with double.faulty(status_once={VISUAL: 500}):
        line = cli(env, "index", str(photo)).error_line()
        assert "Roboflow's API failed while downloading clip/ViT-B-16" in line and "500" in line
        assert cli(env, "index", str(photo)).code == 0


def test_a_truncated_download_never_enters_the_cache(double: RoboflowDouble, tmp_path: Path, photo: Path) -> None:
    with double.faulty(truncate_once={VISUAL}):
        run = cli(environment(double.url, tmp_path, KEY), "index", str(photo))
        assert run.code == 0, run.text
        assert "arrived or were cached broken (RoboflowAPIUnsuccessfulRequestError): downloading again" in run.out
        assert double.served(VISUAL) == 2  # MD5_VERIFICATION_ENABLED refused the first copy


def test_a_cached_file_that_does_not_load_is_downloaded_again(
    double: RoboflowDouble, tmp_path: Path, photo: Path
) -> None:
    env = environment(double.url, tmp_path, KEY, MD5_VERIFICATION_ENABLED="False")
    with double.faulty(truncate_once={VISUAL}):
        run = cli(env, "index", str(photo))
        assert run.code == 0, run.text
        assert "arrived or were cached broken (InvalidProtobuf): downloading again" in run.out
        assert double.served(VISUAL) == 2


def test_weights_broken_twice_end_in_one_line_and_leave_nothing_cached(
    double: RoboflowDouble, tmp_path: Path, photo: Path
) -> None:
    env = environment(double.url, tmp_path, KEY, MD5_VERIFICATION_ENABLED="False")
    with double.faulty(truncate_once={VISUAL, VISUAL.removesuffix(".onnx")}):  # two prefixes: truncated twice
        line = cli(env, "index", str(photo)).error_line()
    assert "the weights of clip/ViT-B-16 do not load even after a fresh download (InvalidProtobuf)" in line
    assert not list((tmp_path / "model-cache").glob("~clip-ViT-B-16-*/*.onnx"))


def test_a_download_killed_while_it_is_written_leaves_no_half_file(
    double: RoboflowDouble, tmp_path: Path, photo: Path
) -> None:
    """kill -9 as soon as anything appears in the model's cache folder: with
    ATOMIC_CACHE_WRITES_ENABLED that is a temporary file, never a half-written weights file."""
    env = environment(double.url, tmp_path, KEY)
    process = subprocess.Popen([sys.executable, "-m", "helpers", "index", str(photo)], env=env, cwd=PROJECT_ROOT)
    cache, written = tmp_path / "model-cache", []
    while process.poll() is None and not written:
        written = [p for folder in cache.glob("~clip-ViT-B-16-*") for p in folder.iterdir()]
        time.sleep(0.002)
    process.kill()
    process.wait()
    assert written, "the run ended before it wrote anything"
    for name in ("visual.onnx", "textual.onnx"):
        for path in cache.glob(f"~clip-ViT-B-16-*/{name}"):
            assert path.stat().st_size == double.files[name].size, f"half of {name} in the cache"


def test_a_stalled_download_gives_up_in_one_line(double: RoboflowDouble, tmp_path: Path, photo: Path) -> None:
    env = environment(double.url, tmp_path, KEY, ROBOFLOW_API_REQUEST_TIMEOUT="2")
    with double.faulty(stall={VISUAL}):
        run = cli(env, "index", str(photo))
        line = run.error_line()
        assert "did not answer within 2 s (ROBOFLOW_API_REQUEST_TIMEOUT) while downloading clip/ViT-B-16" in line
        assert double.served(VISUAL) == 3  # RETRY_CONNECTION_ERRORS_TO_ROBOFLOW_API: three tries


def test_a_stalled_roboflow_api_gives_up_in_one_line(double: RoboflowDouble, tmp_path: Path) -> None:
    env = environment(double.url, tmp_path, KEY, ROBOFLOW_API_REQUEST_TIMEOUT="2")
    with double.faulty(stall={"/team-roboflow"}):
        run = cli(env, "download-coco", "--out", str(tmp_path / "coco"))
        assert "did not answer within 2 s (ROBOFLOW_API_REQUEST_TIMEOUT)" in run.error_line()
        assert run.seconds < 30


# The data set's own faults.


def test_a_500_from_roboflows_api_is_retried(double: RoboflowDouble, tmp_path: Path) -> None:
    with double.faulty(status_once={"/team-roboflow/coco-128": 500}):
        run = cli(environment(double.url, tmp_path, KEY), "download-coco", "--out", str(tmp_path / "c"))
        assert run.code == 0, run.text
        assert (tmp_path / "c" / "data.yaml").is_file() and double.served("/team-roboflow/coco-128/2") >= 1


def test_a_missing_export(double: RoboflowDouble, tmp_path: Path) -> None:
    with double.faulty(missing_export=True):
        line = cli(environment(double.url, tmp_path, KEY), "download-coco", "--out", str(tmp_path / "c")).error_line()
    assert "Roboflow has no yolov8 export of team-roboflow/coco-128 version 2" in line
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.partial").exists()


def test_a_bad_zip(double: RoboflowDouble, tmp_path: Path) -> None:
    with double.faulty(bad_zip=True):
        line = cli(environment(double.url, tmp_path, KEY), "download-coco", "--out", str(tmp_path / "c")).error_line()
    assert "export of team-roboflow/coco-128 version 2 is not a zip file: run again" in line
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.partial").exists()


# The notebooks, online, once.

GUIDE = sorted((PROJECT_ROOT / "notebooks").glob("0[1-4]_*.ipynb"))
HIT = re.compile(r"\d\.\d{3,4}\s+\S*_jpg\.rf\.\w+\.jpg")  # a hit on a photo of the double's export


def outputs(notebook) -> tuple[str, list[str]]:
    """All text a notebook's cells showed, and the names of any errors among them."""
    texts, errors = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}")
            texts.append(output.get("text", ""))
            texts += [value for kind, value in output.get("data", {}).items() if kind.startswith("text/")]
    return "\n".join(texts), errors


def test_notebooks_01_to_04_online(double: RoboflowDouble, tmp_path: Path) -> None:
    """Each notebook in a fresh kernel, in guide order, with a model cache, data folder and
    engine of their own, as a learner with a Roboflow key runs them."""
    import nbformat
    from nbclient import NotebookClient

    assert GUIDE, "no notebooks 01 to 04"
    double.reset()
    env = environment(double.url, tmp_path, KEY)
    shown = {}
    for path in GUIDE:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(
            notebook, timeout=600, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute(env=env)
        text, errors = outputs(notebook)
        assert errors == [], f"{path.name}: {errors}"
        assert KEY not in text, f"{path.name} showed the key"
        shown[path.name] = text
    assert double.served("/exports/") == 1 and double.served("/storage/") == 2  # downloaded once, then cached
    answered = [name for name, text in shown.items() if "coffee" in text and HIT.search(text)]
    assert answered, "no notebook answered the text query 'coffee' with hits on COCO 128"


def run_cells(cells: list[str], env: dict[str, str], cwd: Path) -> list[dict]:
    """Each cell's outputs, run in order in one fresh kernel; errors do not stop the run."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=300, allow_errors=True, resources={"metadata": {"path": str(cwd)}}).execute(
        env=env
    )
    return [cell.outputs for cell in notebook.cells]


def test_in_a_notebook_each_failure_is_one_clear_exception(double: RoboflowDouble, tmp_path: Path) -> None:
    env = environment(double.url, tmp_path, WRONG_KEY)
    written_out = (  # notebook 02's own SDK calls
        "from roboflow import Roboflow\nsettings = helpers.load_settings()\nwith helpers.roboflow_calls(settings):\n"
        "    Roboflow(api_key=settings.roboflow_api_key.reveal()).workspace('team-roboflow').project('coco-128')"
    )
    model, data, sdk = run_cells(
        [
            'import helpers\nhelpers.prepare_inference("clip/ViT-B-16")',
            "helpers.download_coco128(helpers.COCO_DIR, helpers.load_settings())",
            written_out,
        ],
        env,
        tmp_path,
    )
    for outputs, ename, words in ((model, "ModelUnavailable", "rejected ROBOFLOW_API_KEY for the CLIP model"),
                                  (data, "DatasetError", "rejected ROBOFLOW_API_KEY"),
                                  (sdk, "DatasetError", "rejected ROBOFLOW_API_KEY")):  # fmt: skip
        error = next(o for o in outputs if o.output_type == "error")
        assert error.ename == ename and words in error.evalue and "\n" not in error.evalue
        shown = str(outputs)
        assert WRONG_KEY not in shown and KEY not in shown


def test_a_kernel_that_loaded_the_demo_model_says_restart(double: RoboflowDouble, tmp_path: Path) -> None:
    double.reset()
    demo, real = run_cells(
        ['import helpers\nhelpers.load_clip("demo");', 'helpers.prepare_inference("clip/ViT-B-16")'],
        environment(double.url, tmp_path, KEY),
        tmp_path,
    )
    assert not [o for o in demo if o.output_type == "error"]
    error = next(o for o in real if o.output_type == "error")
    assert error.ename == "ModelUnavailable" and "restart the kernel" in error.evalue
    assert double.served("/core_model/") == 0
