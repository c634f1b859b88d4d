"""The labelled objects of a picture, for object-level search: each YOLO box in pixels, its
label, and the crop that CLIP embeds (the box with a margin of context around it).

A YOLO label file has one object per line, `class cx cy w h` as fractions of the picture (or
`class x1 y1 x2 y2 ...`, a polygon, whose bounding box is taken). A line that does not parse,
names an unknown class, lies outside its picture or is too small to embed is skipped with a
reason; the picture and its other objects are still indexed. A folder without labels gives
no objects: fixed crops (a grid) would cut objects in half and name nothing, and the picture's
own vector already covers the whole scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from helpers._images import load_rgb
from helpers._scan import ImageRecord, Skipped, label_file_for

OBJECTS_FIELD = "objects"
OBJECT_VECTOR_FIELD = f"{OBJECTS_FIELD}.vector"
OBJECT_COUNT = "object_count"  # beside `objects`, top level: an empty list can vanish in source filtering
MARGIN = 0.15  # of the box's longer side, on every side: a cup with a little of its table
MIN_SIDE = 16  # pixels: a smaller box, blown up to CLIP's 224 pixels, is a blur
EDGE_SLACK = 0.01  # YOLO's rounding: a box may overhang its picture by 1% of its size

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the picture as shown


@dataclass(frozen=True)
class LabelledObject:
    label: str
    box: Box

    def as_source(self, vector: list[float]) -> dict:
        return {"label": self.label, "box": list(self.box), "vector": vector}


@dataclass(frozen=True)
class Crop:
    """What the pipeline embeds for an object: the picture's file and the margined box."""

    path: Path
    box: Box

    def cache_key(self, sha256: str) -> str:
        """The crop's key in the embedding cache, beside the model id: the picture's content
        and the box cut from it (a changed margin is a new crop, never a stale vector)."""
        return f"{sha256}/{','.join(map(str, self.box))}"


def crop_box(box: Box, width: int, height: int, margin: float = MARGIN) -> Box:
    """The box grown by `margin` of its longer side on every side, kept inside the picture."""
    x0, y0, x1, y1 = box
    pad = round(margin * max(x1 - x0, y1 - y0))
    return max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)


def load_crops(crops: list[Crop]) -> list[Image.Image | Exception]:
    """The crops as RGB pictures, each file decoded once however many objects it holds; a
    file that cannot be decoded gives its error for each of its crops."""
    pictures: dict[Path, Image.Image | Exception] = {}
    loaded: list[Image.Image | Exception] = []
    for crop in crops:
        if crop.path not in pictures:
            try:
                pictures[crop.path] = load_rgb(crop.path)
            except (OSError, ValueError, SyntaxError) as error:  # what PIL raises for a bad image
                pictures[crop.path] = error
        picture = pictures[crop.path]
        loaded.append(picture if isinstance(picture, Exception) else picture.crop(crop.box))
    return loaded


def parse_line(line: str) -> tuple[int, float, float, float, float] | str:
    """(class id, x0, y0, x1, y1 as fractions) of one label line, or why it does not parse."""
    fields = line.split()
    try:
        class_id, numbers = int(fields[0]), [float(f) for f in fields[1:]]
    except ValueError:
        return "does not parse (expected `class cx cy w h`, numbers)"
    if not all(math.isfinite(n) for n in numbers):
        return "does not parse (a number is not finite)"
    if len(numbers) == 4:
        cx, cy, w, h = numbers
        return class_id, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if len(numbers) >= 6 and len(numbers) % 2 == 0:  # a polygon: its bounding box
        xs, ys = numbers[0::2], numbers[1::2]
        return class_id, min(xs), min(ys), max(xs), max(ys)
    return f"does not parse (expected 5 numbers, or a polygon, got {len(fields)})"


def read_objects(record: ImageRecord, class_names: list[str]) -> tuple[list[LabelledObject], list[Skipped]]:
    """The picture's objects from its YOLO label file, in file order, and the lines skipped
    with a reason (each naming the picture, the line and what to fix)."""
    label_file = label_file_for(record.path)
    if not class_names or not label_file.is_file():
        return [], []
    try:
        lines = label_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return [], [Skipped(record.path, f"objects: label file {label_file.name} does not parse ({error})")]
    objects: list[LabelledObject] = []
    skipped: list[Skipped] = []
    seen: set[LabelledObject] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        problem = object_of(parse_line(line), record, class_names)
        if isinstance(problem, LabelledObject) and problem in seen:
            problem = f"the same {problem.label} box as an earlier line"
        if isinstance(problem, str):
            skipped.append(Skipped(record.path, f"object on line {number} of {label_file.name} skipped: {problem}"))
            continue
        seen.add(problem)
        objects.append(problem)
    return objects, skipped


def object_of(
    parsed: tuple[int, float, float, float, float] | str, record: ImageRecord, class_names: list[str]
) -> LabelledObject | str:
    """The object a parsed line describes, or why it cannot be one."""
    if isinstance(parsed, str):
        return parsed
    class_id, x0, y0, x1, y1 = parsed
    if not 0 <= class_id < len(class_names):
        return f"class {class_id} is not in data.yaml's {len(class_names)} names"
    slack_x, slack_y = EDGE_SLACK * max(x1 - x0, 0), EDGE_SLACK * max(y1 - y0, 0)
    if x1 <= x0 or y1 <= y0:
        return "the box has no area (its width or height is not positive)"
    if x0 < -slack_x or y0 < -slack_y or x1 > 1 + slack_x or y1 > 1 + slack_y:
        return f"box ({x0:.3f}, {y0:.3f})-({x1:.3f}, {y1:.3f}) lies outside its picture (fractions 0 to 1)"
    width, height = record.width, record.height
    box = (
        max(0, round(x0 * width)),
        max(0, round(y0 * height)),
        min(width, round(x1 * width)),
        min(height, round(y1 * height)),
    )
    if box[2] - box[0] < MIN_SIDE or box[3] - box[1] < MIN_SIDE:
        side = f"{box[2] - box[0]}x{box[3] - box[1]} px"
        return f"too small to embed ({side}; objects need at least {MIN_SIDE} px a side)"
    return LabelledObject(class_names[class_id], box)
