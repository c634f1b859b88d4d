"""Image records from a folder: file name, content hash, size and YOLO class labels.

Works for Roboflow's YOLOv8 export (`train/images`, `train/labels`, `data.yaml`), the
public COCO 128 zip once `data.yaml` is written beside it, the demo set, and any plain
folder of pictures (which simply has no labels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import UnidentifiedImageError

from helpers._images import ImageTooLarge, open_image, oriented_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    filename: str  # relative to the data set root, with forward slashes
    sha256: str
    width: int
    height: int
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_images(root: Path) -> list[Path]:
    """Every file with an image extension below `root` (any case), in a stable order."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_class_names(root: Path) -> list[str]:
    """Class names from the `data.yaml` at the data set root (a list or an {id: name} map)."""
    data_yaml = root / "data.yaml"
    if not data_yaml.is_file():
        return []
    names = (yaml.safe_load(data_yaml.read_text()) or {}).get("names", [])
    if isinstance(names, dict):
        return [names[k] for k in sorted(names)]
    return list(names)


def label_file_for(image: Path) -> Path:
    """YOLO convention: `.../images/x.jpg` has its boxes in `.../labels/x.txt`."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_labels(image: Path, class_names: list[str]) -> tuple[str, ...]:
    """The distinct class names of the boxes in the image's YOLO label file, sorted."""
    label_file = label_file_for(image)
    if not class_names or not label_file.is_file():
        return ()
    try:
        text = label_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # `index_folder` reports it with the picture's objects
        return ()
    names = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0].isdigit() and int(fields[0]) < len(class_names):
            names.add(class_names[int(fields[0])])
    return tuple(sorted(names))


def read_record(path: Path, root: Path, class_names: list[str]) -> ImageRecord:
    """Read the header only (no full decode): size comes from it, content hash from the bytes."""
    with open_image(path) as image:
        width, height = oriented_size(image)
    base = root if root.is_dir() else root.parent
    return ImageRecord(
        path=path,
        filename=path.relative_to(base).as_posix(),
        sha256=sha256_of(path),
        width=width,
        height=height,
        labels=read_labels(path, class_names),
    )


def scan(root: Path) -> Iterator[ImageRecord | Skipped]:
    """A record for every readable image below `root`, a `Skipped` with a reason otherwise."""
    class_names = find_class_names(root if root.is_dir() else root.parent)
    for path in find_images(root):
        try:
            if path.stat().st_size == 0:
                yield Skipped(path, "empty file")
                continue
            yield read_record(path, root, class_names)
        except UnidentifiedImageError:
            yield Skipped(path, "not an image PIL can read")
        except ImageTooLarge as error:
            yield Skipped(path, str(error))
        except OSError as error:
            yield Skipped(path, f"unreadable: damaged, truncated or not accessible ({error})")
