"""Pictures with supervision: labels read from YOLO folders, grids titled with score and file,
and labelled objects drawn on a hit."""

import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from helpers._images import load_rgb
from helpers.data import detections, read_records
from helpers.search import Hit
from helpers.show import annotate_hit, plot_hits

matplotlib.use("Agg")


def hit_for(record, score: float = 0.9) -> Hit:
    return Hit(record.sha256, record.filename, score, record.labels)


def test_detections_match_the_labels_of_the_records_in_roboflow_and_zip_layouts(demo_set: Path, tmp_path) -> None:
    records = {str(r.path): r for r in read_records(demo_set)}
    dataset = detections(demo_set)
    assert len(dataset) == len(records)
    for path, boxes in dataset.annotations.items():
        assert tuple(sorted({dataset.classes[c] for c in boxes.class_id})) == records[path].labels
    zipped = tmp_path / "coco128"  # the public zip's layout: images/train2017 beside labels/train2017
    for kind in ("images", "labels"):
        shutil.copytree(demo_set / "train" / kind, zipped / kind / "train2017")
    shutil.copy(demo_set / "data.yaml", zipped / "data.yaml")
    assert len(detections(zipped)) == len(records)
    assert len(detections(demo_set / "train" / "images")) == 0  # no data.yaml: no boxes to show


def test_grid_has_one_row_per_query_titled_with_score_and_file(demo_set: Path) -> None:
    records = read_records(demo_set)
    rows = {"text: 'a red circle'": [hit_for(r, 0.8123) for r in records[:5]], "nothing": []}
    figure = plot_hits(rows, demo_set, columns=5)
    titles = [axis.get_title() for axis in figure.axes]
    assert len(figure.axes) == 10
    assert titles[0].startswith("text: 'a red circle'\n0.812\n") and Path(records[0].filename).name in titles[0]
    assert titles[5:] == ["nothing", "", "", "", ""]  # no hits: a row that says so in its first tile


def test_a_hit_whose_file_is_elsewhere_gets_a_tile_that_says_so(demo_set: Path, tmp_path) -> None:
    record = read_records(demo_set)[0]
    figure = plot_hits([hit_for(record)], tmp_path, columns=2)
    assert len(figure.axes) == 2 and figure.axes[0].get_title().startswith("0.900")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_labelled_objects_are_drawn_inside_their_boxes(demo_set: Path, index: int) -> None:
    record = read_records(demo_set)[index]
    dataset = detections(demo_set)
    drawn = annotate_hit(hit_for(record), demo_set, dataset)
    plain = np.asarray(load_rgb(record.path))
    factor = drawn.shape[0] // plain.shape[0]
    assert factor >= 2  # small pictures are enlarged so that the names stay legible
    changed = np.abs(drawn[::factor, ::factor, ::-1].astype(int) - plain.astype(int)).sum(axis=2) > 60
    x1, y1, x2, y2 = (dataset.annotations[str(record.path)].xyxy[0]).astype(int)
    assert changed[y1 : y2 + 1, x1 : x2 + 1].any() and not changed[y2 + 12 :, :].all()
