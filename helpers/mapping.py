"""The index: one mapping, created on purpose, re-created only when asked.

Every `dense_vector` option is spelled out, because the defaults moved between releases
(8.14 made int8_hnsw the default for new indices, 9.1 moved to bbq_hnsw for dims >= 384):
an index built here means the same thing on every cluster.
"""

from __future__ import annotations

from elasticsearch import Elasticsearch

VECTOR_FIELD = "image_vector"
INDEX_OPTIONS = ("hnsw", "int8_hnsw", "bbq_hnsw")
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 100
MAPPING_VERSION = 2  # 2: labels and filename also indexed as words (`.text`) for hybrid search
WORDS = {"text": {"type": "text", "analyzer": "simple"}}  # "red_circle.jpg" -> red, circle, jpg


class IndexMismatch(RuntimeError):
    """An existing index cannot hold this model's vectors; the message says what to do."""


def index_mapping(dims: int, model_id: str, index_options: str = "hnsw") -> dict:
    """`dims` comes from the model (`ClipEmbedder.dim`), never from a constant. The model id
    goes in `_meta`: two CLIP models can share a dimension but never a vector space.
    `labels` and `filename` are keywords (exact filters) with a `.text` multi-field of words
    (full-text matching for hybrid search)."""
    if index_options not in INDEX_OPTIONS:
        raise ValueError(f"index_options must be one of {', '.join(INDEX_OPTIONS)}, not {index_options!r}")
    return {
        "_meta": {"model": model_id, "mapping_version": MAPPING_VERSION},
        "properties": {
            VECTOR_FIELD: {
                "type": "dense_vector",
                "dims": dims,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": index_options, "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
            },
            "filename": {"type": "keyword", "fields": WORDS},
            "labels": {"type": "keyword", "fields": WORDS},
            "uploaded_at": {"type": "date"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "sha256": {"type": "keyword"},
        },
    }


def existing_model(es: Elasticsearch, index: str) -> tuple[int | None, str | None, int | None]:
    """(vector dimension, model id, mapping version) of an existing index; None where it does not say."""
    mappings = next(iter(es.indices.get_mapping(index=index).body.values()))["mappings"]
    dims = mappings.get("properties", {}).get(VECTOR_FIELD, {}).get("dims")
    meta = mappings.get("_meta", {})
    return dims, meta.get("model"), meta.get("mapping_version")


def ensure_index(
    es: Elasticsearch, index: str, dims: int, model_id: str, index_options: str = "hnsw", recreate: bool = False
) -> str:
    """Create the index, keep a compatible one, or (only with `recreate=True`) replace it.
    Returns what happened: "created", "kept" or "recreated"."""
    exists = bool(es.indices.exists(index=index))
    if exists and recreate:
        es.indices.delete(index=index)
    elif exists:
        found_dims, found_model, found_version = existing_model(es, index)
        if (found_dims, found_model) != (dims, model_id):
            raise IndexMismatch(
                f"index {index!r} holds {found_dims}-dimensional vectors of model {found_model} but {model_id} "
                f"makes {dims}-dimensional ones: re-create it (recreate=True / --recreate) or use another index name"
            )
        if found_version != MAPPING_VERSION:
            raise IndexMismatch(
                f"index {index!r} was built with an older mapping (no word fields for hybrid search): re-create it "
                "(recreate=True / --recreate; the embedding cache makes that quick) or use another index name"
            )
        return "kept"
    es.indices.create(index=index, mappings=index_mapping(dims, model_id, index_options))
    return "recreated" if exists else "created"
