"""Nested fields (issue #27): nested mappings, nested kNN (exact and through a graph whose
nodes are objects), `inner_hits`, the `nested` query, and what is refused."""

from pathlib import Path

import numpy as np
import pytest
from elasticsearch import BadRequestError
from elasticsearch.helpers import bulk

from embedded_es import embedded_client
from embedded_es.node import close_store, store_for
from helpers.synthetic import spectrum_vectors

DIMS, PARENTS = 32, 400
LABELS = ["cup", "plate", "dog", "cat"]


def mapping(kind: str = "hnsw", dims: int = DIMS) -> dict:
    vector = {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine"}
    vector["index_options"] = {"type": kind} | ({"m": 16, "ef_construction": 100} if kind.endswith("hnsw") else {})
    objects = {"vector": vector, "label": {"type": "keyword"}, "box": {"type": "integer"}}
    return {"properties": {"labels": {"type": "keyword"}, "objects": {"type": "nested", "properties": objects}}}


def documents(seed: int = 3, dims: int = DIMS) -> tuple[list[dict], np.ndarray]:
    """Parents with 0 to 5 objects each (every 10th has none); the object vectors in one matrix."""
    rng = np.random.default_rng(seed)
    counts = [0 if i % 10 == 9 else int(rng.integers(1, 6)) for i in range(PARENTS)]
    vectors = spectrum_vectors(sum(counts), dims, seed=seed)
    docs, row = [], 0
    for i, count in enumerate(counts):
        objects = []
        for j in range(count):
            label = LABELS[(i + j) % len(LABELS)]
            objects.append({"label": label, "box": [j, i, j + 10, i + 10], "vector": vectors[row].tolist()})
            row += 1
        docs.append({"labels": sorted({o["label"] for o in objects}), "objects": objects})
    return docs, vectors


def create(es, kind: str = "hnsw", docs: list[dict] | None = None, dims: int = DIMS) -> None:
    es.indices.create(index="pics", mappings=mapping(kind, dims))
    actions = ({"_index": "pics", "_id": str(i), **doc} for i, doc in enumerate(docs or []))
    bulk(es, actions, chunk_size=97, refresh=True)


def brute_force(docs: list[dict], query: np.ndarray, k: int, keep=lambda doc: True) -> list[tuple[str, float]]:
    """The k parents whose best object is nearest, with the score (1 + cos) / 2."""
    unit = query / np.linalg.norm(query)
    best = []
    for i, doc in enumerate(docs):
        if doc["objects"] and keep(doc):
            rows = np.array([o["vector"] for o in doc["objects"]], np.float32)
            cos = (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ unit
            best.append((str(i), float((1 + cos.max()) / 2)))
    return sorted(best, key=lambda item: -item[1])[:k]


def knn(es, query: np.ndarray, k: int = 10, num_candidates: int = 50, **extra) -> dict:
    clause = {"field": "objects.vector", "query_vector": query.tolist(), "k": k, "num_candidates": num_candidates}
    return es.search(index="pics", knn=clause | extra, size=k, source=False).body


def ids(answer: dict) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


@pytest.fixture(scope="module")
def data() -> tuple[list[dict], np.ndarray, np.ndarray]:
    docs, vectors = documents()
    return docs, vectors, spectrum_vectors(15, DIMS, seed=99)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_nested_knn_is_the_best_object_per_parent(tmp_path: Path, data, kind: str) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, kind, docs)
    for query in queries:
        truth = brute_force(docs, query, 10)
        answer = knn(es, query, num_candidates=PARENTS)  # a pool of every parent: exact
        assert ids(answer) == [doc_id for doc_id, _ in truth]
        assert [h["_score"] for h in answer["hits"]["hits"]] == pytest.approx([s for _, s in truth], abs=1e-6)
        assert answer["hits"]["total"]["value"] == 10


@pytest.mark.parametrize("kind", ["hnsw", "int8_hnsw", "bbq_hnsw"])
def test_the_graph_finds_nearly_every_true_parent(tmp_path: Path, kind: str) -> None:
    dims = 64 if kind == "bbq_hnsw" else DIMS  # bbq needs 64 dimensions or more
    docs, _ = documents(seed=5, dims=dims)
    es = embedded_client(tmp_path)
    create(es, kind, docs, dims)
    queries = spectrum_vectors(15, dims, seed=98)
    found = truth = 0
    for query in queries:
        expected = {doc_id for doc_id, _ in brute_force(docs, query, 10)}
        answer = knn(es, query, num_candidates=40)
        assert len(set(ids(answer))) == len(ids(answer)) == 10  # distinct parents
        found += len(expected & set(ids(answer)))
        truth += len(expected)
    assert found / truth >= 0.9


def test_k_counts_parents_and_num_candidates_is_a_pool_of_parents(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs)
    answer = knn(es, queries[0], k=5, num_candidates=5)
    assert len(ids(answer)) == 5 == len(set(ids(answer))) and answer["hits"]["total"]["value"] == 5
    parents_without_objects = {str(i) for i in range(PARENTS) if not docs[i]["objects"]}
    wide = knn(es, queries[0], k=PARENTS, num_candidates=PARENTS)
    assert wide["hits"]["total"]["value"] == PARENTS - len(
        parents_without_objects
    )  # a parent without objects never matches
    assert not parents_without_objects & set(ids(wide))


def test_the_filter_applies_to_parent_fields(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs)
    for query in queries[:5]:
        answer = knn(es, query, num_candidates=100, filter={"term": {"labels": "dog"}})
        truth = brute_force(docs, query, 10, keep=lambda doc: "dog" in doc["labels"])
        assert ids(answer) == [doc_id for doc_id, _ in truth]
        # a filter on a field inside the nested objects sees no parent field: nothing matches
        assert ids(knn(es, query, filter={"term": {"objects.label": "dog"}})) == []


def test_similarity_is_a_floor_on_the_best_object(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "flat", docs)
    truth = brute_force(docs, queries[0], PARENTS)
    floor_score = truth[7][1]
    answer = knn(es, queries[0], k=50, num_candidates=PARENTS, similarity=2 * floor_score - 1 - 1e-6)
    assert ids(answer) == [doc_id for doc_id, _ in truth[:8]]


def test_inner_hits_show_the_nearest_objects_best_first(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs)
    query = queries[1]
    answer = knn(es, query, k=3, num_candidates=PARENTS, inner_hits={"size": 2, "_source": ["objects.label"]})
    unit = query / np.linalg.norm(query)
    for hit in answer["hits"]["hits"]:
        doc = docs[int(hit["_id"])]
        rows = np.array([o["vector"] for o in doc["objects"]], np.float32)
        scores = (1 + (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ unit) / 2
        order = np.argsort(-scores, kind="stable")
        inner = hit["inner_hits"]["objects"]["hits"]
        assert inner["total"] == {"value": len(doc["objects"]), "relation": "eq"}
        assert inner["max_score"] == pytest.approx(hit["_score"], abs=1e-6)
        assert [h["_nested"] for h in inner["hits"]] == [{"field": "objects", "offset": int(o)} for o in order[:2]]
        assert [h["_score"] for h in inner["hits"]] == pytest.approx(scores[order[:2]].tolist(), abs=1e-6)
        assert [h["_source"] for h in inner["hits"]] == [{"label": doc["objects"][o]["label"]} for o in order[:2]]
        assert all(h["_id"] == hit["_id"] and h["_index"] == "pics" for h in inner["hits"])
    # from, name, fields without _source
    paged = knn(
        es, query, k=1, num_candidates=PARENTS,
        inner_hits={"from": 1, "size": 1, "name": "best", "_source": False, "fields": ["objects.label", "objects.box"]},
    )  # fmt: skip
    doc = docs[int(paged["hits"]["hits"][0]["_id"])]
    inner = paged["hits"]["hits"][0]["inner_hits"]["best"]["hits"]["hits"]
    if len(doc["objects"]) > 1:
        (second,) = inner
        obj = doc["objects"][second["_nested"]["offset"]]
        assert "_source" not in second
        assert second["fields"] == {"objects": [{"label": [obj["label"]], "box": obj["box"]}]}


def test_the_tutorial_request(tmp_path: Path) -> None:
    es = embedded_client(tmp_path)
    es.indices.create(index="pics", mappings=mapping() | {})
    es.indices.put_mapping(index="pics", properties={"image_vector": {"type": "dense_vector", "dims": DIMS}})
    v = np.eye(DIMS, dtype=np.float32)
    es.index(index="pics", id="1", document={"labels": ["cup", "dog"], "image_vector": v[0].tolist(), "objects": [
        {"label": "dog", "box": [40, 30, 20, 10], "vector": v[1].tolist()},
        {"label": "cup", "box": [1, 2, 3, 4], "vector": v[0].tolist()},
    ]}, refresh=True)  # fmt: skip
    es.index(index="pics", id="2", document={"labels": ["dog"], "objects": {"label": "dog", "box": [5, 6, 7, 8],
              "vector": v[0].tolist()}}, refresh=True)  # fmt: skip
    answer = es.search(
        index="pics",
        knn={"field": "objects.vector", "query_vector": v[0].tolist(), "k": 10, "num_candidates": 100,
             "filter": {"term": {"labels": "cup"}},
             "inner_hits": {"size": 1, "_source": False, "fields": ["objects.label", "objects.box"]}},
        source={"excludes": ["image_vector", "objects"]}, size=10,
    )  # fmt: skip
    (hit,) = answer["hits"]["hits"]
    assert hit["_id"] == "1" and hit["_score"] == 1.0 and hit["_source"] == {"labels": ["cup", "dog"]}
    inner = hit["inner_hits"]["objects"]["hits"]
    assert inner["total"] == {"value": 2, "relation": "eq"} and inner["max_score"] == 1.0
    assert inner["hits"] == [
        {
            "_index": "pics",
            "_id": "1",
            "_nested": {"field": "objects", "offset": 1},
            "_score": 1.0,
            "fields": {"objects": [{"label": ["cup"], "box": [1, 2, 3, 4]}]},
        }
    ]
    # the source is stored as written, vectors included
    source = es.get(index="pics", id="1")["_source"]
    assert source["objects"][1] == {"label": "cup", "box": [1, 2, 3, 4], "vector": v[0].tolist()}
    assert es.get(index="pics", id="2")["_source"]["objects"]["box"] == [5, 6, 7, 8]


def test_deletes_and_updates_of_a_parent_hide_its_old_objects(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs)
    query = queries[2]
    first = ids(knn(es, query, num_candidates=PARENTS))[0]
    es.delete(index="pics", id=first, refresh=True)
    assert first not in ids(knn(es, query, num_candidates=PARENTS))
    second = ids(knn(es, query, num_candidates=PARENTS))[0]
    far = -query  # an update that moves every object away from the query
    es.index(
        index="pics", id=second, document={"labels": ["cup"], "objects": [{"label": "cup", "vector": far.tolist()}]}
    )
    answer = knn(es, query, num_candidates=PARENTS)
    assert second not in ids(answer)
    near = knn(es, far, k=1, num_candidates=PARENTS, inner_hits={})
    assert ids(near) == [second]
    assert near["hits"]["hits"][0]["inner_hits"]["objects"]["hits"]["total"]["value"] == 1
    es.index(index="pics", id=second, document={"labels": [], "objects": []}, refresh=True)  # no objects now
    assert second not in ids(knn(es, far, k=PARENTS, num_candidates=PARENTS))


def test_the_graph_is_saved_and_reloaded_with_the_same_hits(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs)
    es.delete(index="pics", id="3", refresh=True)
    before = [knn(es, q, num_candidates=20) for q in queries]
    store = store_for(tmp_path)
    nodes = store.graphs[(store.view("pics").uuid, "objects.vector")].index.ntotal
    assert nodes == sum(len(d["objects"]) for d in docs)  # one node per object
    close_store(tmp_path)
    assert list((tmp_path / "graphs").rglob("objects.vector.npz"))
    after = [knn(embedded_client(tmp_path), q, num_candidates=20) for q in queries]
    assert [ids(a) for a in after] == [ids(b) for b in before]
    store = store_for(tmp_path)
    assert store.graphs[(store.view("pics").uuid, "objects.vector")].index.ntotal == nodes  # loaded, not rebuilt


def test_the_same_writes_give_the_same_graph(tmp_path: Path, data) -> None:
    import faiss

    docs, _, queries = data
    graphs, answers = [], []
    for run in range(2):
        es = embedded_client(tmp_path / str(run))
        create(es, "hnsw", docs)
        answers.append([ids(knn(es, q, num_candidates=15)) for q in queries])
        store = store_for(tmp_path / str(run))
        graphs.append(faiss.serialize_index(store.graphs[(store.view("pics").uuid, "objects.vector")].index))
    assert answers[0] == answers[1] and np.array_equal(graphs[0], graphs[1])


def test_the_nested_query_scores_parents_by_score_mode(tmp_path: Path) -> None:
    es = embedded_client(tmp_path)
    es.indices.create(index="pics", mappings=mapping("flat"))
    objects = [{"label": "cup", "box": [1, 1, 1, 1]}, {"label": "dog", "box": [2, 2, 2, 2]}, {"label": "cup"}]
    es.index(index="pics", id="a", document={"labels": ["cup", "dog"], "objects": objects})
    es.index(index="pics", id="b", document={"labels": ["dog"], "objects": [{"label": "dog", "box": [9, 9, 9, 9]}]})
    es.index(index="pics", id="c", document={"labels": ["x"]}, refresh=True)
    inner = {"should": [{"term": {"objects.label": "cup"}}, {"range": {"objects.box": {"gte": 2}}}]}

    def scores(mode: str) -> dict[str, float]:
        body = {"nested": {"path": "objects", "query": {"bool": inner}, "score_mode": mode}}
        return {h["_id"]: h["_score"] for h in es.search(index="pics", query=body)["hits"]["hits"]}

    # per object: a/0 cup 1.0, a/1 box>=2 1.0, a/2 cup 1.0, b/0 box>=2 1.0
    assert scores("avg") == {"a": 1.0, "b": 1.0}
    assert scores("sum") == {"a": 3.0, "b": 1.0}
    assert scores("max") == {"a": 1.0, "b": 1.0} == scores("min")
    assert scores("none") == {"a": 0.0, "b": 0.0}
    answer = es.search(
        index="pics",
        query={"nested": {"path": "objects", "query": {"term": {"objects.label": "cup"}},
                          "inner_hits": {"_source": ["objects.box"]}}},
    )  # fmt: skip
    (hit,) = answer["hits"]["hits"]
    found = hit["inner_hits"]["objects"]["hits"]
    assert found["total"]["value"] == 2
    assert [(h["_nested"]["offset"], h["_source"]) for h in found["hits"]] == [(0, {"box": [1, 1, 1, 1]}), (2, {})]
    # outside a nested query a nested object's field matches nothing, as on a cluster
    assert es.search(index="pics", query={"term": {"objects.label": "cup"}})["hits"]["total"]["value"] == 0
    assert (
        es.count(index="pics", query={"nested": {"path": "objects", "query": {"exists": {"field": "objects.box"}}}})[
            "count"
        ]
        == 2
    )
    unmapped = {"nested": {"path": "nope", "query": {"match_all": {}}, "ignore_unmapped": True}}
    assert es.search(index="pics", query=unmapped)["hits"]["total"]["value"] == 0


def test_a_knn_query_inside_a_nested_query(tmp_path: Path, data) -> None:
    docs, _, queries = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs)
    clause = {"field": "objects.vector", "query_vector": queries[0].tolist(), "k": 4, "num_candidates": PARENTS}
    body = {"nested": {"path": "objects", "query": {"knn": clause}, "inner_hits": {"size": 1}}}
    answer = es.search(index="pics", query=body)
    assert ids(answer) == [doc_id for doc_id, _ in brute_force(docs, queries[0], 4)]
    assert all(len(h["inner_hits"]["objects"]["hits"]["hits"]) == 1 for h in answer["hits"]["hits"])


def error_of(call) -> str:
    with pytest.raises(BadRequestError) as caught:
        call()
    return str(caught.value)


def test_bad_input_is_refused_and_nothing_stored_is_lost(tmp_path: Path, data) -> None:
    docs, _, _ = data
    es = embedded_client(tmp_path)
    create(es, "hnsw", docs[:20])
    missing = {"nested": {"path": "nope", "query": {"match_all": {}}}}
    assert "[nested] failed to find nested object under path [nope]" in error_of(
        lambda: es.search(index="pics", query=missing)
    )
    plain = {"nested": {"path": "labels", "query": {"match_all": {}}}}
    assert "[nested] nested object under path [labels] is not of nested type" in error_of(
        lambda: es.search(index="pics", query=plain)
    )
    assert "different number of dimensions [3]" in error_of(
        lambda: es.search(index="pics", knn={"field": "objects.vector", "query_vector": [1, 2, 3], "k": 1})
    )
    wrong = {"labels": ["cup"], "objects": [{"label": "cup", "vector": [1.0, 2.0]}]}
    result = bulk(es, [{"_index": "pics", "_id": "new", **wrong}], raise_on_error=False, refresh=True)
    assert result[0] == 0 and "different number of dimensions" in str(result[1])
    assert es.count(index="pics")["count"] == 20
    assert ids(knn(es, np.asarray(docs[0]["objects"][0]["vector"]), k=1, num_candidates=20)) == ["0"]
    assert (
        es.search(index="pics", knn={"field": "nope.vector", "query_vector": [1.0] * DIMS, "k": 1})["hits"]["hits"]
        == []
    )


def nested_mapping(**options) -> dict:
    return {"properties": {"o": {"type": "nested", **options}}}


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda es: es.indices.create(index="x", mappings=nested_mapping(include_in_parent=True)),
         "the mapping parameter [include_in_parent]"),
        (lambda es: es.indices.create(index="x", mappings=nested_mapping(include_in_root=True)),
         "the mapping parameter [include_in_root]"),
        (lambda es: es.indices.create(index="x", mappings=nested_mapping(dynamic="strict")),
         "the mapping parameter [dynamic]"),
        (lambda es: es.indices.create(index="x", mappings=nested_mapping(properties={"p": {"type": "nested"}})),
         "the field type [nested]"),
        (lambda es: es.search(index="pics", sort=[{"objects.box": "asc"}]), "the sort option [nested]"),
        (lambda es: es.search(index="pics", query={"knn": {"field": "objects.vector", "query_vector": [1.0] * DIMS}}),
         "the query [knn]"),
        (lambda es: es.search(index="pics", query={"nested": {"path": "objects", "query": {"match_all": {}},
                                                               "inner_hits": {"sort": ["_score"]}}}),
         "the inner_hits option [sort]"),
    ],
)  # fmt: skip
def test_what_is_refused_by_name(tmp_path: Path, call, named: str) -> None:
    es = embedded_client(tmp_path)
    create(es, "hnsw", documents()[0][:5])
    reason = error_of(lambda: call(es))
    assert f"the embedded engine does not support {named}" in reason
    assert es.count(index="pics")["count"] == 5


def test_mapping_comes_back_as_written(tmp_path: Path) -> None:
    es = embedded_client(tmp_path)
    es.indices.create(index="pics", mappings=mapping())
    assert es.indices.get_mapping(index="pics")["pics"]["mappings"] == mapping()
