"""What the Roboflow double serves: a real-architecture ViT-B/16 pair with random weights, and
a COCO-128-shaped YOLOv8 export made of real photographs that ship in installed packages.

The pair is generated once per machine (about 15 s, 600 MB) into a cache outside git and
shared by every checkout; a lock keeps two test runs from generating it at once.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import matplotlib
import skimage
import yaml
from filelock import FileLock
from PIL import Image

from helpers._download import COCO_CLASS_NAMES

CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clip-elasticsearch-image-search"
VIT_B16_DIR = CACHE_ROOT / "vit-b-16-random"

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
MATPLOTLIB_DATA = Path(matplotlib.get_data_path()) / "sample_data"
# (file, split, [(COCO class, cx, cy, w, h) in YOLO's relative units]): boxes drawn by eye.
PHOTOS = [
    (SKIMAGE_DATA / "coffee.png", "train", [("cup", 0.5, 0.55, 0.75, 0.8), ("spoon", 0.8, 0.6, 0.3, 0.2)]),
    (SKIMAGE_DATA / "chelsea.png", "train", [("cat", 0.5, 0.5, 0.9, 0.95)]),
    (SKIMAGE_DATA / "astronaut.png", "train", [("person", 0.45, 0.55, 0.7, 0.9)]),
    (SKIMAGE_DATA / "motorcycle_left.png", "train", [("motorcycle", 0.5, 0.5, 0.95, 0.9)]),
    (SKIMAGE_DATA / "rocket.jpg", "train", [("person", 0.1, 0.85, 0.05, 0.1)]),
    (SKIMAGE_DATA / "camera.png", "valid", [("person", 0.45, 0.45, 0.5, 0.9)]),
    (MATPLOTLIB_DATA / "grace_hopper.jpg", "valid", [("person", 0.5, 0.55, 0.9, 0.9), ("tie", 0.5, 0.85, 0.1, 0.3)]),
]


def vit_b16_pair() -> Path:
    """visual.onnx and textual.onnx of a random ViT-B/16 (Inference's format), made once."""
    from bench.vit_b32 import export_pair  # torch and rf-clip: imported only when the pair is needed

    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE_ROOT / "vit-b-16-random.lock")):
        return export_pair(VIT_B16_DIR, patch_size=16)


def jpeg(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def coco128_export() -> bytes:
    """A zip laid out as Roboflow's YOLOv8 export of team-roboflow/coco-128 version 2:
    data.yaml (80 COCO names), README files, and train/ and valid/ with images/ and labels/,
    file names in Roboflow's `<stem>_jpg.rf.<hash>.jpg` style."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        data_yaml = {
            "train": "../train/images",
            "val": "../valid/images",
            "test": "../test/images",
            "nc": len(COCO_CLASS_NAMES),
            "names": COCO_CLASS_NAMES,
            "roboflow": {"workspace": "team-roboflow", "project": "coco-128", "version": 2, "license": "CC BY 4.0"},
        }
        archive.writestr("data.yaml", yaml.safe_dump(data_yaml, sort_keys=False))
        archive.writestr("README.roboflow.txt", "COCO 128 - v2\nExported via roboflow.com (a local rehearsal)\n")
        for path, split, boxes in PHOTOS:
            body = jpeg(path)
            stem = f"{path.stem}_jpg.rf.{hashlib.md5(body).hexdigest()}"
            archive.writestr(f"{split}/images/{stem}.jpg", body)
            lines = [f"{COCO_CLASS_NAMES.index(name)} {cx} {cy} {w} {h}" for name, cx, cy, w, h in boxes]
            archive.writestr(f"{split}/labels/{stem}.txt", "\n".join(lines) + "\n")
    return buffer.getvalue()
