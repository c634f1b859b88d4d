"""`make bench`: figures measured side by side in one run; the last line is JSON.

Embedding timings use a full-size ViT-B/32 CLIP graph with random weights
(`bench/vit_b32.py`) through `inference.models.Clip`, offline.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

os.environ.setdefault("OFFLINE_MODE", "True")  # the generated model is local: no network, no telemetry

from bench import indexing, knn, objects, scale, search_overhead, server, widget_latency
from bench.vit_b32 import MODEL_ID
from embedded_es import embedded_client
from helpers.clip import ClipEmbedder
from helpers.index import index_folder

WIDTH = 72  # the longest figure's name


def index_rows(index: dict) -> list[tuple[str, str]]:
    """Indexing, the model alone against the guide's loop and `index_folder` (bench/indexing.py)."""
    ways = {"as_loaded": "as Inference runs it", "data_parallel": "one run per core, as the pipeline runs it"}
    each_way = index["pipeline_efficiency_vs_each_way"]
    return [
        (
            f"model alone, batch {index['best_batch']}, {ways['as_loaded']} (images/s)",
            f"{index['model_as_loaded_images_per_s']:.1f}",
        ),
        (f"model alone, {ways['data_parallel']}", f"{index['model_data_parallel_images_per_s']:.1f}"),
        ("guide's loop: embed 1, index 1 (images/s)", f"{index['guide_images_per_s']:.1f}"),
        ("index_folder, cold (images/s)", f"{index['cold_images_per_s']:.1f}"),
        (f"index_folder, warm re-run of {index['images']} images (s)", f"{index['warm_s']:.3f}"),
        ("index_speedup_vs_seed_loop (>= 1.5)", f"{index['index_speedup_vs_seed_loop']:.2f}"),
        ("pipeline_efficiency_vs_model_limit (>= 0.85)", f"{index['pipeline_efficiency_vs_model_limit']:.2f}"),
        (f"  the limit: the model {ways[index['model_limit']]}", ""),
        ("  range over the rounds", "{:.2f} to {:.2f}".format(*index["pipeline_efficiency_range"])),
        *((f"  over the model {ways[way]}", f"{value:.2f}") for way, value in each_way.items()),
        ("warm_rerun_speedup (>= 50)", f"{index['warm_rerun_speedup']:.0f}"),
    ]


def search_rows(search: dict) -> list[tuple[str, str]]:
    """Exact search through the client against numpy on the same matrix (bench/search_overhead.py)."""
    return [
        ("embedded kNN, 100,000 x 512, median (ms)", f"{search['engine_ms']:.1f}"),
        ("numpy product + top-k, same matrix (ms)", f"{search['numpy_ms']:.1f}"),
        ("embedded_search_overhead_vs_numpy_100k (<= 1.3)", f"{search['ratio']:.2f}"),
        ("embedded_filtered_knn_overhead_vs_numpy_100k (<= 1.5)", f"{search['filtered_ratio']:.2f}"),
    ]


def server_rows(figures: dict) -> list[tuple[str, str]]:
    """Server mode vs in process (bench/server.py)."""
    rates = " / ".join(f"{c}: {rate:.1f}" for c, rate in figures["server_images_per_s"].items())
    return [
        (
            "cli_cold_search_speedup_server_vs_in_process (>= 4)",
            f"{figures['cli_cold_search_speedup_server_vs_in_process']:.1f}",
        ),
        (
            f"server_index_throughput_vs_in_process, {figures['concurrency']} requests in flight",
            f"{figures['server_index_throughput_vs_in_process']:.2f}",
        ),
        ("  index_folder through the server, images/s by requests in flight", rates),
        ("  index_folder in process (images/s)", f"{figures['in_process_images_per_s']:.1f}"),
        ("  through the server, pictures sent full size (images/s)", f"{figures['full_size_images_per_s']:.1f}"),
        ("  client's preparation of a picture, one core (ms)", f"{figures['client_prepare_ms_per_picture']:.1f}"),
        (
            "  request per picture, pre-cropped / full size (kB)",
            "{cropped:.0f} / {full:.0f}".format(**figures["request_kb_per_picture"]),
        ),
    ]


def reported() -> Iterator[tuple[str, str]]:
    """Figures that are measured and shown, not gated, each yielded as soon as it is measured."""
    with tempfile.TemporaryDirectory() as tmp:
        photos, engine = Path(tmp) / "photos", Path(tmp) / "engine"
        photos.mkdir()
        indexing.write_photos(photos, 128)
        embedder = ClipEmbedder(MODEL_ID, cache_path=Path(tmp) / "cache.sqlite")
        es = embedded_client(engine)
        index_folder(es, embedder, photos, "photos", progress=False)
        p50, p99 = scale.text_latency(es, embedder, "photos")
        yield ("text query end to end, embed + kNN (ms, p50 / p99)", f"{p50:.0f} / {p99:.0f}")
        cold = scale.cold_cli_seconds(engine, "photos", MODEL_ID)
        yield ("python -m helpers search, cold, to first result (s)", f"{cold:.1f}")
    for count in (10_000, 100_000, 1_000_000):
        r = scale.engine_at(count)
        shown = f"{r['load_s']:.1f} s / {r['matrix_mb']:,.0f} MB / {r['query_ms']:.1f} ms"
        yield (f"embedded engine, {count:,} x 512: load / memory / kNN", shown)
    yield (
        "search widget, query to grid on the demo index, p50 (ms, aim <= 300)",
        f"{widget_latency.query_to_grid_ms():.0f}",
    )


def show(rows: Iterable[tuple[str, str]]) -> None:
    """Each figure printed the moment it is measured: a later failure loses nothing shown."""
    for name, value in rows:
        print(f"{name:<{WIDTH}}  {value:>8}", flush=True)


def main() -> int:
    index = indexing.run()
    show(index_rows(index))
    search = search_overhead.run()
    show(search_rows(search))
    approximate = [knn.run(size) for size in knn.sizes()]  # printed as measured (bench/knn.py)
    by_object = objects.run()
    show(objects.rows(by_object))
    remote = server.run()
    show(server_rows(remote))
    show(reported())
    suite = scale.notebook_suite()
    outcome = "passed" if suite["passed"] else f"FAILED: {suite['summary']}"
    show(
        [
            (
                f"notebook suite (nbval, {suite['notebooks']} notebooks): wall time (s), outcome",
                f"{suite['seconds']:.0f}, {outcome}",
            )
        ]
    )
    figures = ("index_speedup_vs_seed_loop", "pipeline_efficiency_vs_model_limit", "warm_rerun_speedup")
    result = {name: round(index[name], 3) for name in figures}
    result["embedded_search_overhead_vs_numpy_100k"] = round(search["ratio"], 3)
    result["embedded_filtered_knn_overhead_vs_numpy_100k"] = round(search["filtered_ratio"], 3)
    for name in ("cli_cold_search_speedup_server_vs_in_process", "server_index_throughput_vs_in_process"):
        result[name] = round(remote[name], 3)
    result["server_concurrency"] = remote["concurrency"]
    result["knn"] = approximate
    for name in ("crops_vs_pictures_per_s", "coco_object_vs_picture_latency", "scale_object_vs_picture_latency"):
        result[name] = round(by_object[name], 3)
    result["notebook_suite_passed"] = suite["passed"]
    print(json.dumps(result))
    return 0 if suite["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
