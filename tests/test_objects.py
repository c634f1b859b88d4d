"""Object-level search (issue #27): each labelled object of a picture is cropped, embedded in
the same pipeline as the pictures, cached by picture and box, and stored in the `objects`
nested field; a kNN over `objects.vector` ranks pictures by their best object and names it.
Bad labels are skipped with a reason and their pictures still indexed."""

import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from embedded_es import embedded_client
from helpers._cache import cache_model_key
from helpers._offline.demo_model import demo_model_version
from helpers._scan import find_class_names, label_file_for, read_record
from helpers.cli import main
from helpers.clip import ClipEmbedder
from helpers.embedder import ImageInput
from helpers.index import document, ensure_index, index_folder, index_mapping
from helpers.objects import MIN_SIDE, LabelledObject, crop_box, read_objects
from helpers.search import Hit, search_text
from helpers.show import annotate_hit


class Counting:
    """The real embedder, counting what reaches the model (the cache answers the rest)."""

    def __init__(self, embedder: ClipEmbedder) -> None:
        self.inner, self.embedded = embedder, 0
        self.model_id, self.dim, self.cache = embedder.model_id, embedder.dim, embedder.cache

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_texts(texts)

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        return self.inner.embed_images(images)

    def embed_batches(self, batches: Iterable[Sequence[ImageInput]]) -> Iterator[list]:
        def counted() -> Iterator[Sequence[ImageInput]]:
            for batch in batches:
                self.embedded += len(batch)
                yield batch

        return self.inner.embed_batches(counted())


def labelled_copy(demo_set: Path, tmp_path: Path, count: int = 12) -> Path:
    """The first `count` pictures of the demo set with their labels and data.yaml."""
    root = tmp_path / "labelled"
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    shutil.copy(demo_set / "data.yaml", root / "data.yaml")
    for image in sorted((demo_set / "train" / "images").glob("*.jpg"))[:count]:
        shutil.copy(image, root / "train" / "images" / image.name)
        shutil.copy(label_file_for(image), root / "train" / "labels" / f"{image.stem}.txt")
    return root


def first_picture(root: Path):
    image = sorted((root / "train" / "images").glob("*.jpg"))[0]
    return read_record(image, root, find_class_names(root)), label_file_for(image)


def test_yolo_lines_become_pixel_boxes_and_bad_ones_are_skipped_with_a_reason(demo_set: Path, tmp_path: Path) -> None:
    root = labelled_copy(demo_set, tmp_path, count=1)
    record, labels = first_picture(root)
    names = find_class_names(root)
    w, h = record.width, record.height
    labels.write_text(
        "0 0.5 0.5 0.25 0.5\n"  # a box in the middle
        "1 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n"  # a polygon: its bounding box
        "2 0.5 0.5 abc 0.1\n"  # does not parse
        "3 0.95 0.5 0.3 0.3\n"  # overhangs the right edge
        f"4 0.5 0.5 {(MIN_SIDE - 4) / w:.4f} 0.3\n"  # too narrow to embed
        "999 0.5 0.5 0.2 0.2\n"  # no such class
        "0 0.5 0.5 0.25 0.5\n"  # the first line again
        "1 nan 0.5 0.2 0.2\n"  # not a number
        "1 0.5 0.5 inf 0.2\n"  # infinite
    )
    objects, skipped = read_objects(record, names)
    assert objects == [
        LabelledObject(names[0], (round(0.375 * w), round(0.25 * h), round(0.625 * w), round(0.75 * h))),
        LabelledObject(names[1], (round(0.1 * w), round(0.1 * h), round(0.3 * w), round(0.4 * h))),
    ]
    reasons = [s.reason for s in skipped]
    assert len(reasons) == 7 and all(s.path == record.path for s in skipped)
    assert "line 3" in reasons[0] and "does not parse" in reasons[0]
    assert "line 4" in reasons[1] and "outside its picture" in reasons[1]
    assert "line 5" in reasons[2] and "too small to embed" in reasons[2]
    assert "line 6" in reasons[3] and "class 999" in reasons[3]
    assert "line 7" in reasons[4] and "same" in reasons[4]
    assert all("not finite" in reason for reason in reasons[5:])


def test_a_label_file_that_is_not_text_is_reported_once(demo_set: Path, tmp_path: Path) -> None:
    root = labelled_copy(demo_set, tmp_path, count=1)
    record, labels = first_picture(root)
    labels.write_bytes(b"\xff\xfe\x00garbage\x89PNG")
    objects, skipped = read_objects(record, find_class_names(root))
    assert objects == [] and len(skipped) == 1 and "does not parse" in skipped[0].reason


