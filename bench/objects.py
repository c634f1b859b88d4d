"""Object-level search, measured side by side in one run (issue #27):

- indexing cost: `index_folder` on COCO-sized photos with seven labelled boxes each (COCO 128
  averages about seven objects a picture), pictures alone (cold cache) against the same
  pictures' crops (pictures then come from the cache, so the time is the crops'), through
  the full-size ViT-B/32 graph;
- query latency through the client, object-level (nested kNN over `objects.vector`, with
  `inner_hits`) against picture-level (`image_vector`) on the same index: at COCO 128's size
  (those photos) and at 100,000 objects (25,000 pictures of four objects each, synthetic
  vectors with a realistic spectrum).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from elasticsearch.helpers import bulk

from bench.indexing import write_photos
from bench.vit_b32 import MODEL_ID
from embedded_es import embedded_client
from embedded_es.node import close_store
from helpers.clip import ClipEmbedder
from helpers.index import index_folder, index_mapping
from helpers.search import knn_search
from helpers.synthetic import spectrum_vectors

OBJECTS_PER_PICTURE = 7
PICTURES = 128
QUERIES = 50


def write_labels(photos: list[Path], root: Path, rng: np.random.Generator) -> None:
    """YOLO labels beside the photos (`images/` -> `labels/`): boxes of 10% to 50% of a side."""
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(yaml.safe_dump({"names": [f"class {i}" for i in range(10)]}))
    for photo in photos:
        lines = []
        for _ in range(OBJECTS_PER_PICTURE):
            w, h = rng.uniform(0.1, 0.5, 2)
            cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
            lines.append(f"{rng.integers(10)} {cx:.4f} {cy:.4f} {w:.4f} {h:.4f}")
        (root / "labels" / f"{photo.stem}.txt").write_text("\n".join(lines) + "\n")


def p50_ms(es, index: str, queries: np.ndarray, objects: bool) -> float:
    times = []
    for query in queries:
        started = time.perf_counter()
        knn_search(es, index, query, k=10, num_candidates=100, objects=objects)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def latencies(es, index: str, queries: np.ndarray) -> tuple[float, float]:
    """(picture-level, object-level) p50, interleaved so that both meet the same caches."""
    p50_ms(es, index, queries[:5], True)  # warm both graphs
    p50_ms(es, index, queries[:5], False)
    return p50_ms(es, index, queries, False), p50_ms(es, index, queries, True)


def coco_sized(tmp: Path) -> dict:
    rng = np.random.default_rng(7)
    root = tmp / "photos"
    (root / "images").mkdir(parents=True)
    photos = write_photos(root / "images", PICTURES)
    write_labels(photos, root, rng)
    embedder = ClipEmbedder(MODEL_ID, cache_path=tmp / "cache.sqlite")
    es = embedded_client(tmp / "engine")
    started = time.perf_counter()
    index_folder(es, embedder, root, "pictures", progress=False, objects=False)
    pictures_s = time.perf_counter() - started
    started = time.perf_counter()
    report = index_folder(es, embedder, root, "objects", progress=False)  # pictures cached: the crops' time
    crops_s = time.perf_counter() - started
    queries = spectrum_vectors(QUERIES, embedder.dim, seed=3)
    picture_ms, object_ms = latencies(es, "objects", queries)
    close_store(tmp / "engine")
    return {
        "pictures_per_s": PICTURES / pictures_s,
        "crops_per_s": report.objects / crops_s,
        "objects": report.objects,
        "coco_picture_ms": picture_ms,
        "coco_object_ms": object_ms,
    }


def at_scale(tmp: Path, pictures: int = 25_000, per_picture: int = 4, dims: int = 512) -> dict:
    """`pictures` documents, each with its own vector and `per_picture` object vectors."""
    vectors = spectrum_vectors(pictures * (per_picture + 1), dims, seed=11)
    es = embedded_client(tmp / "scale")
    es.indices.create(index="scale", mappings=index_mapping(dims, "bench/synthetic"))

    def actions():
        for i in range(pictures):
            rows = vectors[i * (per_picture + 1) : (i + 1) * (per_picture + 1)]
            objects = [{"label": "thing", "box": [0, 0, 10, 10], "vector": row.tolist()} for row in rows[1:]]
            yield {"_index": "scale", "_id": str(i), "image_vector": rows[0].tolist(), "objects": objects}

    started = time.perf_counter()
    bulk(es, actions(), chunk_size=500, request_timeout=600)
    es.indices.refresh(index="scale")
    load_s = time.perf_counter() - started
    picture_ms, object_ms = latencies(es, "scale", spectrum_vectors(QUERIES, dims, seed=12))
    close_store(tmp / "scale")
    return {"scale_objects": pictures * per_picture, "scale_load_s": load_s, "scale_picture_ms": picture_ms,
            "scale_object_ms": object_ms}  # fmt: skip


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        figures = coco_sized(Path(tmp))
        figures |= at_scale(Path(tmp))
    figures["crops_vs_pictures_per_s"] = figures["crops_per_s"] / figures["pictures_per_s"]
    figures["coco_object_vs_picture_latency"] = figures["coco_object_ms"] / figures["coco_picture_ms"]
    figures["scale_object_vs_picture_latency"] = figures["scale_object_ms"] / figures["scale_picture_ms"]
    return figures


def rows(figures: dict) -> list[tuple[str, str]]:
    return [
        (f"index_folder, pictures alone, {PICTURES} photos (pictures/s)", f"{figures['pictures_per_s']:.1f}"),
        (f"index_folder, their {figures['objects']} crops, pictures cached (crops/s)", f"{figures['crops_per_s']:.1f}"),
        ("crops/s against pictures/s", f"{figures['crops_vs_pictures_per_s']:.2f}"),
        (
            f"kNN p50 at COCO 128's size, picture / object level (ms, {figures['objects']} objects)",
            f"{figures['coco_picture_ms']:.1f} / {figures['coco_object_ms']:.1f}",
        ),
        (
            f"kNN p50 at {figures['scale_objects']:,} objects, picture / object level (ms)",
            f"{figures['scale_picture_ms']:.1f} / {figures['scale_object_ms']:.1f}",
        ),
        ("object_vs_picture_latency, COCO size / 100,000 objects", "{:.2f} / {:.2f}".format(
            figures["coco_object_vs_picture_latency"], figures["scale_object_vs_picture_latency"])),
    ]  # fmt: skip
