"""Embedded-engine kNN through the official client vs a bare numpy product + top-k.

Both search the same float32 matrix; the engine's extra cost is the client, JSON and
response building. Runs are interleaved so machine noise hits both sides alike.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from helpers._engine import embedded_client
from helpers._engine.node import close_store, store_for
from helpers.index import VECTOR_FIELD, index_mapping
from helpers.search import knn_clause

K = 10


def numpy_top_k(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    scores = matrix @ query
    top = np.argpartition(-scores, K - 1)[:K]
    return top[np.argsort(-scores[top])]


def load(path: Path, vectors: np.ndarray, offset: int = 0) -> None:
    """Fill the store directly (bulk JSON of 100k × 512 floats would only time the loader)."""
    es = embedded_client(path)
    if not es.indices.exists(index="bench"):
        es.indices.create(index="bench", mappings=index_mapping(vectors.shape[1], "bench/random"))
    store = store_for(path)
    for start in range(0, len(vectors), 10_000):
        rows = range(start, min(start + 10_000, len(vectors)))
        store.write(
            "bench", [(f"v{offset + i}", {"filename": f"{offset + i}.jpg"}, {VECTOR_FIELD: vectors[i]}) for i in rows]
        )


def run(count: int = 100_000, dims: int = 512, queries: int = 40) -> dict:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(count, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        load(Path(tmp), vectors)
        es = embedded_client(Path(tmp))
        numpy_times, engine_times = [], []
        for q in rng.normal(size=(queries, dims)).astype(np.float32):
            started = time.perf_counter()
            expected = numpy_top_k(vectors, q / np.linalg.norm(q))
            numpy_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            hits = es.search(index="bench", knn=knn_clause(q, k=K), size=K, source=False)["hits"]["hits"]
            engine_times.append(time.perf_counter() - started)
            assert [h["_id"] for h in hits] == [f"v{i}" for i in expected], "engine and numpy disagree"
        close_store(Path(tmp))
    numpy_ms, engine_ms = 1000 * np.median(numpy_times), 1000 * np.median(engine_times)
    return {"vectors": count, "numpy_ms": numpy_ms, "engine_ms": engine_ms, "ratio": engine_ms / numpy_ms}
