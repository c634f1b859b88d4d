"""kNN search by text, by image, by an indexed image ("more like this"), or a weighted mix.

Every query is one top-level `knn` search: `num_candidates` candidates per shard feed the
top `k`; label and upload-date filters are pre-filters (applied during the search, so `k`
hits still come back when enough documents match); `similarity` is a floor below which
nothing counts as relevant. Pages beyond the first ask kNN for `page × k` hits and skip the
earlier ones (`from`). Vectors are left out of what comes back.

With `objects=True` the same search runs over the pictures' labelled objects (`objects.vector`,
a nested field): each picture scores as its best object, and `inner_hits` names that object's
label and box, so a small cup on a crowded table is found, and shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from elasticsearch import Elasticsearch
from PIL import Image

from helpers.embedder import Embedder
from helpers.index import VECTOR_FIELD
from helpers.objects import OBJECT_VECTOR_FIELD, OBJECTS_FIELD, Box

RETURNED_FIELDS = ["filename", "labels"]
# The matching object: its label and box, read as `fields` (no vector comes back).
INNER_HITS = {"size": 1, "_source": False, "fields": [f"{OBJECTS_FIELD}.label", f"{OBJECTS_FIELD}.box"]}
CLIENT_NAMES = {"_source": "source", "from": "from_"}
MAX_DEPTH = 10_000  # k × page: Elasticsearch's limit on k and num_candidates
DATE_MATH = re.compile(r"^now(?:[+-]\d+[yMwdhHms])?(?:/[yMwdhHms])?$")  # now, now-7d, now/d


class DocumentNotFound(LookupError):
    """The id given for "more like this" is not in the index, or names several images."""


@dataclass(frozen=True)
class Hit:
    id: str
    filename: str
    score: float
    labels: tuple[str, ...]
    box: Box | None = None  # object-level search: the object that matched, in pixels
    object_label: str | None = None

    def as_json(self) -> dict:
        found = {"id": self.id, "filename": self.filename, "score": round(self.score, 6), "labels": list(self.labels)}
        if self.box is not None:
            found["object"] = {"label": self.object_label, "box": list(self.box)}
        return found


def format_hits(hits: list[Hit]) -> str:
    """One line per hit: rank, score, file, labels, and the id to use with `--similar-to`."""
    if not hits:
        return "  no hits: nothing passed the filters or scored above the floor (nothing relevant)"
    lines = []
    for rank, hit in enumerate(hits, 1):
        labels = ", ".join(hit.labels) or "-"
        line = f"  {rank:>2}. {hit.score:.4f}  {hit.filename}  [{labels}]  id={hit.id[:12]}"
        if hit.box is not None:
            line += f"\n      matched {hit.object_label} at box {hit.box} (x0, y0, x1, y1)"
        lines.append(line)
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
    since: str | None = None,
    until: str | None = None,
    objects: bool = False,
) -> dict:
    """The `knn` section of a search request. Several labels must all be present; `since`
    (inclusive) and `until` (exclusive) bound the upload date (ISO 8601 or date math, `now-7d`).
    With `objects`, the pictures' objects are searched, and the filters still apply to the
    pictures (a nested kNN filters the parent documents)."""
    clause: dict = {
        "field": OBJECT_VECTOR_FIELD if objects else VECTOR_FIELD,
        "query_vector": vector.tolist(),
        "k": k,
        "num_candidates": num_candidates or default_num_candidates(k),
    }
    filters: list[dict] = [{"term": {"labels": label}} for label in labels or []]
    if since or until:
        bounds = {"gte": since} if since else {}
        filters.append({"range": {"uploaded_at": {**bounds, **({"lt": until} if until else {})}}})
    if exclude_ids:
        filters.append({"bool": {"must_not": [{"ids": {"values": exclude_ids}}]}})
    if filters:
        clause["filter"] = filters
    if min_similarity is not None:
        clause["similarity"] = min_similarity
    if objects:
        clause["inner_hits"] = INNER_HITS
    return clause


def is_date(text: str) -> bool:
    """What an upload-date filter takes: ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or
    Elasticsearch date math (now-7d)."""
    if DATE_MATH.match(text):
        return True
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def hits_of(response) -> list[Hit]:
    return [
        Hit(
            h["_id"],
            h["_source"].get("filename", ""),
            float(h["_score"]),
            tuple(h["_source"].get("labels", [])),
            *matched_object(h),
        )
        for h in response["hits"]["hits"]
    ]


def matched_object(hit: dict) -> tuple[Box | None, str | None]:
    """(box, label) of the object that made a hit match, from its `inner_hits`; (None, None)
    for a picture-level hit."""
    inner = hit.get("inner_hits", {}).get(OBJECTS_FIELD, {}).get("hits", {}).get("hits", [])
    if not inner:
        return None, None
    found = inner[0]["fields"][OBJECTS_FIELD][0]
    return tuple(int(v) for v in found["box"]), found["label"][0]


def depth(k: int, page: int) -> int:
    """How many hits kNN must find to serve this page: page × k, within Elasticsearch's limit."""
    if page * k > MAX_DEPTH:
        raise ValueError(f"page × k must be at most {MAX_DEPTH}, got {page} × {k}")
    return page * k


