"""Retrieval quality as a user meets it, through the index: precision@k per class from the
labels, and the recall of approximate kNN against exact search for several `num_candidates`.

Exact search is a `script_score` query (cosine + 1 over every document): slow on big
indexes, but the ground truth approximate kNN (HNSW) is measured against.
"""

from __future__ import annotations

import time

import numpy as np
from elasticsearch import Elasticsearch

from helpers.clip import ClipEmbedder
from helpers.evaluate import PROMPT_TEMPLATE
from helpers.mapping import VECTOR_FIELD
from helpers.search import knn_search


def precision_by_class(
    es: Elasticsearch, embedder: ClipEmbedder, index: str, classes: list[str], k: int = 5
) -> dict[str, float]:
    """Per class: the share of the top k hits for "a photo of a {class}" labelled with it."""
    prompts = embedder.embed_texts([PROMPT_TEMPLATE.format(name) for name in classes])
    return {
        name: float(np.mean([name in hit.labels for hit in knn_search(es, index, prompt, k=k)]))
        for name, prompt in zip(classes, prompts)
    }


def exact_top_k(es: Elasticsearch, index: str, vector: np.ndarray, k: int) -> list[str]:
    script = {
        "source": f"cosineSimilarity(params.query_vector, '{VECTOR_FIELD}') + 1.0",
        "params": {"query_vector": vector.tolist()},
    }
    query = {"script_score": {"query": {"exists": {"field": VECTOR_FIELD}}, "script": script}}
    return [hit["_id"] for hit in es.search(index=index, query=query, size=k, source=False)["hits"]["hits"]]


def knn_recall(
    es: Elasticsearch, index: str, queries: np.ndarray, k: int = 10, num_candidates: tuple[int, ...] = (10, 20, 50, 100)
) -> list[dict]:
    """For each `num_candidates`: mean recall@k of approximate kNN (the share of the exact top k
    it returns) and its median latency in ms, over the query vectors."""
    truth = [set(exact_top_k(es, index, query, k)) for query in queries]
    rows = []
    for candidates in num_candidates:
        recalls, latencies = [], []
        for query, exact in zip(queries, truth):
            started = time.perf_counter()
            found = {hit.id for hit in knn_search(es, index, query, k=k, num_candidates=max(candidates, k))}
            latencies.append((time.perf_counter() - started) * 1000)
            recalls.append(len(found & exact) / len(exact) if exact else 1.0)
        rows.append(
            {"num_candidates": candidates, "recall": float(np.mean(recalls)), "ms": float(np.median(latencies))}
        )
    return rows


def searches_exactly(es: Elasticsearch) -> bool:
    """The embedded engine's kNN is exact, so its recall is 1.0 by construction."""
    return es.info()["version"].get("build_flavor") == "embedded"
