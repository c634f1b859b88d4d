"""Embedded-engine kNN through the official client vs a bare numpy product + top-k, plain
and with a `term` pre-filter on a label (a third of the documents carry each label). The
field is mapped `flat` (exact search): approximate search is measured by `bench/knn.py`.

Both search the same float32 matrix; the engine's extra cost is the client, JSON, the
filter and response building. numpy's filtered side keeps the label's row numbers from one
query to the next, as any program would, and ranks only those rows. Runs are interleaved so machine noise hits both
sides alike.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from embedded_es import embedded_client
from embedded_es.node import close_store, store_for
from helpers.index import VECTOR_FIELD, index_mapping
from helpers.search import knn_clause

K = 10
LABELS = ("cat", "dog", "cup")


def numpy_top_k(matrix: np.ndarray, query: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the K best, among `rows` when given (the filtered case: one product over
    the whole matrix, then only those rows ranked; gathering a third of the rows first is slower)."""
    scores = matrix @ query
    if rows is not None:
        scores = scores[rows]
    top = np.argpartition(-scores, K - 1)[:K]
    top = top[np.argsort(-scores[top])]
    return top if rows is None else rows[top]


def label_of(i: int) -> str:
    return LABELS[i % len(LABELS)]


def load(path: Path, vectors: np.ndarray, offset: int = 0) -> None:
    """Fill the store directly (bulk JSON of 100k × 512 floats would only time the loader)."""
    es = embedded_client(path)
    if not es.indices.exists(index="bench"):
        mapping = index_mapping(vectors.shape[1], "bench/random")
        mapping["properties"][VECTOR_FIELD]["index_options"] = {"type": "flat"}  # exact: what numpy is held to
        es.indices.create(index="bench", mappings=mapping)
    store = store_for(path)
    for start in range(0, len(vectors), 10_000):
        rows = range(start, min(start + 10_000, len(vectors)))
        docs = [(f"v{offset + i}", {"filename": f"{offset + i}.jpg", "labels": [label_of(offset + i)]}) for i in rows]
        store.write("bench", [(doc_id, source, {VECTOR_FIELD: vectors[i]}) for (doc_id, source), i in zip(docs, rows)])


def run(count: int = 100_000, dims: int = 512, queries: int = 40) -> dict:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(count, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        load(Path(tmp), vectors)
        es = embedded_client(Path(tmp))
        rows_of = {label: np.flatnonzero([label_of(i) == label for i in range(count)]) for label in LABELS}
        times: dict[str, list[float]] = {"numpy": [], "engine": [], "numpy_filtered": [], "engine_filtered": []}
        for n, q in enumerate(rng.normal(size=(queries, dims)).astype(np.float32)):
            unit, label = q / np.linalg.norm(q), LABELS[n % len(LABELS)]
            for filtered in (False, True):
                rows = rows_of[label] if filtered else None
                started = time.perf_counter()
                expected = numpy_top_k(vectors, unit, rows)
                times["numpy_filtered" if filtered else "numpy"].append(time.perf_counter() - started)
                clause = knn_clause(q, k=K, labels=[label] if filtered else None)
                started = time.perf_counter()
                hits = es.search(index="bench", knn=clause, size=K, source=False)["hits"]["hits"]
                times["engine_filtered" if filtered else "engine"].append(time.perf_counter() - started)
                assert [h["_id"] for h in hits] == [f"v{i}" for i in expected], "engine and numpy disagree"
        close_store(Path(tmp))
    ms = {name: 1000 * float(np.median(values)) for name, values in times.items()}
    return {
        "vectors": count,
        "numpy_ms": ms["numpy"],
        "engine_ms": ms["engine"],
        "ratio": ms["engine"] / ms["numpy"],
        "filtered_numpy_ms": ms["numpy_filtered"],
        "filtered_engine_ms": ms["engine_filtered"],
        "filtered_ratio": ms["engine_filtered"] / ms["numpy_filtered"],
    }
