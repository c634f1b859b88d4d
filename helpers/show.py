"""Pictures of hits, drawn with supervision as Roboflow's own notebooks do.

- `plot_hits`: a result grid with `sv.plot_images_grid`, each hit titled with its score and
  file name; several queries become several rows.
- `annotate_hit`: one hit with its labelled objects drawn on it (`sv.BoxAnnotator` and
  `sv.LabelAnnotator` over the data set's YOLO boxes); an object-level hit with only the
  object that matched: a picture that says why it matched.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import supervision as sv
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from helpers._images import load_rgb
from helpers.search import Hit

TILE = 224  # pixels: every hit is shown at the same size, so grids have no ragged gaps
INCHES_PER_TILE = 2.2
ANNOTATED_SIZE = 448  # pixels: labels are drawn at a fixed size, so small pictures are enlarged first


def text_tile(text: str, background: tuple[int, int, int] = (235, 235, 235)) -> Image.Image:
    """A tile with words instead of a picture: "no hits", or a hit whose file is not on this
    machine (an index shared on a cluster)."""
    square = Image.new("RGB", (TILE, TILE), background)
    ImageDraw.Draw(square).multiline_text((TILE // 2, TILE // 2), text, fill=(60, 60, 60), anchor="mm", align="center")
    return square


def tile(picture: Image.Image) -> Image.Image:
    """The picture centred on a square white tile, aspect kept."""
    picture = picture.copy()
    picture.thumbnail((TILE, TILE))
    square = Image.new("RGB", (TILE, TILE), "white")
    square.paste(picture, ((TILE - picture.width) // 2, (TILE - picture.height) // 2))
    return square


def hit_picture(hit: Hit, data_dir: Path, boxes: sv.DetectionDataset | None = None) -> Image.Image:
    path = data_dir / hit.filename
    if not path.is_file():
        return text_tile("image not on\nthis machine")
    if boxes is not None or hit.box is not None:
        return tile(Image.fromarray(annotate_hit(hit, data_dir, boxes)[..., ::-1]))
    return tile(load_rgb(path))


def hit_title(hit: Hit) -> str:
    return f"{hit.score:.3f}\n{Path(hit.filename).name[:24]}"


def plot_hits(
    rows: list[Hit] | dict[str, list[Hit]],
    data_dir: Path,
    columns: int = 5,
    boxes: sv.DetectionDataset | None = None,
) -> Figure | None:
    """The hits as a grid, best first, with `sv.plot_images_grid`; `rows` is one query's hits,
    or {query label: hits} for one row per query. With `boxes` (see `helpers.detections`),
    each hit shows its labelled objects; an object-level hit shows only the object that
    matched, boxes or not. In a notebook the grid is shown and None returned;
    where nothing can show it (the CLI's Agg backend) the figure is returned, to save."""
    named = rows if isinstance(rows, dict) else {"": rows}
    pictures, titles = [], []
    for label, hits in named.items():
        shown = hits[:columns]
        pictures += [hit_picture(hit, data_dir, boxes) for hit in shown]
        blanks = range(columns - len(shown))
        pictures += [text_tile("no hits" if not hits and i == 0 else "", (255, 255, 255)) for i in blanks]
        titles += [hit_title(hit) for hit in shown] + [""] * (columns - len(shown))
        if label:
            titles[-columns] = f"{label}\n{titles[-columns]}".rstrip()
    size = (INCHES_PER_TILE * columns, (INCHES_PER_TILE + 0.5) * len(named))
    with warnings.catch_warnings(), plt.rc_context({"axes.titlesize": 9}):
        # plot_images_grid calls plt.show(), which the CLI's Agg backend cannot do: it says so
        warnings.filterwarnings("ignore", message=".*non-interactive.*", category=UserWarning)
        sv.plot_images_grid(pictures, grid_size=(len(named), columns), titles=titles, size=size)
    still_open = plt.get_fignums()  # a notebook's show() displayed and closed it
    return plt.figure(still_open[-1]) if still_open else None


def annotate_hit(hit: Hit, data_dir: Path, boxes: sv.DetectionDataset | None = None) -> np.ndarray:
    """The hit's picture (BGR, as supervision draws) with its labelled objects boxed and named,
    or for an object-level hit only the object that matched, named with its score. A small
    picture is enlarged first (by a whole factor, to about 448 pixels), so that the names stay
    legible beside the boxes."""
    path = str(data_dir / hit.filename)
    picture = load_rgb(path)
    empty = sv.Detections.empty()
    if hit.box is not None:
        found = sv.Detections(xyxy=np.array([hit.box], dtype=float), class_id=np.array([0]))
        names = [f"{hit.object_label} {hit.score:.3f}"]
    else:
        found = boxes.annotations.get(path, empty) if boxes is not None else empty
        names = [boxes.classes[class_id] for class_id in found.class_id] if len(found) else []
    factor = max(1, ANNOTATED_SIZE // max(picture.size))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.LANCZOS)
    image = np.asarray(picture)[..., ::-1].copy()
    if len(found) == 0:
        return image
    detections = sv.Detections(xyxy=found.xyxy * factor, class_id=found.class_id)
    image = sv.BoxAnnotator().annotate(scene=image, detections=detections)
    return sv.LabelAnnotator().annotate(scene=image, detections=detections, labels=names)
