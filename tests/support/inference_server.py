"""A real Roboflow Inference server on 127.0.0.1: the `inference` package's own HTTP application
(`HttpInterface` over a `ModelManager`, as its Docker image builds it in
`docker/config/cpu_http.py`) served by uvicorn, with the committed demo model in its model
cache and no network (`OFFLINE_MODE`).

    python -m tests.support.inference_server --port 9001     # then INFERENCE_SERVER_URL=http://127.0.0.1:9001

Faults on demand, for the failure tests: `POST /rehearsal/fault?mode=500|slow|none` makes the
CLIP routes answer 500, or stall for `SLOW_S` seconds before the real answer, until reset.
The control route and the faults live in a thin ASGI wrapper; everything else is Inference's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from helpers._settings import PROJECT_ROOT

SLOW_S = 10  # longer than the tests' client timeout, short enough to stop quickly
SERVER_ENV = {
    "OFFLINE_MODE": "True",  # the demo model is local: no weights download, no telemetry
    "DISABLE_VERSION_CHECK": "True",
    "USE_INFERENCE_MODELS": "False",  # Inference's own `Clip` (ONNX), which reads the demo model's folder
    "ACTIVE_LEARNING_ENABLED": "False",
    "METRICS_ENABLED": "False",
    "ENABLE_STREAM_API": "False",
    "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS": "False",  # nothing on this server runs user code
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def inherited() -> dict[str, str]:
    """This process's environment, less the latches an Inference import here leaves for its
    children (`_ROBOFLOW_INFERENCE_OFFLINE_MODE_AT_PROCESS_START` would override the server's
    own OFFLINE_MODE)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("_ROBOFLOW_INFERENCE_")}


def with_faults(app):
    """Inference's ASGI app, with the CLIP routes made to fail or stall while a fault is set."""
    fault = {"mode": "none"}

    async def faulty(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/rehearsal/fault":
            fault["mode"] = scope["query_string"].decode().removeprefix("mode=")
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http" and scope["path"].startswith("/clip/"):
            if fault["mode"] == "500":
                body = b'{"message": "Internal error: rehearsed failure"}'
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if fault["mode"] == "slow":
                await asyncio.sleep(SLOW_S)
        await app(scope, receive, send)

    return faulty


def serve(port: int) -> None:
    """Build the server as Inference's Docker image does, and run it (in this process)."""
    import uvicorn
    from inference.core.interfaces.http.http_api import HttpInterface
    from inference.core.managers.base import ModelManager
    from inference.core.registries.roboflow import RoboflowModelRegistry
    from inference.models.utils import ROBOFLOW_MODEL_TYPES

    manager = ModelManager(model_registry=RoboflowModelRegistry(ROBOFLOW_MODEL_TYPES))
    uvicorn.run(with_faults(HttpInterface(manager).app), host="127.0.0.1", port=port, log_level="warning")


def set_fault(url: str, mode: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/rehearsal/fault?mode={mode}", method="POST"), timeout=5)


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Inference server exited with status {process.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
            return
        time.sleep(0.3)
    raise RuntimeError(f"the Inference server did not answer /healthz within {timeout:.0f} s")


def prepare(home: Path, model_cache: Path | None = None) -> dict[str, str]:
    """A working folder for the server, as its Docker image has one: the landing page it mounts
    from ./inference/landing/out (empty here) and a model cache with the demo model in it
    (`model_cache`, or one inside `home`). Returns the environment variables that point there."""
    from helpers._offline.demo_model import install_demo_model

    cache = model_cache or home / "model-cache"
    install_demo_model(cache)
    for landing in ("static", "_next/static"):
        (home / "inference" / "landing" / "out" / landing).mkdir(parents=True, exist_ok=True)
    return {"MODEL_CACHE_DIR": str(cache), "PYTHONPATH": str(PROJECT_ROOT)}


@contextlib.contextmanager
def running(
    port: int | None = None, env: dict[str, str] | None = None, model_cache: Path | None = None, timeout: float = 180
) -> Iterator[str]:
    """A server in a child process, `env` on top of `SERVER_ENV`, its model cache `model_cache`
    or a temporary folder (the demo model is installed in either); yields its URL. Its log goes
    to a file, whose end is shown if it fails to start."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as home:
        paths = prepare(Path(home), model_cache)
        command = [sys.executable, "-m", "tests.support.inference_server", "--port", str(port), "--serve"]
        log = Path(home) / "server.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                command, env={**inherited(), **SERVER_ENV, **(env or {}), **paths}, cwd=home, stdout=out, stderr=out
            )
        try:
            try:
                wait_ready(url, process, timeout)
            except RuntimeError as error:
                raise RuntimeError(f"{error}; its log ends with:\n{log.read_text()[-3000:]}") from None
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a stalled request holds uvicorn's graceful stop
                process.kill()
                process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--serve", action="store_true", help="serve from the working folder as it is (`running`)")
    args = parser.parse_args()
    if not args.serve:  # by hand: this process becomes the server, in a folder of its own
        home = PROJECT_ROOT / "data" / "inference-server"  # git-ignored, reused
        os.environ.update({**SERVER_ENV, **prepare(home)})
        os.chdir(home)
        print(f"Inference server with the demo model (clip/demo) at http://127.0.0.1:{args.port}; Ctrl-C stops it")
    serve(args.port)
