"""A synthetic stand-in for COCO 128, laid out like Roboflow's YOLOv8 export.

Each image is a scene of one to three coloured shapes on a varied background. Every
(colour, shape) pair is a class, so "a red circle" is both a text prompt and a label, which
lets the demo model's retrieval quality be measured from the labels alone.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

from helpers._scan import find_images, label_file_for

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (35, 70, 220),
    "yellow": (240, 210, 30),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "cross")
CLASS_NAMES = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
BACKGROUNDS = ("grey", "dark", "striped", "noisy")
IMAGE_SIZE = 192
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class PlacedShape:
    class_id: int
    cx: float
    cy: float
    size: float

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.class_id]

    def yolo_line(self) -> str:
        w = h = self.size / IMAGE_SIZE
        return f"{self.class_id} {self.cx / IMAGE_SIZE:.6f} {self.cy / IMAGE_SIZE:.6f} {w:.6f} {h:.6f}"


@dataclass(frozen=True)
class Scene:
    shapes: tuple[PlacedShape, ...]
    background: str

    @property
    def caption(self) -> str:
        objects = " and ".join(f"a {s.name}" for s in self.shapes)
        return f"{objects} on a {self.background} background"


def random_scene(rng: random.Random) -> Scene:
    """One to three shapes of distinct classes, placed so they do not overlap."""
    count = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
    class_ids = rng.sample(range(len(CLASS_NAMES)), count)
    placed: list[PlacedShape] = []
    for class_id in class_ids:
        for _ in range(100):
            size = rng.uniform(40, 72)
            cx = rng.uniform(size / 2 + 4, IMAGE_SIZE - size / 2 - 4)
            cy = rng.uniform(size / 2 + 4, IMAGE_SIZE - size / 2 - 4)
            if all(math.dist((cx, cy), (p.cx, p.cy)) > (size + p.size) / 2 + 4 for p in placed):
                placed.append(PlacedShape(class_id, cx, cy, size))
                break
    return Scene(tuple(placed), rng.choice(BACKGROUNDS))


def draw_background(kind: str, rng: random.Random) -> Image.Image:
    base = rng.randint(90, 170) if kind != "dark" else rng.randint(20, 60)
    tint = [max(0, min(255, base + rng.randint(-25, 25))) for _ in range(3)]
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(tint))
    draw = ImageDraw.Draw(image)
    if kind == "striped":
        step = rng.randint(10, 24)
        shade = tuple(max(0, c - 30) for c in tint)
        for x in range(-IMAGE_SIZE, IMAGE_SIZE, step):
            draw.line([(x, 0), (x + IMAGE_SIZE, IMAGE_SIZE)], fill=shade, width=step // 3)
    if kind == "noisy":
        # Seeded grey noise (PIL's effect_noise has its own unseeded generator).
        noise = np.random.default_rng(rng.getrandbits(32)).normal(128, 40, (IMAGE_SIZE, IMAGE_SIZE))
        grey = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).convert("RGB")
        image = Image.blend(image, grey, 0.35)
    return image


def draw_shape(draw: ImageDraw.ImageDraw, shape: PlacedShape, rng: random.Random) -> None:
    colour_name, kind = shape.name.split(" ")
    jitter = [max(0, min(255, c + rng.randint(-20, 20))) for c in COLOURS[colour_name]]
    fill = tuple(jitter)
    r = shape.size / 2
    cx, cy = shape.cx, shape.cy
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        corners = [angle + math.pi / 4 + k * math.pi / 2 for k in range(4)]
        draw.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in corners], fill=fill)
    elif kind == "triangle":
        corners = [angle + k * 2 * math.pi / 3 for k in range(3)]
        draw.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a in corners], fill=fill)
    else:  # cross: two bars
        w = r / 3
        for a in (angle, angle + math.pi / 2):
            dx, dy = math.cos(a), math.sin(a)
            px, py = -dy * w, dx * w
            ends = [(cx - dx * r, cy - dy * r), (cx + dx * r, cy + dy * r)]
            draw.polygon(
                [
                    (ends[0][0] + px, ends[0][1] + py),
                    (ends[1][0] + px, ends[1][1] + py),
                    (ends[1][0] - px, ends[1][1] - py),
                    (ends[0][0] - px, ends[0][1] - py),
                ],
                fill=fill,
            )


def render(scene: Scene, rng: random.Random) -> Image.Image:
    image = draw_background(scene.background, rng)
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        draw_shape(draw, shape, rng)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    return image


def generate_scenes(count: int, seed: int) -> Iterator[tuple[Scene, Image.Image]]:
    """Deterministic for a given seed: the same (count, seed) gives the same pictures."""
    rng = random.Random(seed)
    for _ in range(count):
        scene = random_scene(rng)
        yield scene, render(scene, rng)


def write_demo_dataset(out: Path, count: int = 128, seed: int = 0) -> Path:
    """Write `count` images with YOLO labels, `data.yaml`, captions and the seed used."""
    images_dir, labels_dir = out / "train" / "images", out / "train" / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    captions = {}
    for i, (scene, image) in enumerate(generate_scenes(count, seed)):
        stem = f"demo_{seed}_{i:06d}"
        image.save(images_dir / f"{stem}.jpg", quality=90)
        (labels_dir / f"{stem}.txt").write_text("\n".join(s.yolo_line() for s in scene.shapes) + "\n")
        captions[f"train/images/{stem}.jpg"] = scene.caption
    data_yaml = {
        "path": ".",
        "train": "train/images",
        "nc": len(CLASS_NAMES),
        "names": CLASS_NAMES,
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False))
    (out / "captions.json").write_text(json.dumps(captions, indent=1))
    (out / "demo.json").write_text(
        json.dumps(
            {"generator": "helpers._offline.demo_data", "version": GENERATOR_VERSION, "count": count, "seed": seed}
        )
    )
    return out


def plant_near_duplicates(
    data_dir: Path, count: int, quality: int = 60, scale: float = 1.0, seed: int = 0, tag: str = "copy"
) -> list:
    """Copy `count` of a data set's original images (never an earlier copy) as near-duplicates:
    re-encoded as JPEG at `quality`, resized by `scale`, saved beside the original as
    `<name>_<tag>.jpg`, with its YOLO labels. Returns [(original, copy)]: what `dedup` should find."""
    if not tag.startswith("copy"):
        raise ValueError(f"tag must start with 'copy' (that is how copies are told apart), not {tag!r}")
    candidates = [p for p in find_images(data_dir) if "_copy" not in p.stem]
    planted = []
    for original in random.Random(seed).sample(candidates, count):
        copy = original.with_name(f"{original.stem}_{tag}.jpg")
        with Image.open(original) as image:
            size = (round(image.width * scale), round(image.height * scale))
            image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(copy, quality=quality)
        if label_file_for(original).is_file():
            label_file_for(copy).write_text(label_file_for(original).read_text())
        planted.append((original, copy))
    return planted
