"""Retrieval quality, measured from class labels alone, two ways:

- **the model** (`evaluate`, the CLI's `eval`): precision@k text-to-image and image-to-image,
  computed exactly (cosine over all vectors), so it measures the model, not the index;
- **through the index** (notebook 06): precision@k per class as a user meets it, and the
  recall of approximate kNN against exact search (`script_score`, cosine + 1 over every
  document: slow on big indexes, but the ground truth HNSW is measured against) for
  several `num_candidates`.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from elasticsearch import ApiError, Elasticsearch

from helpers._scan import ImageRecord
from helpers.clip import ClipEmbedder
from helpers.index import VECTOR_FIELD
from helpers.search import hits_of, knn_request, knn_search

PROMPT_TEMPLATE = "a photo of a {}"


def text_to_image_precision(
    image_vectors: np.ndarray,
    labels: list[tuple[str, ...]],
    text_vectors: dict[str, np.ndarray],
    k: int = 5,
) -> dict[str, float]:
    """Per class: the share of the top-k images for its prompt that hold that class."""
    per_class = {}
    for name, query in text_vectors.items():
        top = np.argsort(-(image_vectors @ query), kind="stable")[:k]
        per_class[name] = float(np.mean([name in labels[i] for i in top]))
    return per_class


def image_to_image_precision(image_vectors: np.ndarray, labels: list[tuple[str, ...]], k: int = 5) -> float:
    """Mean over labelled images of the share of their k nearest others sharing a class."""
    similarity = image_vectors @ image_vectors.T
    np.fill_diagonal(similarity, -np.inf)
    scores = []
    for i, own in enumerate(labels):
        if own:
            top = np.argsort(-similarity[i], kind="stable")[:k]
            scores.append(np.mean([bool(set(own) & set(labels[j])) for j in top]))
    return float(np.mean(scores)) if scores else 0.0


def evaluate(embedder: ClipEmbedder, records: list[ImageRecord], k: int = 5) -> dict:
    """Both precision figures; classes with fewer than k images are left out (they cannot
    reach 1.0), and how many were scored is reported."""
    vectors = embedder.embed_files([r.path for r in records], [r.sha256 for r in records])
    labels = [r.labels for r in records]
    counts = Counter(name for own in labels for name in own)
    classes = sorted(name for name, n in counts.items() if n >= k)
    prompts = embedder.embed_texts([PROMPT_TEMPLATE.format(name) for name in classes]) if classes else []
    per_class = text_to_image_precision(vectors, labels, dict(zip(classes, prompts)), k)
    return {
        "model": embedder.model_id,
        "stand_in": embedder.is_stand_in,
        "images": len(records),
        "classes_scored": len(classes),
        f"text_to_image_precision_at_{k}": round(float(np.mean(list(per_class.values()))) if per_class else 0.0, 4),
        f"image_to_image_precision_at_{k}": round(image_to_image_precision(vectors, labels, k), 4),
        "per_class": {name: round(p, 4) for name, p in per_class.items()},
    }


def precision_by_class(
    es: Elasticsearch, embedder: ClipEmbedder, index: str, classes: list[str], k: int = 5
) -> dict[str, float]:
    """Per class: the share of the top k hits for "a photo of a {class}" labelled with it. All
    the classes' searches go in one `_msearch` request (a header line and a body per class)."""
    prompts = embedder.embed_texts([PROMPT_TEMPLATE.format(name) for name in classes])
    searches: list[dict] = []
    for prompt in prompts:
        searches += [{"index": index}, knn_request(prompt, k=k)]
    answer = es.msearch(searches=searches) if searches else {"responses": []}
    precision = {}
    for name, response in zip(classes, answer["responses"]):
        if "error" in response:  # each search answers on its own: one failure fails this evaluation
            raise ApiError(message=response["error"].get("type", "error"), meta=answer.meta, body=response)
        precision[name] = float(np.mean([name in hit.labels for hit in hits_of(response)]))
    return precision


def exact_query(vector: np.ndarray) -> dict:
    """Exact kNN: a `script_score` query that scores every document with a vector by its cosine
    + 1 (scores must not be negative)."""
    script = {
        "source": f"cosineSimilarity(params.query_vector, '{VECTOR_FIELD}') + 1.0",
        "params": {"query_vector": vector.tolist()},
    }
    return {"script_score": {"query": {"exists": {"field": VECTOR_FIELD}}, "script": script}}


def exact_top_k(es: Elasticsearch, index: str, vector: np.ndarray, k: int) -> list[str]:
    query = exact_query(vector)
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
