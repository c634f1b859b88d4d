"""CLIP weights from Roboflow through Inference: its own settings for a download that cannot
poison the cache, one announcement with the size and progress, and one-line errors.

Inference (1.8.3) reads its settings once, at import, so `configure()` runs before that
import and sets, unless the user already did:
- `TRANSIENT_ROBOFLOW_API_ERRORS`: 5xx answers are retried (it retries none by default), and
  `RETRY_CONNECTION_ERRORS_TO_ROBOFLOW_API` retries refused, dropped and timed-out requests,
  3 tries each (`TRANSIENT_ROBOFLOW_API_ERRORS_RETRIES`), 1 s apart;
- `MD5_VERIFICATION_ENABLED`: each file is checked against storage's `x-goog-hash` MD5 before
  it is cached, so a truncated download never enters the cache;
- `ATOMIC_CACHE_WRITES_ENABLED`: a file is written beside its place and renamed into it;
- `ROBOFLOW_API_REQUEST_TIMEOUT`: 30 s without an answer ends a request (120 by default);
- `DISABLE_VERSION_CHECK`: no call to GitHub from every process.
What it checks only by existence, a cached file that does not load, is removed here and
downloaded again once.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import urlsplit

from helpers._errors import ActionableError
from helpers._settings import ROBOFLOW_KEY_HELP, scrub_secrets

INFERENCE_SETTINGS = {
    "TRANSIENT_ROBOFLOW_API_ERRORS": "500,502,503,504",
    "RETRY_CONNECTION_ERRORS_TO_ROBOFLOW_API": "True",
    "MD5_VERIFICATION_ENABLED": "True",
    "ATOMIC_CACHE_WRITES_ENABLED": "True",
    "ROBOFLOW_API_REQUEST_TIMEOUT": "30",
    "DISABLE_VERSION_CHECK": "True",
}
FILES = ["textual.onnx", "visual.onnx"]  # what Inference's Clip needs in the cache
OFFLINE_FALLBACK = "or CLIP_MODEL=demo for the offline stand-in"
T = TypeVar("T")


class ModelUnavailable(ActionableError):
    """The CLIP model could not be downloaded or loaded; the message is one line saying what to do."""


def configure() -> None:
    """Inference's download settings, before its import (afterwards they change nothing)."""
    for name, value in INFERENCE_SETTINGS.items():
        os.environ.setdefault(name, value)


def is_cached(model_id: str) -> bool:
    from inference.core.cache.model_artifacts import are_all_files_cached

    return are_all_files_cached(files=FILES, model_id=model_id)


def check_online(model_id: str) -> None:
    """Inference's offline mode is fixed for the process at import: a process that loaded the
    demo model first cannot download another one."""
    env = sys.modules.get("inference.core.env")
    if env is not None and env.OFFLINE_MODE and not is_cached(model_id):
        raise ModelUnavailable(
            f"this Python process loaded the offline demo model first, which keeps Roboflow Inference offline "
            f"until it restarts: restart the kernel (or run again) to download {model_id}"
        )


def api_host() -> str:
    from inference.core.env import API_BASE_URL

    return urlsplit(API_BASE_URL).netloc


def explain(error: Exception, model_id: str, api_key: str | None) -> str | None:
    """One line for an error from Inference's download, or None if it is not one of those."""
    from inference.core import exceptions as rf
    from inference.core.env import ROBOFLOW_API_REQUEST_TIMEOUT

    if isinstance(error, (rf.RoboflowAPINotAuthorizedError, rf.RoboflowAPIForbiddenError)):
        if not api_key:
            return f"the CLIP model {model_id} is downloaded from Roboflow, which needs a key: {ROBOFLOW_KEY_HELP}"
        return f"Roboflow rejected ROBOFLOW_API_KEY for the CLIP model {model_id}: check it, or {ROBOFLOW_KEY_HELP}"
    if isinstance(error, rf.RoboflowAPINotNotFoundError):
        return f"Roboflow has no CLIP model {model_id}: check CLIP_MODEL (clip/ViT-B-16, clip/ViT-B-32, ...)"
    if isinstance(error, rf.RoboflowAPITimeoutError):
        return (
            f"Roboflow's API at {api_host()} did not answer within {ROBOFLOW_API_REQUEST_TIMEOUT} s "
            f"(ROBOFLOW_API_REQUEST_TIMEOUT) while downloading {model_id}: check the network and run again, "
            f"{OFFLINE_FALLBACK}"
        )
    if isinstance(error, rf.RoboflowAPIConnectionError):
        return (
            f"cannot reach Roboflow's API at {api_host()} to download {model_id}: check the network, {OFFLINE_FALLBACK}"
        )
    if isinstance(error, rf.RoboflowAPIUnsuccessfulRequestError):
        return f"Roboflow's API failed while downloading {model_id} ({error}): try again later"
    if isinstance(error, rf.RoboflowAPIUsagePausedError | rf.PaymentRequiredError):
        return f"Roboflow refused to serve {model_id} ({error})"
    if type(error).__module__.startswith("inference."):
        return f"Roboflow Inference could not load {model_id} ({type(error).__name__}: {str(error)[:200]})"
    return None