def knn_request(vector: np.ndarray, k: int = 10, page: int = 1, **options) -> dict:
    """The whole `_search` body for hits `(page - 1) × k + 1` to `page × k`, as Elasticsearch's
    REST API spells it: what `knn_search` sends, and what the search widget shows."""
    body = {"knn": knn_clause(vector, k=depth(k, page), **options), "size": k, "_source": RETURNED_FIELDS}
    return body | {"from": (page - 1) * k} if page > 1 else body


def send(es: Elasticsearch, index: str, body: dict):
    """`es.search` with a REST body: the client spells `_source` and `from` as `source`, `from_`."""
    return es.search(index=index, **{CLIENT_NAMES.get(key, key): value for key, value in body.items()})


def knn_search(es: Elasticsearch, index: str, vector: np.ndarray, k: int = 10, page: int = 1, **options) -> list[Hit]:
    """Hits `(page - 1) × k + 1` to `page × k`."""
    return hits_of(send(es, index, knn_request(vector, k, page, **options)))


def search_text(es: Elasticsearch, embedder: Embedder, index: str, text: str, **options) -> list[Hit]:
    return knn_search(es, index, embedder.embed_texts([text])[0], **options)


def search_image(
    es: Elasticsearch, embedder: Embedder, index: str, image: str | Path | Image.Image, **options
) -> list[Hit]:
    """Query by a picture: a file, a URL (http/https), or a PIL image."""
    return knn_search(es, index, embedder.embed_images([image])[0], **options)


def stored_vector(es: Elasticsearch, index: str, doc_id: str) -> tuple[np.ndarray, str]:
    """An indexed image's vector, read through `fields`: works on 8.x and on 9.x, where
    vectors are no longer returned in `_source` by default. `doc_id` may be the start of an
    id, as `search` prints it (12 characters), if no other id starts the same way."""
    query = {"ids": {"values": [doc_id]}} if len(doc_id) == 64 else {"prefix": {"sha256": doc_id}}
    response = es.search(index=index, query=query, source=False, fields=[VECTOR_FIELD], size=2)
    hits = response["hits"]["hits"]
    if not hits:
        raise DocumentNotFound(f"no image with id {doc_id!r} in index {index!r}: use an id that `search` printed")
    if len(hits) > 1:
        raise DocumentNotFound(f"several images have ids starting {doc_id!r}: give more of the id")
    return np.asarray(hits[0]["fields"][VECTOR_FIELD], dtype=np.float32), hits[0]["_id"]


def search_similar(es: Elasticsearch, index: str, doc_id: str, **options) -> list[Hit]:
    """More like this: the nearest other images to an indexed one (itself excluded)."""
    vector, full_id = stored_vector(es, index, doc_id)
    return knn_search(es, index, vector, exclude_ids=[full_id, *options.pop("exclude_ids", [])], **options)


def mix(parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """A weighted sum of unit vectors, back to unit length: the nearest images to it are those
    with the best weighted sum of cosines to every part ("this picture, but at night")."""
    total = np.sum([weight * vector / np.linalg.norm(vector) for vector, weight in parts], axis=0)
    norm = np.linalg.norm(total)
    if norm < 1e-6:
        raise ValueError("the weighted parts cancel out: change the weights")
    return (total / norm).astype(np.float32)


def search_mixed(
    es: Elasticsearch,
    embedder: Embedder,
    index: str,
    text: str,
    image: str | Path | Image.Image | None = None,
    similar_to: str | None = None,
    text_weight: float = 0.5,
    **options,
) -> list[Hit]:
    """A picture (a file, URL, PIL image, or an indexed id) steered by words: `text_weight`
    of the query is the text, the rest the picture. An indexed picture is left out of its hits."""
    if (image is None) == (similar_to is None):
        raise ValueError("give exactly one picture: image= or similar_to=")
    if not 0 <= text_weight <= 1:
        raise ValueError(f"text_weight must be between 0 and 1, got {text_weight}")
    if similar_to is not None:
        picture, full_id = stored_vector(es, index, similar_to)
        options["exclude_ids"] = [full_id, *options.get("exclude_ids", [])]
    else:
        picture = embedder.embed_images([image])[0]
    vector = mix([(embedder.embed_texts([text])[0], text_weight), (picture, 1 - text_weight)])
    return knn_search(es, index, vector, **options)
