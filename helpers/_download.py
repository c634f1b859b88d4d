"""The public COCO 128 zip, for learners without a Roboflow key: fetched, checked, unpacked
into the same layout as Roboflow's YOLOv8 export (`data.yaml` beside `images/`, `labels/`)."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import requests
import yaml

from helpers._errors import ActionableError

PUBLIC_ZIP_URL = "https://github.com/ultralytics/assets/releases/download/v0.0.0/coco128.zip"
# (connect, read) seconds: a black-holed network gives up after 5 s, a stalled transfer after 30.
DOWNLOAD_TIMEOUT_S = (5, 30)

COCO_CLASS_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]  # fmt: skip


class DatasetError(ActionableError):
    """COCO 128 could not be had; the message is one line that says what to do."""


class DatasetUnavailable(DatasetError):
    """COCO 128 is out of reach (no network, no answer, server errors): without a Roboflow key
    the offline demo set may stand in."""


def network_reason(error: Exception) -> str:
    """What went wrong on the network, in a few words, from a requests or urllib error (whose
    text holds the whole URL, query and all)."""
    if isinstance(error, (requests.Timeout, TimeoutError)):
        return "no answer in time"
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    if found:
        return found.group(1).strip()
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


def safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Extract, refusing members that would land outside `target` (zip slip)."""
    root = target.resolve()
    for member in archive.namelist():
        if not (root / member).resolve().is_relative_to(root):
            raise DatasetError(f"refusing zip member outside the target folder: {member!r}")
    archive.extractall(root)


def fetch(url: str, target: Path, timeout: tuple[float, float]) -> None:
    """`url` into `target`, streamed, with deadlines; an HTTP error status raises."""
    with requests.get(url, stream=True, timeout=timeout) as response, target.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 20):
            out.write(chunk)


def download_public_zip(
    dest: Path, url: str = PUBLIC_ZIP_URL, timeout: tuple[float, float] = DOWNLOAD_TIMEOUT_S
) -> Path:
    """The COCO 128 zip (`coco128/images/train2017`, `coco128/labels/train2017`) plus a
    `data.yaml` with the 80 COCO class names, so it reads like the Roboflow export."""
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "coco128.zip"
        fetch(url, zip_path, timeout)
        try:
            with zipfile.ZipFile(zip_path) as archive:
                safe_extract(archive, Path(tmp) / "unpacked")
        except zipfile.BadZipFile:
            raise DatasetError(
                f"the COCO 128 download from {url} is not a zip file: run again (nothing was kept)"
            ) from None
        unpacked = Path(tmp) / "unpacked"
        inner = next((p for p in unpacked.iterdir() if p.is_dir() and (p / "images").is_dir()), unpacked)
        dest.mkdir(parents=True, exist_ok=True)
        for item in inner.iterdir():
            shutil.move(str(item), dest / item.name)
    (dest / "data.yaml").write_text(yaml.safe_dump({"names": COCO_CLASS_NAMES}, sort_keys=False))
    return dest
