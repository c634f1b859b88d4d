"""kNN search by text, by image, or by an indexed image ("more like this").

Every query is one top-level `knn` search: `num_candidates` candidates per shard feed the
top `k`; label filters are pre-filters (applied during the search, so `k` hits still come
back when enough documents match); `similarity` is a floor below which nothing counts as
relevant. Vectors are left out of what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elasticsearch import Elasticsearch
from PIL import Image

from helpers.clip import ClipEmbedder
from helpers.fetch import fetch_image, is_url
from helpers.mapping import VECTOR_FIELD

RETURNED_FIELDS = ["filename", "labels"]


class DocumentNotFound(LookupError):
    """The id given for "more like this" is not in the index."""


@dataclass(frozen=True)
class Hit:
    id: str
    filename: str
    score: float
    labels: tuple[str, ...]

    def as_json(self) -> dict:
        return {"id": self.id, "filename": self.filename, "score": round(self.score, 6), "labels": list(self.labels)}


def format_hits(hits: list[Hit]) -> str:
    """One line per hit: rank, score, file, labels, and the id to use with `--similar-to`."""
    if not hits:
        return "  no image scored above the floor: nothing relevant"
    lines = []
    for rank, hit in enumerate(hits, 1):
        labels = ", ".join(hit.labels) or "-"
        lines.append(f"  {rank:>2}. {hit.score:.4f}  {hit.filename}  [{labels}]  id={hit.id[:12]}")
    return "\n".join(lines)


def default_num_candidates(k: int) -> int:
    """10 × k (at least 100, at most Elasticsearch's 10,000): HNSW recall is near-exact
    there, and the cost stays small."""
    return min(max(10 * k, 100), 10_000)


def knn_clause(
    vector: np.ndarray,
    k: int = 10,
    num_candidates: int | None = None,
    labels: list[str] | None = None,
    min_similarity: float | None = None,
    exclude_ids: list[str] | None = None,
) -> dict:
    """The `knn` section of a search request. Several labels must all be present."""
    clause: dict = {
        "field": VECTOR_FIELD,
        "query_vector": [float(x) for x in vector],
        "k": k,
        "num_candidates": num_candidates or default_num_candidates(k),
    }
    filters: list[dict] = [{"term": {"labels": label}} for label in labels or []]
    if exclude_ids:
        filters.append({"bool": {"must_not": [{"ids": {"values": exclude_ids}}]}})
    if filters:
        clause["filter"] = filters
    if min_similarity is not None:
        clause["similarity"] = min_similarity
    return clause


def knn_search(es: Elasticsearch, index: str, vector: np.ndarray, k: int = 10, **options) -> list[Hit]:
    response = es.search(index=index, knn=knn_clause(vector, k=k, **options), size=k, source=RETURNED_FIELDS)
    return [
        Hit(h["_id"], h["_source"].get("filename", ""), float(h["_score"]), tuple(h["_source"].get("labels", [])))
        for h in response["hits"]["hits"]
    ]


def search_text(es: Elasticsearch, embedder: ClipEmbedder, index: str, text: str, **options) -> list[Hit]:
    return knn_search(es, index, embedder.embed_texts([text])[0], **options)


def search_image(
    es: Elasticsearch, embedder: ClipEmbedder, index: str, image: str | Path | Image.Image, **options
) -> list[Hit]:
    """Query by a picture: a file, a URL (http/https), or a PIL image."""
    if isinstance(image, str) and is_url(image):
        image = fetch_image(image)
    return knn_search(es, index, embedder.embed_images([image])[0], **options)


def stored_vector(es: Elasticsearch, index: str, doc_id: str) -> np.ndarray:
    """An indexed image's vector, read through `fields`: works on 8.x and on 9.x, where
    vectors are no longer returned in `_source` by default."""
    response = es.search(index=index, query={"ids": {"values": [doc_id]}}, source=False, fields=[VECTOR_FIELD])
    hits = response["hits"]["hits"]
    if not hits:
        raise DocumentNotFound(
            f"no image with id {doc_id!r} in index {index!r}: ids are the sha256 values `search` prints"
        )
    return np.asarray(hits[0]["fields"][VECTOR_FIELD], dtype=np.float32)


def search_similar(es: Elasticsearch, index: str, doc_id: str, **options) -> list[Hit]:
    """More like this: the nearest other images to an indexed one (itself excluded)."""
    exclude = [doc_id, *options.pop("exclude_ids", [])]
    return knn_search(es, index, stored_vector(es, index, doc_id), exclude_ids=exclude, **options)
