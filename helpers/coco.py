"""Download COCO 128: through the `roboflow` package with an API key, the public zip without.

Both end in the same layout (`data.yaml` with class names beside YOLO `images/` and
`labels/` folders), which `helpers.dataset` reads.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import yaml

from helpers.config import Settings

ROBOFLOW_WORKSPACE, ROBOFLOW_PROJECT, ROBOFLOW_VERSION = "team-roboflow", "coco-128", 2
PUBLIC_ZIP_URL = "https://github.com/ultralytics/assets/releases/download/v0.0.0/coco128.zip"
DOWNLOAD_TIMEOUT_S = 30

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


class DatasetUnavailable(RuntimeError):
    """COCO 128 could not be fetched; the message says what to do instead."""


OFFLINE_HINT = "offline? use the demo set instead: `python -m helpers demo-data --out data/demo` (or `make demo`)"


def is_downloaded(dest: Path) -> bool:
    return (dest / "data.yaml").is_file() and any(dest.rglob("*.jpg"))


def download_with_roboflow(dest: Path, api_key: str) -> Path:
    """The guide's way: Roboflow's SDK exports version 2 of the project in YOLOv8 format."""
    from roboflow import Roboflow

    project = Roboflow(api_key=api_key).workspace(ROBOFLOW_WORKSPACE).project(ROBOFLOW_PROJECT)
    project.version(ROBOFLOW_VERSION).download("yolov8", location=str(dest), overwrite=True)
    return dest


def safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Extract, refusing members that would land outside `target` (zip slip)."""
    root = target.resolve()
    for member in archive.namelist():
        if not (root / member).resolve().is_relative_to(root):
            raise DatasetUnavailable(f"refusing zip member outside the target folder: {member!r}")
    archive.extractall(root)


def download_public_zip(dest: Path, url: str = PUBLIC_ZIP_URL) -> Path:
    """The COCO 128 zip (`coco128/images/train2017`, `coco128/labels/train2017`) plus a
    `data.yaml` with the 80 COCO class names, so it reads like the Roboflow export."""
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "coco128.zip"
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, zip_path.open("wb") as out:
            shutil.copyfileobj(response, out)
        try:
            with zipfile.ZipFile(zip_path) as archive:
                safe_extract(archive, Path(tmp) / "unpacked")
        except zipfile.BadZipFile as error:
            raise DatasetUnavailable(f"the COCO 128 download from {url} is not a zip file ({error})") from None
        unpacked = Path(tmp) / "unpacked"
        inner = next((p for p in unpacked.iterdir() if p.is_dir() and (p / "images").is_dir()), unpacked)
        dest.mkdir(parents=True, exist_ok=True)
        for item in inner.iterdir():
            shutil.move(str(item), dest / item.name)
    (dest / "data.yaml").write_text(yaml.safe_dump({"names": COCO_CLASS_NAMES}, sort_keys=False))
    return dest


def download_coco128(dest: Path, settings: Settings, url: str = PUBLIC_ZIP_URL) -> Path:
    """Fetch COCO 128 into `dest` unless it is already there. Raises `DatasetUnavailable` with
    a one-line message (naming the offline demo option) when the network cannot be reached."""
    if is_downloaded(dest):
        return dest
    try:
        if settings.roboflow_api_key:
            return download_with_roboflow(dest, settings.roboflow_api_key.reveal())
        return download_public_zip(dest, url)
    except OSError as error:  # URLError, timeouts, and requests' ConnectionError all derive from it
        reason = getattr(error, "reason", error)
        raise DatasetUnavailable(f"could not download COCO 128 ({reason}); {OFFLINE_HINT}") from None
