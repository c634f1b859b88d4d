"""Reading image folders: records with hashes, sizes and labels; unreadable files reported."""

import hashlib
from pathlib import Path

from PIL import Image

from helpers._scan import ImageRecord, Skipped, label_file_for, scan


def test_plain_folder_records_have_hash_size_and_no_labels(tmp_path: Path) -> None:
    nested = tmp_path / "Holiday" / "día 1"
    nested.mkdir(parents=True)
    Image.new("RGB", (40, 30), "red").save(nested / "Beach.JPG")
    records = list(scan(tmp_path))
    assert len(records) == 1 and isinstance(records[0], ImageRecord)
    record = records[0]
    assert record.filename == "Holiday/día 1/Beach.JPG"
    assert (record.width, record.height) == (40, 30)
    assert record.sha256 == hashlib.sha256((nested / "Beach.JPG").read_bytes()).hexdigest()
    assert record.labels == ()


def test_broken_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "good.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a picture")
    results = {r.path.name: r for r in scan(tmp_path)}
    assert isinstance(results["good.png"], ImageRecord)
    assert results["empty.jpg"] == Skipped(tmp_path / "empty.jpg", "empty file")
    assert isinstance(results["notes.jpg"], Skipped) and "not an image" in results["notes.jpg"].reason


def test_yolo_labels_map_to_class_names(tmp_path: Path) -> None:
    (tmp_path / "images" / "train2017").mkdir(parents=True)
    (tmp_path / "labels" / "train2017").mkdir(parents=True)
    (tmp_path / "data.yaml").write_text("names: {0: person, 1: cup, 2: dog}\n")
    Image.new("RGB", (10, 10)).save(tmp_path / "images" / "train2017" / "a.jpg")
    boxes = "1 0.5 0.5 0.1 0.1\n0 0.2 0.2 0.1 0.1\n1 0.4 0.4 0.2 0.2\n"
    (tmp_path / "labels" / "train2017" / "a.txt").write_text(boxes)
    (record,) = scan(tmp_path)
    assert record.labels == ("cup", "person")


def test_label_file_uses_the_last_images_folder() -> None:
    path = Path("/d/images/x/images/a.jpg")
    assert label_file_for(path) == Path("/d/images/x/labels/a.txt")