def test_the_crop_keeps_a_margin_of_context_inside_the_picture() -> None:
    assert crop_box((40, 40, 60, 80), 100, 100) == (34, 34, 66, 86)  # 15% of the longer side, 40 px
    assert crop_box((0, 0, 100, 20), 100, 100) == (0, 0, 100, 35)  # clamped at the edges


@pytest.fixture(scope="module")
def indexed(embedder: ClipEmbedder, demo_set: Path, tmp_path_factory: pytest.TempPathFactory):
    es = embedded_client(tmp_path_factory.mktemp("engine"))
    return es, index_folder(es, embedder, demo_set, "objects", progress=False)


def test_every_labelled_object_is_stored_with_its_label_box_and_vector(
    indexed, demo_set: Path, embedder: ClipEmbedder
) -> None:
    es, report = indexed
    names = find_class_names(demo_set)
    expected = 0
    for image in sorted((demo_set / "train" / "images").glob("*.jpg")):
        expected += len(read_objects(read_record(image, demo_set, names), names)[0])
    assert (report.new, report.objects, report.skipped_objects) == (128, expected, [])
    doc = es.search(index="objects", query={"match_all": {}}, size=1)["hits"]["hits"][0]["_source"]
    assert doc["objects"] and {"label", "box", "vector"} == set(doc["objects"][0])
    assert {o["label"] for o in doc["objects"]} == set(doc["labels"])
    assert all(len(o["box"]) == 4 and len(o["vector"]) == embedder.dim for o in doc["objects"])


def test_a_rerun_embeds_no_picture_and_no_crop_twice(embedder: ClipEmbedder, demo_set: Path, tmp_path: Path) -> None:
    root = labelled_copy(demo_set, tmp_path)
    counting = Counting(ClipEmbedder("demo", cache_path=tmp_path / "cache.sqlite", clip=embedder.model))
    first = index_folder(embedded_client(tmp_path / "a"), counting, root, "objects", progress=False)
    assert counting.embedded == 12 + first.objects and first.objects > 12
    again = index_folder(embedded_client(tmp_path / "b"), counting, root, "objects", progress=False)
    assert counting.embedded == 12 + first.objects  # a new index, filled from the cache alone
    assert (again.new, again.objects) == (12, first.objects)


def test_bad_objects_are_reported_and_their_pictures_still_indexed(
    embedder: ClipEmbedder, demo_set: Path, tmp_path: Path
) -> None:
    root = labelled_copy(demo_set, tmp_path, count=3)
    record, labels = first_picture(root)
    good = labels.read_text()
    labels.write_text(good + "0 1.5 0.5 0.2 0.2\nnot a label line\n")
    es = embedded_client(tmp_path / "engine")
    report = index_folder(es, embedder, root, "objects", progress=False)
    assert (report.new, report.skipped, len(report.skipped_objects)) == (3, [], 2)
    stored = es.get(index="objects", id=record.sha256)["_source"]["objects"]
    assert len(stored) == len(good.splitlines())  # the good objects of that picture are kept


def test_a_label_file_that_is_not_text_leaves_its_picture_indexed(
    embedder: ClipEmbedder, demo_set: Path, tmp_path: Path
) -> None:
    root = labelled_copy(demo_set, tmp_path, count=3)
    record, labels = first_picture(root)
    labels.write_bytes(b"\xff\xfe\x00garbage\x89PNG")
    es = embedded_client(tmp_path / "engine")
    report = index_folder(es, embedder, root, "objects", progress=False)
    assert (report.new, report.skipped, len(report.skipped_objects)) == (3, [], 1)
    assert es.get(index="objects", id=record.sha256)["_source"]["objects"] == []


def test_pictures_indexed_without_objects_are_completed_and_keep_their_date(
    embedder: ClipEmbedder, demo_set: Path, tmp_path: Path
) -> None:
    """As notebook 02 does: a few pictures sent by hand (no objects), then `index_folder`."""
    root = labelled_copy(demo_set, tmp_path, count=4)
    es = embedded_client(tmp_path / "engine")
    ensure_index(es, "objects", embedder.dim, embedder.model_id)
    record, _ = first_picture(root)
    by_hand = document(record, embedder.embed_images([record.path])[0], "2020-01-01T00:00:00.000Z")
    es.index(index="objects", id=record.sha256, document=by_hand, refresh=True)
    report = index_folder(es, embedder, root, "objects", progress=False)
    assert (report.indexed, report.new) == (4, 3)
    completed = es.get(index="objects", id=record.sha256)["_source"]
    assert completed["objects"] and completed["object_count"] == len(completed["objects"])
    assert completed["uploaded_at"] == "2020-01-01T00:00:00.000Z"
    again = index_folder(es, embedder, root, "objects", progress=False)
    assert (again.indexed, again.new, again.objects) == (4, 0, 0)  # nothing sent twice


