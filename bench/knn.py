"""The embedded engine's approximate kNN at 100,000 x 512 (and, with `KNN_BENCH_SIZES`, more):
recall@10 by `num_candidates`, query latency through the official client against exact
search on the same vectors, the graph's build throughput against faiss alone, memory per
vector against Elasticsearch's figures, and a filtered query against a plain one.

Vectors have a decaying spectrum and come in topics (`helpers/synthetic.py`, whose docstring
says why): uniform random vectors defeat every ANN method and teach nothing. The data's
relative contrast (mean distance over nearest distance, about 1.75 to 2 for real embeddings)
is printed with it. Each figure is printed as soon as it is measured.

    python -m bench.knn                        # 100,000 x 512
    KNN_BENCH_SIZES=100000,1000000 python -m bench.knn
    KNN_BENCH_SIZES=1000000 KNN_BENCH_KINDS=hnsw python -m bench.knn   # the float graph only
    KNN_BENCH_FAISS_ALONE=0 ...                # skip faiss's own build (it doubles a big run)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from embedded_es import embedded_client
from embedded_es.ann import one_thread
from embedded_es.node import close_store, store_for
from helpers.synthetic import exact_neighbours, spectrum_vectors

K, M, EF_CONSTRUCTION = 10, 16, 100
CANDIDATES = (10, 50, 100, 200)
LABELS = ("cat", "dog", "cup")
QUERIES = 200
LATENCY_QUERIES = 100
# Elasticsearch's memory per vector (bytes, graph excluded), from its kNN tuning guide.
ES_BYTES = {"hnsw": lambda d: 4 * d, "int8_hnsw": lambda d: d + 4, "bbq_hnsw": lambda d: d / 8 + 14}


def say(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def load(path: Path, index: str, vectors: np.ndarray, kind: str) -> None:
    """Documents straight into the store (bulk JSON of 100k x 512 floats would time the loader)."""
    es = embedded_client(path)
    options = {"type": kind} if kind == "flat" else {"type": kind, "m": M, "ef_construction": EF_CONSTRUCTION}
    vector = {"type": "dense_vector", "dims": vectors.shape[1], "similarity": "cosine", "index_options": options}
    es.indices.create(index=index, mappings={"properties": {"v": vector, "label": {"type": "keyword"}}})
    store = store_for(path)
    for start in range(0, len(vectors), 10_000):
        rows = range(start, min(start + 10_000, len(vectors)))
        store.write(index, [(f"{i}", {"label": LABELS[i % 3]}, {"v": vectors[i]}) for i in rows])


def search_ids(es, index: str, query: np.ndarray, num_candidates: int, label: str | None = None) -> list[int]:
    clause = {"field": "v", "query_vector": query.tolist(), "k": K, "num_candidates": num_candidates}
    if label is not None:
        clause["filter"] = {"term": {"label": label}}
    hits = es.search(index=index, knn=clause, size=K, source=False)["hits"]["hits"]
    return [int(h["_id"]) for h in hits]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t[:K].tolist())) / K for f, t in zip(found, truth)]))


def p50_ms(es, index: str, queries: np.ndarray, num_candidates: int, label: str | None = None) -> float:
    times = []
    for q in queries:
        started = time.perf_counter()
        search_ids(es, index, q, num_candidates, label)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def filtered_p50s(es, index: str, queries: np.ndarray, masks: dict) -> tuple[float, float, float]:
    """Median ms of the plain query, the filtered one, and the filtered one with its mask
    rebuilt (`masks`, the view's kept filters, emptied untimed), taken in turn for each query
    so that all three meet the same caches and neighbours' load; after one untimed round."""
    times: list[list[float]] = [[], [], []]
    for round_ in range(2):
        for q in queries if round_ else queries[:1]:
            for series, label in enumerate((None, "cat", "cat")):
                if series == 2:
                    masks.clear()
                started = time.perf_counter()
                search_ids(es, index, q, 100, label)
                if round_:
                    times[series].append(time.perf_counter() - started)
    plain, filtered, uncached = (1000 * float(np.median(t)) for t in times)
    return plain, filtered, uncached


def faiss_alone(vectors: np.ndarray) -> tuple[float, faiss.Index]:
    """faiss's own HNSW build on the same vectors, one thread, one batch: (seconds, index)."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    started = time.perf_counter()
    with one_thread():
        index.add(vectors)
    return time.perf_counter() - started, index


def faiss_recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray, ef: int) -> tuple[float, float]:
    """faiss alone, no client: (recall@10, median ms per query) at one efSearch."""
    params = faiss.SearchParametersHNSW()
    params.efSearch = ef
    found, times = [], []
    with one_thread():
        for q in queries:
            started = time.perf_counter()
            _, ids = index.search(q[None, :], K, params=params)
            times.append(time.perf_counter() - started)
            found.append(ids[0].tolist())
    return recall(found, truth), 1000 * float(np.median(times))


def contrast(vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> float:
    """Relative contrast: mean distance from a query over its nearest neighbour's (unit vectors)."""
    mean_cos = float(np.mean(queries @ vectors.mean(axis=0)))
    nearest_cos = float(np.mean(np.sum(queries * vectors[truth[:, 0]], axis=1)))
    return float(np.sqrt((1 - mean_cos) / (1 - nearest_cos)))


def run(count: int = 100_000, dims: int = 512) -> dict:
    print(f"kNN at {count:,} x {dims}, m {M}, ef_construction {EF_CONSTRUCTION}, one thread:", flush=True)
    began = time.perf_counter()
    vectors = spectrum_vectors(count, dims)
    queries = spectrum_vectors(QUERIES, dims, seed=99)
    truth = exact_neighbours(vectors, queries, K)
    figures: dict = {"vectors": count, "dims": dims, "relative_contrast": contrast(vectors, queries, truth)}
    say("data: power-law spectrum in 1,000 topics; relative contrast", f"{figures['relative_contrast']:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        es = embedded_client(path)
        alone = None
        if os.environ.get("KNN_BENCH_FAISS_ALONE", "1") != "0":
            alone, reference = faiss_alone(vectors)
            say("faiss alone: HNSW build (vectors/s)", f"{count / alone:,.0f}")
            for ef in CANDIDATES:
                found, ms = faiss_recall(reference, queries, truth, ef)
                figures[f"faiss_alone_recall_at_{ef}"] = found
                say(f"faiss alone: recall@10 / ms at efSearch {ef} (no client)", f"{found:.3f} / {ms:.2f}")
            del reference
        for kind in kinds():
            load(path, kind, vectors, kind)
            started = time.perf_counter()
            es.indices.refresh(index=kind)  # the graph is built here, from the stored vectors
            build = time.perf_counter() - started
            graph = store_for(path).graph(store_for(path).view(kind), "v")
            say(f"{kind}: build at refresh (vectors/s)", f"{count / build:,.0f}")
            if kind == "hnsw" and alone is not None:
                figures["build_vs_faiss_alone"] = alone / build
                say("hnsw: build throughput vs faiss alone (goal >= 0.8)", f"{alone / build:.2f}")
            per_vector = graph.code_bytes()
            links = graph.graph_bytes() / count
            es_bytes = ES_BYTES[kind](dims)
            figures[f"{kind}_bytes_per_vector"] = per_vector
            say(
                f"{kind}: bytes/vector, codes (graph) vs ES (goal <= 1.1x)",
                f"{per_vector} (+{links:.0f}) vs {es_bytes:g} = {per_vector / es_bytes:.2f}x",
            )
            for num_candidates in CANDIDATES if kind == "hnsw" else (100,):
                found = [search_ids(es, kind, q, num_candidates) for q in queries]
                figures[f"{kind}_recall_at_{num_candidates}"] = recall(found, truth)
                goal = " (goal >= 0.95)" if kind == "hnsw" and num_candidates == 100 else ""
                say(f"{kind}: recall@10, num_candidates {num_candidates}{goal}", f"{recall(found, truth):.3f}")
        load(path, "flat", vectors, "flat")
        latency = queries[:LATENCY_QUERIES]
        exact = p50_ms(es, "flat", latency, 100)
        approximate = p50_ms(es, "hnsw", latency, 100)
        figures |= {"exact_p50_ms": exact, "p50_ms": approximate, "speedup_vs_exact": exact / approximate}
        say("exact (flat) query p50 through the client (ms)", f"{exact:.2f}")
        say("hnsw query p50, num_candidates 100 (ms, goal <= 2)", f"{approximate:.2f}")
        say("  speedup vs exact (goal >= 5x)", f"{exact / approximate:.1f}x")
        plain, filtered, uncached = filtered_p50s(es, "hnsw", latency, store_for(path).view("hnsw").knn_filters)
        figures |= {"filtered_p50_ms": filtered, "filtered_vs_plain": filtered / plain}
        figures["filtered_uncached_vs_plain"] = uncached / plain
        say("hnsw plain / filtered (a third pass) p50, taken in turn (ms)", f"{plain:.2f} / {filtered:.2f}")
        say("  filtered vs plain (goal <= 1.5)", f"{filtered / plain:.2f}")
        say("  the same, the filter's mask rebuilt for every query", f"{uncached / plain:.2f}")
        found = [search_ids(es, "hnsw", q, 100, "cat") for q in queries]
        cats = np.flatnonzero(np.arange(count) % 3 == 0)
        filtered_truth = cats[exact_neighbours(vectors[cats], queries, K)]
        figures["filtered_recall_at_100"] = recall(found, filtered_truth)
        say("hnsw filtered recall@10, num_candidates 100", f"{recall(found, filtered_truth):.3f}")
        close_store(path)
    figures["wall_s"] = time.perf_counter() - began
    say("wall time of this size (s)", f"{figures['wall_s']:.0f}")
    return figures


def kinds() -> list[str]:
    """The index_options types measured (`KNN_BENCH_KINDS`, comma-separated; hnsw is always one)."""
    given = os.environ.get("KNN_BENCH_KINDS", "hnsw,int8_hnsw,bbq_hnsw").split(",")
    return ["hnsw", *[kind.strip() for kind in given if kind.strip() in ES_BYTES and kind.strip() != "hnsw"]]


def sizes() -> list[int]:
    given = os.environ.get("KNN_BENCH_SIZES", "100000")
    return [int(size) for size in given.split(",") if size.strip()]


def main() -> int:
    results = [run(size) for size in sizes()]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
