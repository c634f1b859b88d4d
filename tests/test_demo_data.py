"""The synthetic demo set: COCO 128's Roboflow layout, valid YOLO labels, reproducible."""

import json
from pathlib import Path

import yaml

from helpers._offline.demo_data import CLASS_NAMES, write_demo_dataset
from helpers._scan import ImageRecord, scan
from helpers.cli import main


def test_layout_matches_roboflow_yolov8_export(tmp_path: Path) -> None:
    write_demo_dataset(tmp_path, count=12, seed=3)
    images = sorted((tmp_path / "train" / "images").glob("*.jpg"))
    labels = sorted((tmp_path / "train" / "labels").glob("*.txt"))
    assert len(images) == len(labels) == 12
    assert yaml.safe_load((tmp_path / "data.yaml").read_text())["names"] == CLASS_NAMES
    for label_file in labels:
        for line in label_file.read_text().splitlines():
            class_id, *box = line.split()
            assert 0 <= int(class_id) < len(CLASS_NAMES)
            assert all(0.0 < float(v) <= 1.0 for v in box)
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert len(captions) == 12 and all(" on a " in c for c in captions.values())


def test_same_seed_same_images_other_seed_other_images(tmp_path: Path) -> None:
    a, b, c = (write_demo_dataset(tmp_path / n, count=4, seed=s) for n, s in (("a", 1), ("b", 1), ("c", 2)))

    def hashes(root: Path) -> list[str]:
        return [r.sha256 for r in scan(root)]

    assert hashes(a) == hashes(b)
    assert set(hashes(a)).isdisjoint(hashes(c))


def test_labels_name_every_drawn_object_and_scenes_vary(tmp_path: Path) -> None:
    write_demo_dataset(tmp_path, count=64, seed=9)
    records = [r for r in scan(tmp_path) if isinstance(r, ImageRecord)]
    assert all(1 <= len(r.labels) <= 3 for r in records)
    assert len({label for r in records for label in r.labels}) >= 20  # most of the 24 classes appear
    captions = json.loads((tmp_path / "captions.json").read_text())
    for r in records:
        for label in r.labels:
            assert f"a {label}" in captions[r.filename]


def test_cli_writes_128_images_by_default(tmp_path: Path, capsys) -> None:
    assert main(["demo-data", "--out", str(tmp_path)]) == 0
    assert len(list((tmp_path / "train" / "images").glob("*.jpg"))) == 128
    assert "stand-in" in capsys.readouterr().out


def test_cli_rejects_a_non_positive_count(tmp_path: Path, capsys) -> None:
    assert main(["demo-data", "--out", str(tmp_path), "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err
