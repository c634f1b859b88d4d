"""Server mode vs in process, side by side in one run, with Inference's own HTTP server
(`tests/support/inference_server.py`) on this machine serving the same ViT-B/32 random-weight graph:

- a cold `python -m helpers search --text ...` to its first hit: in process (imports Inference
  and loads the model) vs with the server (neither), alternated, median of per-round ratios;
- indexing 128 photos: `index_folder` through the server at each concurrency vs in process,
  each round's ratio, medians over rounds;
- what sending pictures pre-cropped to the model's input saves over sending them at full size:
  bytes per picture and images/s; and what preparing one costs the client (decode, convert,
  resize and crop, PNG) on one core, which is what a GPU server leaves as the limit.

Client and server share this machine's cores here; on a GPU box the server's side shrinks and
the client's preparation (decode, resize, PNG) is what remains.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.indexing import write_photos
from bench.scale import cold_cli_seconds
from bench.vit_b32 import MODEL_ID, generate
from embedded_es import embedded_client
from helpers._remote import RemoteEmbedder, ServerClip, encoded
from helpers._settings import load_settings
from helpers.clip import ClipEmbedder, model_cache_dir
from helpers.embedder import BatchEmbedder
from helpers.index import index_folder
from tests.support.inference_server import running

CONCURRENCIES = (1, 2, 4, 8)
STANDS_FOR = 224  # the random-weight graph stands for clip/ViT-B-32, whose input is 224 × 224
SATURATED = 0.95  # the smallest concurrency within 5% of the best rate saturates the server


def images_per_s(es, embedder: BatchEmbedder, photos: Path) -> float:
    """A cold `index_folder` (no embedding cache, a re-created index), in images/s."""
    started = time.perf_counter()
    report = index_folder(es, embedder, photos, "bench", recreate=True, progress=False)
    assert report.new == len(list(photos.iterdir()))
    return report.new / (time.perf_counter() - started)


def remote(url: str, concurrency: int, resolution: int | None) -> RemoteEmbedder:
    settings = load_settings(environ={"INFERENCE_SERVER_URL": url}, dotenv_path=Path("/nonexistent"))
    clip = ServerClip(MODEL_ID, settings, concurrency=concurrency)
    clip.resolution = resolution
    return RemoteEmbedder(MODEL_ID, cache_path=None, clip=clip)


def run(rounds: int = 3) -> dict:
    generate()
    with tempfile.TemporaryDirectory() as tmp:
        photos, engine = Path(tmp) / "photos", Path(tmp) / "engine"
        photos.mkdir()
        paths = write_photos(photos, 128)
        es = embedded_client(engine)
        local = ClipEmbedder(MODEL_ID, cache_path=None)
        with running(model_cache=model_cache_dir()) as url:
            clients = {c: remote(url, c, STANDS_FOR) for c in CONCURRENCIES}  # the first request loads the model
            full_size = remote(url, max(CONCURRENCIES), None)
            samples: dict[str, list[float]] = {"cold": [], "local": [], "full_size": []}
            samples |= {f"c{c}": [] for c in CONCURRENCIES}
            for _ in range(rounds):
                samples["local"].append(images_per_s(es, local, photos))
                for c in CONCURRENCIES:
                    samples[f"c{c}"].append(images_per_s(es, clients[c], photos))
                samples["full_size"].append(images_per_s(es, full_size, photos))
                in_process = cold_cli_seconds(engine, "bench", MODEL_ID)  # searches the index just built
                samples["cold"].append(in_process / cold_cli_seconds(engine, "bench", MODEL_ID, server=url))
        started = time.perf_counter()
        cropped = [len(encoded(p, STANDS_FOR)) for p in paths]  # one thread: the client's cost per core
        prepare_ms = 1000 * (time.perf_counter() - started) / len(paths)
        sizes = {"cropped": np.mean(cropped), "full": np.mean([len(encoded(p, None)) for p in paths[:16]])}
    rates = {c: float(np.median(samples[f"c{c}"])) for c in CONCURRENCIES}
    saturating = min(c for c in CONCURRENCIES if rates[c] >= SATURATED * max(rates.values()))
    local_rate = float(np.median(samples["local"]))
    return {
        "cli_cold_search_speedup_server_vs_in_process": float(np.median(samples["cold"])),
        "server_index_throughput_vs_in_process": float(
            np.median(np.array(samples[f"c{saturating}"]) / samples["local"])
        ),
        "concurrency": saturating,
        "server_images_per_s": rates,
        "in_process_images_per_s": local_rate,
        "full_size_images_per_s": float(np.median(samples["full_size"])),
        "request_kb_per_picture": {way: size / 1024 for way, size in sizes.items()},
        "client_prepare_ms_per_picture": prepare_ms,
    }


if __name__ == "__main__":
    print(run())
