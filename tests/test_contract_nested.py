"""The contract for nested fields (issue #27): one document per picture with a nested field of
its labelled objects, searched at object level with nested kNN, `inner_hits` and the `nested`
query. Same three legs as tests/test_contract.py: the embedded engine always, noida-db when it
starts, a real cluster when ELASTICSEARCH_URL is set; every expectation here is what
Elasticsearch (8.13 or later) answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from elasticsearch import ApiError, BadRequestError, Elasticsearch
from elasticsearch.helpers import bulk

from tests.test_contract import es, leg, peer_differs, peer_url  # noqa: F401 (fixtures)

DIMS = 8
# (labels of the picture's objects, boxes); picture i's object j has a vector drawn below
PICTURES = [
    (["cup", "dog"], [[1, 2, 3, 4], [10, 20, 30, 40]]),
    (["cup"], [[5, 6, 7, 8]]),
    (["dog", "cat", "dog"], [[0, 0, 9, 9], [1, 1, 8, 8], [2, 2, 7, 7]]),
    (["plate", "cup"], [[3, 3, 4, 4], [6, 5, 4, 3]]),
    ([], []),
]


def vectors() -> list[np.ndarray]:
    rng = np.random.default_rng(27)
    return [rng.normal(size=(len(labels), DIMS)).round(3).astype(np.float32) for labels, _ in PICTURES]


@pytest.fixture
def index(es: Elasticsearch, leg: str) -> Iterator[str]:  # noqa: F811
    name = f"nested-{uuid.uuid4().hex[:10]}"
    vector = {"type": "dense_vector", "dims": DIMS, "index": True, "similarity": "cosine"}
    vector["index_options"] = {"type": "hnsw", "m": 16, "ef_construction": 100}
    objects = {"vector": vector, "label": {"type": "keyword"}, "box": {"type": "integer"}}
    mappings = {"properties": {"labels": {"type": "keyword"}, "objects": {"type": "nested", "properties": objects}}}
    try:
        es.indices.create(index=name, mappings=mappings)
    except ApiError:
        peer_differs(leg, "does not map nested fields")
        raise
    actions = []
    for i, ((labels, boxes), rows) in enumerate(zip(PICTURES, vectors())):
        objects_of = [{"label": l, "box": b, "vector": v.tolist()} for l, b, v in zip(labels, boxes, rows)]  # noqa: E741
        actions.append(
            {"_index": name, "_id": f"p{i}", "_source": {"labels": sorted(set(labels)), "objects": objects_of}}
        )
    bulk(es, actions, refresh=True)
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


def best_objects(query: np.ndarray, keep=lambda labels: True) -> list[tuple[str, int, float]]:
    """(picture id, offset of its best object, score) best first, by brute force."""
    unit = query / np.linalg.norm(query)
    found = []
    for i, ((labels, _), rows) in enumerate(zip(PICTURES, vectors())):
        if len(rows) and keep(labels):
            cos = (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ unit
            found.append((f"p{i}", int(np.argmax(cos)), float((1 + cos.max()) / 2)))
    return sorted(found, key=lambda item: -item[2])


def test_the_tutorials_nested_knn_with_inner_hits(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    query = vectors()[3][1] + 0.1
    answer = es.search(
        index=index,
        knn={
            "field": "objects.vector",
            "query_vector": query.tolist(),
            "k": 10,
            "num_candidates": 100,
            "filter": {"term": {"labels": "cup"}},
            "inner_hits": {"size": 1, "_source": False, "fields": ["objects.label", "objects.box"]},
        },
        source={"excludes": ["image_vector", "objects"]},
        size=10,
    )
    expected = best_objects(query, keep=lambda labels: "cup" in labels)
    hits = answer["hits"]["hits"]
    assert [h["_id"] for h in hits] == [doc_id for doc_id, _, _ in expected]
    assert [h["_score"] for h in hits] == pytest.approx([s for _, _, s in expected], abs=1e-5)
    for hit, (doc_id, offset, score) in zip(hits, expected):
        i = int(doc_id[1:])
        labels, boxes = PICTURES[i]
        assert hit["_source"] == {"labels": sorted(set(labels))}
        inner = hit["inner_hits"]["objects"]["hits"]
        assert inner["total"] == {"value": len(labels), "relation": "eq"}
        assert inner["max_score"] == pytest.approx(score, abs=1e-5)
        (best,) = inner["hits"]
        assert best["_id"] == doc_id and best["_nested"] == {"field": "objects", "offset": offset}
        assert best["_score"] == pytest.approx(score, abs=1e-5)
        assert "_source" not in best
        assert best["fields"] == {"objects": [{"label": [labels[offset]], "box": boxes[offset]}]}


def test_the_nested_query_with_inner_hits(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    body = {"nested": {"path": "objects", "query": {"term": {"objects.label": "dog"}}, "inner_hits": {"size": 5}}}
    hits = es.search(index=index, query=body)["hits"]["hits"]
    assert sorted(h["_id"] for h in hits) == ["p0", "p2"]
    by_id = {h["_id"]: h["inner_hits"]["objects"]["hits"] for h in hits}
    assert by_id["p2"]["total"] == {"value": 2, "relation": "eq"}
    assert [h["_nested"]["offset"] for h in by_id["p2"]["hits"]] == [0, 2]
    assert [h["_source"]["box"] for h in by_id["p2"]["hits"]] == [[0, 0, 9, 9], [2, 2, 7, 7]]
    assert by_id["p0"]["hits"][0]["_nested"] == {"field": "objects", "offset": 1}
    assert by_id["p0"]["hits"][0]["_source"]["label"] == "dog"
    # outside a nested query, a field of the nested objects matches nothing
    assert es.search(index=index, query={"term": {"objects.label": "dog"}})["hits"]["total"]["value"] == 0
    ranged = {"nested": {"path": "objects", "query": {"range": {"objects.box": {"gte": 9}}}, "score_mode": "max"}}
    assert sorted(h["_id"] for h in es.search(index=index, query=ranged)["hits"]["hits"]) == ["p0", "p2"]


def test_nested_knn_filters_on_the_pictures_fields(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    query = vectors()[2][0]
    clause = {"field": "objects.vector", "query_vector": query.tolist(), "k": 2, "num_candidates": 10}
    plain = es.search(index=index, knn=clause, source=False)["hits"]["hits"]
    assert [h["_id"] for h in plain] == [d for d, _, _ in best_objects(query)[:2]]  # k counts pictures
    filtered = es.search(index=index, knn=clause | {"filter": {"term": {"labels": "plate"}}}, source=False)
    assert [h["_id"] for h in filtered["hits"]["hits"]] == ["p3"]


def test_a_nested_query_on_a_missing_path_is_400(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "reports a missing nested path as one 'not of nested type'")
    with pytest.raises(BadRequestError) as caught:
        es.search(index=index, query={"nested": {"path": "nope", "query": {"match_all": {}}}})
    assert "[nested] failed to find nested object under path [nope]" in str(caught.value.body)
