"""Retrieval quality, measured from class labels alone, two ways:

- **the model** (`evaluate`, the CLI's `eval`): precision@k text-to-image and image-to-image,
  computed exactly (cosine over all vectors), so it measures the model, not the index;
- **through the index** (notebooks 06 and 07): precision@k per class as a user meets it, by
  picture or by object (with how much of its picture a class's objects cover), and the
  recall of approximate kNN against exact search (`script_score`, cosine + 1 over every
  document: slow on big indexes, but the ground truth HNSW is measured against) for
  several `num_candidates`;
- **on a larger synthetic index** (notebooks 03 and 06, `helpers/synthetic.py`): recall@k,
  latency and memory per vector of hnsw, int8_hnsw and bbq_hnsw by `num_candidates`.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
from elasticsearch import ApiError, Elasticsearch

from helpers._pipeline import embed_files
from helpers._scan import ImageRecord, find_class_names
from helpers.connect import embedded_store
from helpers.data import read_records
from helpers.embedder import BatchEmbedder, Embedder, is_stand_in
from helpers.index import VECTOR_FIELD
from helpers.objects import read_objects
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


def evaluate(embedder: BatchEmbedder, records: list[ImageRecord], k: int = 5) -> dict:
    """Both precision figures; classes with fewer than k images are left out (they cannot
    reach 1.0), and how many were scored is reported."""
    vectors = embed_files(embedder, [r.path for r in records], [r.sha256 for r in records])
    labels = [r.labels for r in records]
    counts = Counter(name for own in labels for name in own)
    classes = sorted(name for name, n in counts.items() if n >= k)
    prompts = embedder.embed_texts([PROMPT_TEMPLATE.format(name) for name in classes]) if classes else []
    per_class = text_to_image_precision(vectors, labels, dict(zip(classes, prompts)), k)
    return {
        "model": embedder.model_id,
        "stand_in": is_stand_in(embedder.model_id),
        "images": len(records),
        "classes_scored": len(classes),
        f"text_to_image_precision_at_{k}": round(float(np.mean(list(per_class.values()))) if per_class else 0.0, 4),
        f"image_to_image_precision_at_{k}": round(image_to_image_precision(vectors, labels, k), 4),
        "per_class": {name: round(p, 4) for name, p in per_class.items()},
    }


def precision_by_class(
    es: Elasticsearch, embedder: Embedder, index: str, classes: list[str], k: int | dict[str, int] = 5,
    objects: bool = False,
) -> dict[str, float]:  # fmt: skip
    """Per class: the share of the top k hits for "a photo of a {class}" labelled with it, the
    pictures ranked as wholes or (`objects`) by their best object. `k` may differ by class
    ({class: k}; with each class's number of pictures, the R-precision). All the classes'
    searches go in one `_msearch` request (a header line and a body per class)."""
    prompts = embedder.embed_texts([PROMPT_TEMPLATE.format(name) for name in classes])
    depths = k if isinstance(k, dict) else dict.fromkeys(classes, k)
    searches: list[dict] = []
    for name, prompt in zip(classes, prompts):
        searches += [{"index": index}, knn_request(prompt, k=depths[name], objects=objects)]
    answer = es.msearch(searches=searches) if searches else {"responses": []}
    precision = {}
    for name, response in zip(classes, answer["responses"]):
        if "error" in response:  # each search answers on its own: one failure fails this evaluation
            raise ApiError(message=response["error"].get("type", "error"), meta=answer.meta, body=response)
        # a hit that is missing counts as a miss: precision at k, not over what came back
        precision[name] = sum(name in hit.labels for hit in hits_of(response)) / depths[name]
    return precision


def object_share_by_class(data_dir: Path) -> dict[str, float]:
    """Per class: the median share of its picture that one of its labelled objects covers
    (0.02: a small cup on a crowded table; 0.5: a close-up)."""
    names = find_class_names(data_dir)
    shares: dict[str, list[float]] = {}
    for record in read_records(data_dir):
        for item in read_objects(record, names)[0]:
            x0, y0, x1, y1 = item.box
            shares.setdefault(item.label, []).append((x1 - x0) * (y1 - y0) / (record.width * record.height))
    return {name: float(np.median(values)) for name, values in sorted(shares.items())}


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


# --- Approximate kNN on a larger index of synthetic vectors (notebooks 03 and 06) -------------

SYNTHETIC_FIELD = "vector"
ANN_TYPES = ("hnsw", "int8_hnsw", "bbq_hnsw")
# Elasticsearch's memory estimate per vector, in bytes, graph excluded (its kNN tuning guide).
ES_BYTES_PER_VECTOR = {
    "hnsw": lambda dims: 4 * dims,
    "int8_hnsw": lambda dims: dims + 4,
    "int4_hnsw": lambda dims: dims / 2 + 4,
    "bbq_hnsw": lambda dims: dims / 8 + 14,
}


def synthetic_index(
    es: Elasticsearch, index: str, vectors: np.ndarray, index_options: str = "hnsw", m: int = 16,
    ef_construction: int = 100,
) -> None:  # fmt: skip
    """(Re)create `index` holding `vectors` (ids "0", "1", ... in a `vector` field, cosine),
    with the given HNSW variant, and refresh it so that every vector is in the graph."""
    from elasticsearch.helpers import bulk

    es.indices.delete(index=index, ignore_unavailable=True)
    options = {"type": index_options, "m": m, "ef_construction": ef_construction}
    field = {"type": "dense_vector", "dims": int(vectors.shape[1]), "index": True, "similarity": "cosine"}
    es.indices.create(index=index, mappings={"properties": {SYNTHETIC_FIELD: field | {"index_options": options}}})
    actions = ({"_index": index, "_id": str(i), SYNTHETIC_FIELD: row} for i, row in enumerate(vectors.tolist()))
    bulk(es, actions, chunk_size=2000, request_timeout=600)
    es.indices.refresh(index=index)


def ann_ids(es: Elasticsearch, index: str, query: np.ndarray, k: int, num_candidates: int) -> list[str]:
    """Ids of the top-level kNN search's hits on a synthetic index, best first."""
    clause = {"field": SYNTHETIC_FIELD, "query_vector": query.tolist(), "k": k, "num_candidates": num_candidates}
    return [hit["_id"] for hit in es.search(index=index, knn=clause, size=k, source=False)["hits"]["hits"]]


def ann_curves(
    es: Elasticsearch, indices: dict[str, str], queries: np.ndarray, truth: np.ndarray, k: int = 10,
    num_candidates: tuple[int, ...] = (10, 20, 50, 100, 200, 500, 1000),
) -> list[dict]:  # fmt: skip
    """For each index (by label) and `num_candidates`: mean recall@k against the true
    neighbours (`truth`: row numbers, best first), how many queries missed at least one of
    them, and the median latency in ms through the client."""
    rows = []
    for label, index in indices.items():
        for candidates in num_candidates:
            recalls, latencies = [], []
            for query, exact in zip(queries, truth):
                started = time.perf_counter()
                found = ann_ids(es, index, query, k, max(candidates, k))
                latencies.append((time.perf_counter() - started) * 1000)
                recalls.append(len({int(i) for i in found} & set(exact[:k].tolist())) / k)
            rows.append(
                {
                    "type": label,
                    "num_candidates": candidates,
                    "recall": float(np.mean(recalls)),
                    "missed_queries": int(sum(r < 1 for r in recalls)),
                    "ms": float(np.median(latencies)),
                }
            )
    return rows


def vector_memory(es: Elasticsearch, index: str, index_options: str, dims: int) -> dict:
    """Bytes per vector of what kNN search reads: on the embedded engine measured (its codes,
    and its graph's links apart); on a cluster Elasticsearch's own estimate only."""
    estimate = ES_BYTES_PER_VECTOR[index_options](dims)
    row = {"type": index_options, "elasticsearch_estimate": estimate, "codes": None, "graph": None}
    store = embedded_store(es)
    if store is not None:
        view = store.view(index)
        graph = store.graph(view, SYNTHETIC_FIELD)
        row |= {"codes": graph.code_bytes(), "graph": round(graph.graph_bytes() / max(view.count, 1))}
    return row