def is_broken_file(error: Exception) -> bool:
    """A cached file that onnxruntime cannot open, or a download whose MD5 did not match."""
    from inference.core.exceptions import RoboflowAPIUnsuccessfulRequestError

    if isinstance(error, RoboflowAPIUnsuccessfulRequestError):
        return "MD5" in str(error)
    return type(error).__module__.startswith("onnxruntime")


@contextmanager
def quiet_logger() -> Iterator[None]:
    """Inference logs each failure as an ERROR block before raising it; the raised error is
    what a user sees here, as one line."""
    import logging

    logger = logging.getLogger("inference")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def download_size(model_id: str, api_key: str | None) -> int | None:
    """The bytes a download will bring: the weights endpoint (Inference's own call, whose answer
    it keeps 10 s for the download that follows), then one byte of each file for its length."""
    import requests
    from inference.core.devices.utils import GLOBAL_DEVICE_ID
    from inference.core.env import ROBOFLOW_API_REQUEST_TIMEOUT
    from inference.core.roboflow_api import ModelEndpointType, get_roboflow_model_data

    weights = get_roboflow_model_data(api_key, model_id, ModelEndpointType.CORE_MODEL, GLOBAL_DEVICE_ID)
    total = 0
    for url in weights.get("weights", {}).values():
        try:
            with requests.get(
                url, headers={"Range": "bytes=0-0"}, stream=True, timeout=ROBOFLOW_API_REQUEST_TIMEOUT
            ) as r:
                length = r.headers.get("Content-Range", "").rpartition("/")[2] or r.headers.get("Content-Length", "")
                if not (r.ok and length.isdigit()):
                    return None
        except requests.RequestException:
            return None  # the download itself will say what is wrong
        total += int(length)
    return total


@contextmanager
def progress(total: int | None) -> Iterator[None]:
    """A progress bar for a download that has none of its own (Inference reads each file whole):
    fed by the machine's received bytes, which the download dominates while it runs."""
    import psutil
    from tqdm.auto import tqdm

    if total is None:
        yield
        return
    start, done = psutil.net_io_counters().bytes_recv, threading.Event()
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="CLIP weights")

    def advance() -> None:
        bar.update(min(total, psutil.net_io_counters().bytes_recv - start) - bar.n)

    def follow() -> None:
        while not done.wait(0.5):
            advance()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        advance()
        bar.close()


def download(model_id: str, api_key: str | None) -> None:
    """Inference's own download of the model's files into its cache (`RoboflowCoreModel`, as
    `Clip` does it, without opening the ONNX sessions), announced with its size and progress."""
    from inference.core.models.roboflow import RoboflowCoreModel

    class Weights(RoboflowCoreModel):
        def get_infer_bucket_file_list(self) -> list[str]:
            return FILES

    with quiet_logger():
        total = download_size(model_id, api_key)
    size = f"{total / 1e6:,.0f} MB" if total else "size unknown"
    print(f"Downloading CLIP model {model_id} from Roboflow ({size}, once: it is kept in the model cache)")
    started = time.perf_counter()
    with progress(total), quiet_logger():
        Weights(model_id=model_id, api_key=api_key)
    print(f"Downloaded {model_id} in {time.perf_counter() - started:.0f} s")


def one_line(error: Exception, model_id: str, api_key: str | None) -> Exception:
    """`ModelUnavailable` with a scrubbed one-line message, or `error` itself if it is none of ours."""
    if is_broken_file(error):
        message = (
            f"the weights of {model_id} do not load even after a fresh download ({type(error).__name__}): "
            "they were removed; run again, and report it if it repeats"
        )
    else:
        message = explain(error, model_id, api_key)
    return error if message is None else ModelUnavailable(scrub_secrets(message, [api_key or ""]))


def twice(step: Callable[[], T], model_id: str, api_key: str | None) -> T:
    """`step`, and once more after Inference's `clear_cache` if the weights arrived or were
    cached broken; then a broken cache is removed too, and every error is one line."""
    from inference.core.cache.model_artifacts import clear_cache

    try:
        return step()
    except Exception as error:
        if not is_broken_file(error):
            raise one_line(error, model_id, api_key) from None
        print(f"The weights of {model_id} arrived or were cached broken ({type(error).__name__}): downloading again")
    clear_cache(model_id=model_id)
    try:
        return step()
    except Exception as error:
        if is_broken_file(error):
            clear_cache(model_id=model_id)  # never left for the next run to trip over
        raise one_line(error, model_id, api_key) from None


def ensure_downloaded(model_id: str, api_key: str | None) -> None:
    """The model's files in Inference's cache, downloaded if they are not: after this, a plain
    `Clip(model_id=...)` (as the notebooks write it) only loads them."""
    check_online(model_id)
    if not is_cached(model_id):
        twice(lambda: download(model_id, api_key), model_id, api_key)


def load(model_id: str, api_key: str | None):
    """Inference's `Clip` for a model from Roboflow, from its cache (`ensure_downloaded` first).
    Cached files that do not load are removed and downloaded again, once."""
    from inference.models import Clip

    def download_and_open():
        ensure_downloaded(model_id, api_key)
        with quiet_logger():
            return Clip(model_id=model_id, api_key=api_key)

    return twice(download_and_open, model_id, api_key)