def test_the_demo_models_vectors_are_cached_under_its_weights() -> None:
    """A retrained demo model keeps the id `clip/demo`: its cache key changes with its weights."""
    assert cache_model_key("clip/demo") == f"clip/demo@{demo_model_version()}"
    assert cache_model_key("clip/ViT-B-16") == "clip/ViT-B-16"


def test_object_search_names_the_object_that_matched(indexed, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    hits = search_text(es, embedder, "objects", "a photo of a red circle", k=5, objects=True)
    assert len(hits) == 5
    for hit in hits:
        stored = es.get(index="objects", id=hit.id)["_source"]["objects"]
        assert {"label": hit.object_label, "box": list(hit.box)} in [
            {"label": o["label"], "box": o["box"]} for o in stored
        ]
    assert sum(hit.object_label == "red circle" for hit in hits) >= 4
    pictures = search_text(es, embedder, "objects", "a photo of a red circle", k=5)
    assert all(hit.box is None for hit in pictures)


def test_object_search_keeps_the_pictures_filters(indexed, embedder: ClipEmbedder) -> None:
    es, _ = indexed
    hits = search_text(es, embedder, "objects", "a photo of a red circle", k=5, objects=True, labels=["blue square"])
    assert hits and all("blue square" in hit.labels for hit in hits)  # the filter is on the picture ...
    assert any(hit.object_label != "blue square" for hit in hits)  # ... not on the object that matched


def test_an_object_hit_is_drawn_with_only_its_box(indexed, demo_set: Path) -> None:
    es, _ = indexed
    docs = es.search(index="objects", query={"match_all": {}}, size=128)["hits"]["hits"]
    doc = next(d for d in docs if len(d["_source"]["objects"]) > 1)
    source = doc["_source"]
    matched, other = source["objects"][0], source["objects"][1]
    hit = Hit(doc["_id"], source["filename"], 0.9, tuple(source["labels"]), tuple(matched["box"]), matched["label"])
    drawn = annotate_hit(hit, demo_set)[..., ::-1].astype(int)
    plain = Image.open(demo_set / source["filename"]).convert("RGB")
    factor = drawn.shape[0] // plain.height
    plain = np.asarray(plain.resize((drawn.shape[1], drawn.shape[0]), Image.Resampling.LANCZOS)).astype(int)

    def changed(box: list[int]) -> float:
        """The share of the box's left and right edges that the drawing changed."""
        x0, y0, x1, y1 = (v * factor for v in box)
        edges = [(slice(y0, y1), x0), (slice(y0, y1), x1 - 1)]
        return float(np.mean([np.abs(drawn[e] - plain[e]).max(axis=-1) > 60 for e in edges]))

    assert changed(matched["box"]) > 0.9
    assert changed(other["box"]) < 0.3


def test_cli_search_by_object_prints_the_box_and_writes_the_grid(
    demo_set: Path, offline_cli: Path, tmp_path: Path, capsys
) -> None:
    assert main(["index", str(demo_set), "--index", "cli"]) == 0
    printed = capsys.readouterr().out
    assert "labelled objects indexed, 0 left out" in printed
    out = tmp_path / "grid.png"
    args = ["search", "--text", "a photo of a red circle", "--objects", "--k", "3", "--index", "cli"]
    assert main([*args, "--out", str(out), "--data", str(demo_set)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("matched ") == 3 and "at box (" in printed
    assert Image.open(out).size[0] > 300
    assert main([*args, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert all(set(hit["object"]) == {"label", "box"} for hit in hits)
    assert main([*args, "--hybrid"]) == 2
    assert "do not combine" in capsys.readouterr().err


def test_object_search_on_an_index_without_objects_says_what_to_do(offline_cli: Path, capsys) -> None:
    from helpers.connect import connect

    es = connect(quiet=True)
    mapping = index_mapping(512, "clip/demo")
    del mapping["properties"]["objects"]  # as an index built before object-level search
    es.indices.create(index="old", mappings=mapping)
    assert main(["search", "--text", "a red circle", "--objects", "--index", "old"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "has no objects" in error and "--recreate" in error
