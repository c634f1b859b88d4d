"""COCO 128 through the roboflow SDK (the guide's way), with deadlines and one-line errors.

The SDK (1.7.3) sets no timeout on any request, prints its steps, and reports the API's
answers as a `RuntimeError` holding the JSON body, which echoes the key. Here each request
gets a deadline, the SDK's lines are kept out of the output (our own say where the data
comes from), the export is unpacked into a folder beside the target and renamed into place
only when complete, and every failure becomes a scrubbed one-liner: `DatasetUnavailable`
when Roboflow is out of reach, `DatasetError` when a person must act.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import requests

from helpers._download import DatasetError, DatasetUnavailable, network_reason
from helpers._settings import ROBOFLOW_KEY_HELP, scrub_secrets

WORKSPACE, PROJECT, VERSION, EXPORT_FORMAT = "team-roboflow", "coco-128", 2, "yolov8"
SOURCE = f"{WORKSPACE}/{PROJECT} version {VERSION}"
DEFAULT_TIMEOUT_S = 30  # the same knob as Inference's: ROBOFLOW_API_REQUEST_TIMEOUT
BACKOFF_S = (1, 2)  # seconds before the second and the third try
OFFLINE_FALLBACK = "or CLIP_MODEL=demo for the offline stand-ins"
KEY_CHECK_FAILED = "There was an error validating the api key with Roboflow server."  # the SDK's words, after 5 tries


def request_timeout() -> float:
    return float(os.environ.get("ROBOFLOW_API_REQUEST_TIMEOUT") or DEFAULT_TIMEOUT_S)


@contextlib.contextmanager
def deadlines(seconds: float) -> Iterator[None]:
    """Every request the SDK makes goes through `roboflow.util.http`, which adds its User-Agent
    to the keyword arguments: a timeout is added there too, for the duration."""
    from roboflow.util import http

    add_user_agent = http._with_user_agent

    def with_deadline(kwargs: dict) -> dict:
        kwargs.setdefault("timeout", seconds)
        return add_user_agent(kwargs)

    http._with_user_agent = with_deadline
    try:
        yield
    finally:
        http._with_user_agent = add_user_agent


def api_error(text: str) -> tuple[int | None, str]:
    """(status, message) from an API error body as the SDK passes it on: status 0 when the JSON
    names none; (None, first line) when it is not Roboflow's JSON (a proxy's HTML page, say)."""
    try:
        error = json.loads(text).get("error", {})
    except (ValueError, AttributeError):
        return None, text.strip().splitlines()[0][:200] if text.strip() else "no details"
    if isinstance(error, str):
        return 0, error
    status = error.get("status") or (401 if error.get("type") == "OAuthException" else 0)
    return int(status), str(error.get("message") or "no details")


def failure(text: str, doing: str) -> DatasetError:
    """The error for an API answer the SDK raised while `doing` something."""
    status, message = api_error(text)
    if status in (401, 403):
        return DatasetError(f"Roboflow rejected ROBOFLOW_API_KEY ({message}): check it, or {ROBOFLOW_KEY_HELP}")
    if status is None or status >= 500:
        return DatasetUnavailable(f"Roboflow's API failed while {doing} ({message}): try again later")
    return DatasetError(f"Roboflow could not give {SOURCE} while {doing} ({message})")


def fetch_export(dest: Path, api_key: str) -> None:
    """The guide's call, one step at a time so that each failure can say which step failed."""
    from roboflow import Roboflow
    from roboflow.adapters.rfapi import RoboflowError

    try:
        rf = Roboflow(api_key=api_key)
    except RuntimeError as error:
        if str(error) == KEY_CHECK_FAILED:
            raise DatasetUnavailable("Roboflow's API failed to check the key (5 tries): try again later") from None
        raise failure(str(error), "checking the key") from None
    try:
        project = rf.workspace(WORKSPACE).project(PROJECT)
    except (RuntimeError, RoboflowError) as error:
        raise failure(str(error), f"opening {WORKSPACE}/{PROJECT}") from None
    try:
        version = project.version(VERSION)
    except RuntimeError as error:
        raise DatasetError(f"Roboflow has no {SOURCE} ({error})") from None
    try:
        version.download(EXPORT_FORMAT, location=str(dest), overwrite=True)
    except zipfile.BadZipFile:
        raise DatasetError(f"Roboflow's {EXPORT_FORMAT} export of {SOURCE} is not a zip file: run again") from None
    except (RuntimeError, RoboflowError) as error:
        status, message = api_error(str(error))
        if status is None or status >= 500:
            raise failure(str(error), f"exporting {SOURCE}") from None
        raise DatasetError(
            f"Roboflow has no {EXPORT_FORMAT} export of {SOURCE} ({message}): without ROBOFLOW_API_KEY, "
            "COCO 128 comes from the public zip instead"
        ) from None


def download(dest: Path, api_key: str) -> Path:
    """COCO 128 from Roboflow into `dest` (which must not hold a complete download yet). Out of
    reach (server errors, dropped or refused connections, no answer) is tried 3 times, 1 and
    2 s apart, as Inference tries its downloads."""
    for wait in BACKOFF_S:
        try:
            return download_once(dest, api_key)
        except DatasetUnavailable:
            time.sleep(wait)
    return download_once(dest, api_key)


@contextlib.contextmanager
def sdk_calls(api_key: str, doing: str) -> Iterator[None]:
    """Around the SDK's calls: a deadline on each request, and every failure one line with
    no key in it (`DatasetUnavailable` when Roboflow is out of reach, `DatasetError` else)."""
    from roboflow.adapters.rfapi import RoboflowError
    from roboflow.config import API_URL

    where = urlsplit(API_URL).netloc
    try:
        with deadlines(request_timeout()):
            yield
    except requests.Timeout:
        raise DatasetUnavailable(
            f"Roboflow's API at {where} did not answer within {request_timeout():g} s "
            f"(ROBOFLOW_API_REQUEST_TIMEOUT): check the network and run again, {OFFLINE_FALLBACK}"
        ) from None
    except requests.RequestException as error:
        raise DatasetUnavailable(
            f"cannot reach Roboflow's API at {where} ({network_reason(error)}): check the network, {OFFLINE_FALLBACK}"
        ) from None
    except DatasetError as error:  # before RuntimeError, which it is
        raise type(error)(scrub_secrets(str(error), [api_key])) from None
    except (RuntimeError, RoboflowError) as error:
        failed = failure(str(error), doing)
        raise type(failed)(scrub_secrets(str(failed), [api_key])) from None


def download_once(dest: Path, api_key: str) -> Path:
    partial = dest.with_name(f"{dest.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with sdk_calls(api_key, f"downloading {SOURCE}"), contextlib.redirect_stdout(io.StringIO()):
            fetch_export(partial, api_key)
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest
