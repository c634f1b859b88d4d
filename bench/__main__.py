"""`make bench`: figures measured side by side in one run; the last line is JSON.

Embedding timings use a full-size ViT-B/32 CLIP graph with random weights
(`bench/vit_b32.py`) through `inference.models.Clip`, offline.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("OFFLINE_MODE", "True")  # the generated model is local: no network, no telemetry

from bench import indexing, search_overhead


def main() -> None:
    index = indexing.run()
    search = search_overhead.run()
    rows = [
        ("model alone, best batch (images/s)", f"{index['model_images_per_s']:.1f}"),
        ("guide's loop: embed 1, index 1 (images/s)", f"{index['guide_images_per_s']:.1f}"),
        ("index_folder, cold (images/s)", f"{index['cold_images_per_s']:.1f}"),
        (f"index_folder, warm re-run of {index['images']} images (s)", f"{index['warm_s']:.3f}"),
        ("embedded kNN, 100,000 x 512, median (ms)", f"{search['engine_ms']:.1f}"),
        ("numpy product + top-k, same matrix (ms)", f"{search['numpy_ms']:.1f}"),
        ("index_speedup_vs_seed_loop (>= 1.5)", f"{index['index_speedup_vs_seed_loop']:.2f}"),
        ("pipeline_efficiency_vs_model_limit (>= 0.85)", f"{index['pipeline_efficiency_vs_model_limit']:.2f}"),
        ("warm_rerun_speedup (>= 50)", f"{index['warm_rerun_speedup']:.0f}"),
        ("embedded_search_overhead_vs_numpy_100k (<= 1.3)", f"{search['ratio']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>8}")
    figures = ("index_speedup_vs_seed_loop", "pipeline_efficiency_vs_model_limit", "warm_rerun_speedup")
    result = {name: round(index[name], 3) for name in figures}
    result["embedded_search_overhead_vs_numpy_100k"] = round(search["ratio"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
