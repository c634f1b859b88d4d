"""Server mode against a real Roboflow Inference server: Inference's own HTTP application with
the demo model on 127.0.0.1 (`tests/support/inference_server.py`), started once for the session, and a
double of Roboflow's API behind it for what needs a key. Nothing here mocks the client or
the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

# The server's own packages (requirements-dev.txt: uvicorn and the rest of what Inference's Docker
# image adds) are a developer's; the Colab rehearsal's 3.13 suite runs without them.
pytest.importorskip("uvicorn", reason="the Inference server's packages (requirements-dev.txt) are not installed")

from embedded_es import embedded_client
from helpers._pipeline import embed_files
from helpers._remote import INPUT_RESOLUTION, RemoteEmbedder, clip_crop
from helpers._settings import PROJECT_ROOT, load_settings
from helpers.classify import classify
from helpers.cli import main
from helpers.clip import ClipEmbedder, embedder_for
from helpers.index import index_folder
from helpers.search import search_image, search_text
from tests.support.inference_server import free_port, running, set_fault
from tests.support.nbval_env import ENGINE_DIR, NOTEBOOK_ENV

WRONG_KEY = "rf-wrong-key-0123456789"
MODEL_STACK = ("inference", "inference_models", "torch", "onnxruntime", "clip")


class RoboflowApi(BaseHTTPRequestHandler):
    """Roboflow's API as the server meets it when a model is not in its cache: the weights
    endpoint refuses a wrong key (401) and knows no model for anyone else (404)."""

    def do_GET(self) -> None:
        wrong = f"api_key={WRONG_KEY}" in self.path
        status, message = (401, "This API key does not exist (or has been revoked).") if wrong else (404, "Not found")
        body = json.dumps({"error": {"message": message, "status": status}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # the server's usage reports

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    api = ThreadingHTTPServer(("127.0.0.1", 0), RoboflowApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    # Online mode, but its only "online" is the double: the demo model is in its cache.
    env = {"OFFLINE_MODE": "False", "API_BASE_URL": f"http://127.0.0.1:{api.server_address[1]}"}
    try:
        with running(env=env) as url:
            yield url
    finally:
        api.shutdown()


def test_server_settings_keep_the_url_secret_and_a_sane_timeout(tmp_path: Path) -> None:
    def settings(**environ: str):
        return load_settings(environ=environ, dotenv_path=tmp_path / "none")

    url = settings(INFERENCE_SERVER_URL="https://user:s3cret-pw@gpu-box:9001/")
    assert url.inference_server_url == "https://user:s3cret-pw@gpu-box:9001"  # no trailing slash: routes follow
    assert "s3cret-pw" not in repr(url) and "s3cret-pw" in url.secret_values()
    assert settings().inference_server_url is None
    for value, expected in (("5", 5.0), ("0", 60.0), ("soon", 60.0), ("", 60.0)):
        assert settings(INFERENCE_SERVER_TIMEOUT=value).inference_server_timeout == expected


@pytest.fixture
def server_cli(server: str, offline_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI in server mode on a fresh embedded engine, with an embedding cache of its own
    (so the server does the work) and no Roboflow key. Returns the engine folder."""
    monkeypatch.setenv("INFERENCE_SERVER_URL", server)
    monkeypatch.setenv("EMBEDDING_CACHE_PATH", str(tmp_path / "server-cache.sqlite"))
    monkeypatch.setenv("ROBOFLOW_API_KEY", "")
    return offline_cli


@pytest.fixture
def remote(server: str, tmp_path: Path) -> RemoteEmbedder:
    environ = {"INFERENCE_SERVER_URL": server, "EMBEDDING_CACHE_PATH": str(tmp_path / "cache.sqlite")}
    return embedder_for(load_settings(environ=environ, dotenv_path=tmp_path / "none"), "demo")


def test_server_and_in_process_vectors_agree(remote: RemoteEmbedder, embedder: ClipEmbedder, demo_set: Path) -> None:
    files = sorted(demo_set.rglob("*.jpg"))
    hashes = [str(i) for i in range(len(files))]  # distinct keys: these caches start empty
    pictures = [Image.new("RGBA", (300, 120), (255, 0, 0, 90)), Image.new("L", (50, 400), 128)]
    prompts = ["a photo of a red circle", "a photo of a blue square", "coffee"]
    pairs = [
        (embed_files(remote, files, hashes), embedder.embed_images(files)),
        (remote.embed_images(pictures), embedder.embed_images(pictures)),
        (remote.embed_texts(prompts), embedder.embed_texts(prompts)),
    ]
    cosines = np.concatenate([(a * b).sum(axis=1) for a, b in pairs])
    print(f"server vs in process, {len(cosines)} vectors: lowest cosine {cosines.min():.7f}")
    assert remote.dim == embedder.dim and cosines.min() >= 0.9999


def test_pictures_are_cropped_as_clips_transform_would(embedder: ClipEmbedder) -> None:
    assert INPUT_RESOLUTION["demo"] == embedder.model.resolution
    size, rng = embedder.model.resolution, np.random.default_rng(0)
    for width, height in ((640, 480), (480, 640), (97, 203), (64, 64), (300, 65)):
        picture = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        ours = clip_crop(picture, size)
        assert ours.size == (size, size)
        assert np.array_equal(embedder.model.clip_preprocess(ours), embedder.model.clip_preprocess(picture))


def test_a_damaged_file_costs_only_its_own_place(remote: RemoteEmbedder, demo_set: Path, tmp_path: Path) -> None:
    good = sorted(demo_set.rglob("*.jpg"))[:3]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[0].read_bytes()[:200])
    results = remote.embed_batch([good[0], broken, good[1], good[2]])
    assert [isinstance(r, Exception) for r in results] == [False, True, False, False]


