"""The search widget's query-to-grid time on the demo index: embed the prompt, search, draw the
supervision grid with boxes (matplotlib's Agg backend, what a notebook's inline backend runs)."""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

from embedded_es import embedded_client
from helpers._offline.demo_data import CLASS_NAMES, write_demo_dataset
from helpers.clip import ClipEmbedder
from helpers.data import detections
from helpers.index import index_folder
from helpers.widget import SearchWidget

QUERIES = 20


def query_to_grid_ms() -> float:
    """p50 over 20 text queries, each a different class's prompt."""
    matplotlib.use("Agg")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_demo_dataset(Path(tmp) / "demo", count=128, seed=0)
        embedder = ClipEmbedder("demo", cache_path=Path(tmp) / "cache.sqlite")
        es = embedded_client(Path(tmp) / "engine")
        index_folder(es, embedder, data, "demo", progress=False)
        widget = SearchWidget(es, "demo", data, embedder, detections(data))
        timings = []
        for name in CLASS_NAMES[:QUERIES]:
            widget.text.value = f"a photo of a {name}"
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the Output widget's escapes, outside a notebook
                widget.search()
            timings.append((time.perf_counter() - started) * 1000)
            assert "error" not in widget.status.value, widget.status.value
        return statistics.median(timings)


if __name__ == "__main__":
    print(f"widget query to grid, p50 over {QUERIES} queries: {query_to_grid_ms():.0f} ms")
