"""The public COCO 128 zip, for learners without a Roboflow key: fetched, checked, unpacked
into the same layout as Roboflow's YOLOv8 export (`data.yaml` beside `images/`, `labels/`)."""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import yaml

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