def cli_json(argv: list[str], capsys: pytest.CaptureFixture) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_index_search_and_classify_through_the_server_match_in_process(
    server_cli: Path, embedder: ClipEmbedder, demo_set: Path, capsys: pytest.CaptureFixture
) -> None:
    assert cli_json(["index", str(demo_set), "--index", "remote"], capsys)["new"] == 128
    es = embedded_client(server_cli)
    index_folder(es, embedder, demo_set, "local", progress=False)  # built in process
    picture = sorted(demo_set.rglob("*.jpg"))[5]
    expected = {
        "--text": [h.id for h in search_text(es, embedder, "local", "a photo of a red circle", k=10)],
        "--image": [h.id for h in search_image(es, embedder, "local", picture, k=10)],
    }
    for flag, query in (("--text", "a photo of a red circle"), ("--image", str(picture))):
        for index in ("remote", "local"):  # either index, searched through the server
            hits = cli_json(["search", flag, query, "--k", "10", "--index", index], capsys)
            assert [h["id"] for h in hits] == expected[flag], (flag, index)
    labels = ["red circle", "blue square", "green triangle"]
    ranked = cli_json(["classify", str(picture), "--labels", ",".join(labels)], capsys)
    assert [r["label"] for r in ranked] == [r["label"] for r in classify(embedder, picture, labels)]


def test_a_search_in_server_mode_never_imports_the_model_stack(
    server_cli: Path, embedder: ClipEmbedder, demo_set: Path
) -> None:
    index_folder(embedded_client(server_cli), embedder, demo_set, "images", progress=False)
    probe = (
        "import json, sys\nfrom helpers.cli import main\n"
        "code = main(['search', '--text', 'a photo of a red circle', '--k', '1', '--json'])\n"
        f"print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in {MODEL_STACK!r})]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    code, loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert code == 0 and loaded == [], run.stderr[-2000:]


@pytest.mark.parametrize(
    ("setting", "fault", "message"),
    [
        ({"INFERENCE_SERVER_URL": f"http://127.0.0.1:{free_port()}"}, None, "cannot reach the Inference server at"),
        ({"INFERENCE_SERVER_URL": "localhost:9001"}, None, "INFERENCE_SERVER_URL must be an http(s) URL"),
        ({}, "500", "could not embed with clip/demo (500: Internal error: rehearsed failure): check CLIP_MODEL"),
        ({"INFERENCE_SERVER_TIMEOUT": "1"}, "slow", "did not answer within 1 s: check that it is running"),
        ({"CLIP_MODEL": "ViT-B-16", "ROBOFLOW_API_KEY": WRONG_KEY}, None, "refused the Roboflow API key (401)"),
        ({"CLIP_MODEL": "ViT-B-16"}, None, "could not embed with clip/ViT-B-16 (404: "),
        (
            {"CLIP_MODEL": "someone/detector/3"},
            None,
            "an Inference server embeds CLIP core models (clip/<version>) only",
        ),
    ],
    ids=["down", "not-a-url", "answers-500", "slow", "wrong-key", "model-it-cannot-load", "not-clip"],
)
def test_server_failures_end_in_one_line(
    server_cli: Path, server: str, demo_set: Path, setting: dict, fault: str | None, message: str, monkeypatch, capsys
) -> None:
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    if fault:
        set_fault(server, fault)
    try:
        # classify embeds a picture and prompts, with no index needed (search would first ask for one)
        picture = next((demo_set / "train" / "images").glob("*.jpg"))
        code = main(["classify", str(picture), "--labels", "red circle,blue square"])
    finally:
        set_fault(server, "none")
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert message in lines[0], lines[0]
    assert WRONG_KEY not in captured.out + captured.err


def checked_outputs(notebook) -> list[str]:
    """What nbval compares: the outputs of the cells marked NBVAL_CHECK_OUTPUT."""
    return [
        "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))
        for cell in notebook.cells
        if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in cell.source
    ]


@pytest.mark.notebooks_in_place
def test_the_guides_notebooks_pass_against_the_server(server: str, tmp_path: Path, monkeypatch) -> None:
    """01 to 04, each in a fresh kernel with INFERENCE_SERVER_URL set and an empty embedding
    cache, must print what they store: every embedding the helpers make goes to the server
    (the guide's own `Clip(...)` calls in 01 and 02 stay in process, as written)."""
    shutil.rmtree(ENGINE_DIR, ignore_errors=True)  # the notebooks' own engine, as nbval starts it
    env = {**NOTEBOOK_ENV, "INFERENCE_SERVER_URL": server, "EMBEDDING_CACHE_PATH": str(tmp_path / "cache.sqlite")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebooks = PROJECT_ROOT / "notebooks"
    for path in sorted(notebooks.glob("0[1-4]_*.ipynb")):
        stored = nbformat.read(path, as_version=4)
        executed = NotebookClient(
            nbformat.read(path, as_version=4), timeout=600, resources={"metadata": {"path": str(notebooks)}}
        ).execute()
        if path.name >= "02":
            assert "on the Inference server at" in str(executed.cells), path.name
        assert checked_outputs(executed) == checked_outputs(stored), path.name


def test_a_file_that_is_no_picture_ends_in_one_line(server_cli: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["classify", str(PROJECT_ROOT / "README.md"), "--labels", "cat,dog"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "README.md is not a picture that can be read" in lines[0], lines
