"""Indexing, measured side by side on the same photos, model and store:

- the guide's loop: embed one image, `es.index` one document, for each image;
- this project's `index_folder` (batches of 8, preprocessing overlapped with inference,
  bulk requests), cold (empty embedding cache, empty index);
- the same folder again (warm re-run);
- the model alone on pre-decoded, preprocessed tensors at its best batch size: the ceiling.

All through `inference.models.Clip` with the full-size ViT-B/32 graph (random weights).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageOps

from bench.vit_b32 import MODEL_ID, generate
from helpers.clip import ClipEmbedder, load_rgb
from helpers.embedded import embedded_client
from helpers.indexing import index_folder
from helpers.mapping import index_mapping

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def write_photos(folder: Path, count: int) -> list[Path]:
    """`count` distinct COCO-sized JPEGs (640 px wide) cut from photos that ship with scikit-image."""
    rng = np.random.default_rng(0)
    sources = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]
    paths = []
    for i in range(count):
        photo = sources[i % len(sources)]
        w, h = photo.size
        left, top = int(rng.integers(0, w // 4)), int(rng.integers(0, h // 4))
        crop = photo.crop((left, top, left + 3 * w // 4, top + 3 * h // 4)).resize((640, 480), Image.BICUBIC)
        if i % 2:
            crop = ImageOps.mirror(crop)
        paths.append(folder / f"photo_{i:03d}.jpg")
        crop.save(paths[-1], quality=int(rng.integers(80, 95)))
    return paths


def model_limit(embedder: ClipEmbedder, paths: list[Path]) -> tuple[float, int]:
    """Best images/s of the visual graph alone, and the batch size that gave it."""
    tensors = np.concatenate([embedder.model.preproc_image(load_rgb(p)) for p in paths[:8]])
    best = (0.0, 0)
    for batch in (1, 2, 4, 8):
        embedder.model.predict(tensors[:batch])  # warm-up
        rounds = max(2, 16 // batch)
        started = time.perf_counter()
        for _ in range(rounds):
            embedder.model.predict(tensors[:batch])
        best = max(best, (rounds * batch / (time.perf_counter() - started), batch))
    return best


def guide_loop(embedder: ClipEmbedder, paths: list[Path], engine: Path) -> float:
    """The guide's way, on the same model and store: one image, one request, at a time."""
    es = embedded_client(engine)
    es.indices.create(index="guide", mappings=index_mapping(embedder.dim, embedder.model_id))
    started = time.perf_counter()
    for path in paths:
        vector = embedder.model.embed_image(str(path))[0]
        es.index(index="guide", document={"filename": path.name, "image_vector": vector.tolist()})
    es.indices.refresh(index="guide")
    return time.perf_counter() - started


def run(count: int = 128, rounds: int = 3) -> dict:
    """Each round measures every contender once, on fresh stores and caches; medians of the
    rounds give the figures, so machine noise hits all sides alike."""
    generate()
    samples: dict[str, list[float]] = {"model": [], "guide": [], "cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = write_photos(folder, count)
        for round_ in range(rounds):
            work = Path(tmp) / f"round{round_}"
            embedder = ClipEmbedder(MODEL_ID, cache_path=work / "cache.sqlite")
            samples["model"].append(model_limit(embedder, paths)[0])
            samples["guide"].append(guide_loop(embedder, paths, work / "guide-engine"))
            es = embedded_client(work / "engine")
            started = time.perf_counter()
            first = index_folder(es, embedder, folder, "project", progress=False)
            samples["cold"].append(time.perf_counter() - started)
            started = time.perf_counter()
            index_folder(es, embedder, folder, "project", progress=False)
            samples["warm"].append(time.perf_counter() - started)
            assert first.indexed == count and es.count(index="project")["count"] == count
    model, guide, cold, warm = (float(np.median(samples[k])) for k in ("model", "guide", "cold", "warm"))
    return {
        "images": count,
        "model_images_per_s": model,
        "guide_images_per_s": count / guide,
        "cold_images_per_s": count / cold,
        "warm_s": warm,
        "index_speedup_vs_seed_loop": guide / cold,
        "pipeline_efficiency_vs_model_limit": (count / cold) / model,
        "warm_rerun_speedup": cold / warm,
    }
