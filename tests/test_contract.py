"""One contract, three backends: the embedded engine; a real cluster whenever
ELASTICSEARCH_URL is set; and noida-db, an independent implementation of the Elasticsearch
API that the suite starts on 127.0.0.1 itself, so a second server is checked on every run.
Through the official client all must give the same hits, the same scores (Elasticsearch's
cosine score, (1 + cos) / 2) and the same errors."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError
from elasticsearch.helpers import bulk
from elasticsearch.serializer import OrjsonSerializer

from embedded_es import embedded_client
from helpers._settings import load_settings
from helpers.connect import connect, explain
from helpers.index import MAPPING_VERSION, VECTOR_FIELD, index_mapping
from helpers.search import knn_clause

DIMS = 16
DOCS = 80
LABELS = ["cat", "dog", "cup"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def peer_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """noida-db on a free loopback port for this test run, stopped afterwards."""
    binary = Path(sys.executable).parent / "noida-db"
    if not binary.exists():
        pytest.skip("peer leg: noida-db is not installed (requirements-dev.txt installs it)")
    port = free_port()
    command = [str(binary), "start", "--data-dir", str(tmp_path_factory.mktemp("noida")), "--host", "127.0.0.1"]
    command += ["--only", "elasticsearch", "--elasticsearch-port", str(port)]
    # Its own process group: the launcher script starts the server binary as a child.
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        os.killpg(server.pid, signal.SIGKILL)
        pytest.skip(f"peer leg: noida-db did not start on {url}")
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=10)


@pytest.fixture(params=["embedded", "peer", "cluster"])
def es(request, tmp_path: Path) -> Elasticsearch:
    if request.param == "embedded":
        return embedded_client(tmp_path / "engine")
    if request.param == "peer":
        # The serializer `connect()` gives every client, so all three legs send the same bytes.
        return Elasticsearch(request.getfixturevalue("peer_url"), request_timeout=30, serializer=OrjsonSerializer())
    if not os.environ.get("ELASTICSEARCH_URL"):
        pytest.skip("cluster leg: set ELASTICSEARCH_URL (see docs/contract-tests.md) to run it")
    return connect(load_settings(), quiet=True)


@pytest.fixture
def corpus() -> tuple[list[str], np.ndarray, list[list[str]]]:
    rng = np.random.default_rng(11)
    ids = [f"doc-{i:03d}" for i in range(DOCS)]
    vectors = rng.normal(size=(DOCS, DIMS)).astype(np.float32)
    labels = [[LABELS[i % 3]] + ([LABELS[(i + 1) % 3]] if i % 5 == 0 else []) for i in range(DOCS)]
    return ids, vectors, labels


@pytest.fixture
def index(es: Elasticsearch, corpus) -> Iterator[str]:
    name = f"contract-{uuid.uuid4().hex[:10]}"
    es.indices.create(index=name, mappings=index_mapping(DIMS, "test/model"))
    ids, vectors, labels = corpus
    actions = [
        {
            "_index": name,
            "_id": doc_id,
            "_source": {
                "filename": f"{doc_id}.jpg",
                "labels": doc_labels,
                "uploaded_at": f"2026-11-{1 + i % 28:02d}T12:00:00Z",
                "width": 100 + i,
                VECTOR_FIELD: vector.tolist(),
            },
        }
        for i, (doc_id, vector, doc_labels) in enumerate(zip(ids, vectors, labels))
    ]
    bulk(es, actions)
    es.indices.refresh(index=name)
    yield name
    es.indices.delete(index=name)


def exact_ranking(
    vectors: np.ndarray, query: np.ndarray, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    cos = (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    order = np.argsort(-cos, kind="stable")
    if allowed is not None:
        order = order[allowed[order]]
    return order, (1 + cos[order]) / 2


def knn(es: Elasticsearch, index: str, query: np.ndarray, k: int, **options) -> list[dict]:
    clause = knn_clause(query, k=k, num_candidates=100, **options)
    return es.search(index=index, knn=clause, size=k, source_excludes=[VECTOR_FIELD])["hits"]["hits"]


def test_mapping_is_stored_as_created(es: Elasticsearch, index: str) -> None:
    mapping = es.indices.get_mapping(index=index)[index]["mappings"]
    vector = mapping["properties"][VECTOR_FIELD]
    assert (vector["type"], vector["dims"], vector["similarity"]) == ("dense_vector", DIMS, "cosine")
    assert vector["index_options"]["type"] == "hnsw"
    assert mapping["properties"]["labels"]["type"] == "keyword"
    assert mapping["_meta"] == {"model": "test/model", "mapping_version": MAPPING_VERSION}
    assert mapping["properties"]["labels"]["fields"]["text"]["type"] == "text"


def test_creating_an_existing_index_fails_like_a_cluster(es: Elasticsearch, index: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.indices.create(index=index, mappings=index_mapping(DIMS, "test/model"))
    assert caught.value.meta.status == 400
    assert caught.value.error == "resource_already_exists_exception"


def test_missing_index_and_document_are_404(es: Elasticsearch, index: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        es.search(index=f"{index}-missing", query={"match_all": {}})
    assert caught.value.error == "index_not_found_exception"
    with pytest.raises(NotFoundError):
        es.get(index=index, id="no-such-doc")
    assert not es.indices.exists(index=f"{index}-missing")


def test_knn_top_k_and_scores_equal_exact_cosine(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = np.random.default_rng(5).normal(size=DIMS).astype(np.float32)
    hits = knn(es, index, query, k=10)
    order, scores = exact_ranking(vectors, query)
    assert [h["_id"] for h in hits] == [f"doc-{i:03d}" for i in order[:10]]
    assert np.allclose([h["_score"] for h in hits], scores[:10], atol=1e-5)
    assert VECTOR_FIELD not in hits[0]["_source"]


def test_label_filter_is_a_pre_filter(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, labels = corpus
    query = np.random.default_rng(6).normal(size=DIMS).astype(np.float32)
    hits = knn(es, index, query, k=8, labels=["cup"])
    allowed = np.array(["cup" in own for own in labels])
    order, scores = exact_ranking(vectors, query, allowed)
    assert len(hits) == 8  # a pre-filter still fills k
    assert [h["_id"] for h in hits] == [f"doc-{i:03d}" for i in order[:8]]
    assert np.allclose([h["_score"] for h in hits], scores[:8], atol=1e-5)


def test_similarity_floor_returns_fewer_than_k(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = vectors[3]
    hits = knn(es, index, query, k=10, min_similarity=0.5)
    order, scores = exact_ranking(vectors, query)
    expected = [f"doc-{i:03d}" for i, s in zip(order, scores) if 2 * s - 1 >= 0.5][:10]
    assert [h["_id"] for h in hits] == expected
    assert 1 <= len(hits) < 10


def test_query_vector_of_wrong_dimension_is_400(es: Elasticsearch, index: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        knn(es, index, np.ones(DIMS + 1, np.float32), k=3)
    assert caught.value.meta.status == 400


def test_bulk_reports_a_wrong_dimension_document_and_keeps_the_rest(es: Elasticsearch, index: str) -> None:
    actions = [
        {"_index": index, "_id": "ok-1", "_source": {VECTOR_FIELD: [0.5] * DIMS}},
        {"_index": index, "_id": "bad-1", "_source": {VECTOR_FIELD: [0.5] * (DIMS - 1)}},
    ]
    ok, errors = bulk(es, actions, raise_on_error=False)
    assert ok == 1 and len(errors) == 1 and errors[0]["index"]["status"] == 400
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == DOCS + 1


def test_bulk_operations_on_one_id_apply_in_order(es: Elasticsearch, index: str) -> None:
    vector = [0.25] * DIMS
    actions = [
        {"_op_type": "create", "_index": index, "_id": "seq", "_source": {VECTOR_FIELD: vector}},
        {"_op_type": "create", "_index": index, "_id": "seq", "_source": {VECTOR_FIELD: vector}},  # 409
        {"_op_type": "delete", "_index": index, "_id": "seq"},
        {"_op_type": "create", "_index": index, "_id": "seq", "_source": {VECTOR_FIELD: vector, "width": 7}},
    ]
    _, errors = bulk(es, actions, raise_on_error=False)
    assert [e["create"]["status"] for e in errors] == [409]
    es.indices.refresh(index=index)
    assert es.get(index=index, id="seq")["_source"]["width"] == 7


def test_reindexing_the_same_ids_keeps_the_count(es: Elasticsearch, index: str, corpus) -> None:
    ids, vectors, _ = corpus
    bulk(es, [{"_index": index, "_id": i, "_source": {VECTOR_FIELD: v.tolist()}} for i, v in zip(ids[:10], vectors)])
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == DOCS


def test_vector_reads_back_through_fields(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    hit = es.search(index=index, query={"ids": {"values": ["doc-007"]}}, source=False, fields=[VECTOR_FIELD])
    values = hit["hits"]["hits"][0]["fields"][VECTOR_FIELD]
    assert np.allclose(values, vectors[7], atol=1e-5)


def test_pagination_slices_the_ranking(es: Elasticsearch, index: str, corpus) -> None:
    query = corpus[1][0]
    clause = knn_clause(query, k=10, num_candidates=100)
    full = [h["_id"] for h in es.search(index=index, knn=clause, size=10, source=False)["hits"]["hits"]]
    page = [h["_id"] for h in es.search(index=index, knn=clause, size=3, from_=2, source=False)["hits"]["hits"]]
    assert page == full[2:5]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"match_all": {}}, DOCS),
        ({"term": {"labels": "cat"}}, sum(1 for i in range(DOCS) if i % 3 == 0 or (i % 5 == 0 and i % 3 == 2))),
        ({"terms": {"labels": ["cat", "dog"]}}, sum(1 for i in range(DOCS) if i % 3 in (0, 1) or i % 5 == 0)),
        ({"range": {"width": {"gte": 150, "lt": 160}}}, 10),
        ({"range": {"uploaded_at": {"gte": "2026-11-27"}}}, sum(1 for i in range(DOCS) if 1 + i % 28 >= 27)),
        ({"ids": {"values": ["doc-001", "doc-002", "nope"]}}, 2),
        ({"prefix": {"filename": "doc-00"}}, 10),
        ({"bool": {"filter": [{"term": {"labels": "cup"}}], "must_not": [{"term": {"labels": "cat"}}]}}, None),
    ],
)
def test_count_with_filters(es: Elasticsearch, index: str, corpus, query: dict, expected: int | None) -> None:
    if expected is None:  # the bool case, computed from the labels
        expected = sum(1 for own in corpus[2] if "cup" in own and "cat" not in own)
    assert es.count(index=index, query=query)["count"] == expected


def test_words_match_labels_and_file_names_with_bm25(es: Elasticsearch, index: str, corpus) -> None:
    _, _, labels = corpus
    query = {"multi_match": {"query": "Cup!", "fields": ["labels.text", "filename.text"]}}
    hits = es.search(index=index, query=query, size=DOCS, source=["labels"])["hits"]["hits"]
    assert {h["_id"] for h in hits} == {f"doc-{i:03d}" for i, own in enumerate(labels) if "cup" in own}
    # BM25's length norm: "cup" alone outranks "cup" beside another label.
    lengths = [len(h["_source"]["labels"]) for h in hits]
    assert lengths == sorted(lengths) and lengths[0] == 1 < lengths[-1]
    both = es.search(index=index, query={"match": {"labels.text": {"query": "cup cat", "operator": "and"}}}, size=DOCS)
    assert {h["_id"] for h in both["hits"]["hits"]} == {
        f"doc-{i:03d}" for i, own in enumerate(labels) if {"cup", "cat"} <= set(own)
    }


def test_sort_and_search_after_page_through_every_document(es: Elasticsearch, index: str, corpus) -> None:
    seen, after = [], None
    while True:
        extra = {"search_after": after} if after else {}
        page = es.search(index=index, sort=[{"filename": "asc"}], size=7, source=["filename"], **extra)
        hits = page["hits"]["hits"]
        seen += [h["_source"]["filename"] for h in hits]
        if len(hits) < 7:
            break
        after = hits[-1]["sort"]
    assert seen == sorted(f"{doc_id}.jpg" for doc_id in corpus[0])


def test_script_score_is_exact_cosine_plus_one(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = np.random.default_rng(8).normal(size=DIMS).astype(np.float32)
    script = {"source": f"cosineSimilarity(params.q, '{VECTOR_FIELD}') + 1.0", "params": {"q": query.tolist()}}
    body = {"script_score": {"query": {"match_all": {}}, "script": script}}
    hits = es.search(index=index, query=body, size=10, source=False)["hits"]["hits"]
    order, scores = exact_ranking(vectors, query)
    assert [h["_id"] for h in hits] == [f"doc-{i:03d}" for i in order[:10]]
    assert np.allclose([h["_score"] for h in hits], 2 * scores[:10], atol=1e-5)  # (1 + cos), not (1 + cos) / 2


def test_unsupported_features_are_refused_by_name(tmp_path: Path) -> None:
    es = embedded_client(tmp_path)
    es.indices.create(index="x", mappings=index_mapping(DIMS, "test/model"))
    with pytest.raises(BadRequestError) as caught:
        es.search(index="x", aggs={"by_label": {"terms": {"field": "labels"}}})
    assert "aggs" in str(caught.value.body) and "real Elasticsearch cluster" in str(caught.value.body)


# --- What Elastic's notebooks and the guide send (issue #13, item 4) ----------------------------


@pytest.fixture
def leg(request) -> str:
    """Which backend this test runs on: embedded, peer or cluster."""
    return request.node.callspec.params["es"]


def peer_differs(leg: str, difference: str) -> None:
    """Skip the noida-db leg where it answers differently from Elasticsearch (never weaken the test)."""
    if leg == "peer":
        pytest.skip(f"peer leg: noida-db {difference}")


def knn_query(query: np.ndarray, **options) -> dict:
    return {"knn": {"field": VECTOR_FIELD, "query_vector": query.tolist(), **options}}


def test_knn_query_returns_size_best_of_num_candidates(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = np.random.default_rng(21).normal(size=DIMS).astype(np.float32)
    answer = es.search(index=index, query=knn_query(query, num_candidates=20), size=5, source=False)
    order, scores = exact_ranking(vectors, query)
    hits = answer["hits"]["hits"]
    assert [h["_id"] for h in hits] == [f"doc-{i:03d}" for i in order[:5]]
    assert np.allclose([h["_score"] for h in hits], scores[:5], atol=1e-5)  # as the top-level knn scores
    assert answer["hits"]["total"]["value"] == 20  # the query matches num_candidates documents per shard


def test_knn_query_k_caps_the_matches(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = np.random.default_rng(22).normal(size=DIMS).astype(np.float32)
    hits = es.search(index=index, query=knn_query(query, k=3, num_candidates=20), size=10, source=False)
    order, _ = exact_ranking(vectors, query)
    assert [h["_id"] for h in hits["hits"]["hits"]] == [f"doc-{i:03d}" for i in order[:3]]


def test_knn_query_filter_is_a_pre_filter_and_bool_clauses_filter_after(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, labels = corpus
    query = np.random.default_rng(23).normal(size=DIMS).astype(np.float32)
    cup = {"term": {"labels": "cup"}}
    allowed = np.array(["cup" in own for own in labels])
    inside = es.search(index=index, query=knn_query(query, k=8, num_candidates=20, filter=cup), size=8, source=False)
    order, scores = exact_ranking(vectors, query, allowed)
    assert [h["_id"] for h in inside["hits"]["hits"]] == [f"doc-{i:03d}" for i in order[:8]]  # k cup documents
    assert np.allclose([h["_score"] for h in inside["hits"]["hits"]], scores[:8], atol=1e-5)
    # In a bool, the other clauses filter the ten nearest of all documents: fewer than ten remain.
    after = es.search(
        index=index, query={"bool": {"must": [knn_query(query, num_candidates=10)], "filter": [cup]}}, size=10
    )
    nearest, _ = exact_ranking(vectors, query)
    expected = [f"doc-{i:03d}" for i in nearest[:10] if allowed[i]]
    assert [h["_id"] for h in after["hits"]["hits"]] == expected and len(expected) < 10


def test_knn_query_boost_and_similarity(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = vectors[4]
    plain = es.search(index=index, query=knn_query(query, num_candidates=10), size=10, source=False)["hits"]["hits"]
    boosted = es.search(index=index, query=knn_query(query, num_candidates=10, boost=2.0), size=10, source=False)
    assert np.allclose([2 * h["_score"] for h in plain], [h["_score"] for h in boosted["hits"]["hits"]], atol=1e-5)
    order, scores = exact_ranking(vectors, query)
    floor = es.search(index=index, query=knn_query(query, num_candidates=50, similarity=0.3), size=50, source=False)
    expected = [f"doc-{i:03d}" for i, s in zip(order, scores) if 2 * s - 1 >= 0.3][:50]
    assert [h["_id"] for h in floor["hits"]["hits"]] == expected and 1 <= len(expected) < 50


def test_knn_query_beside_a_word_query_adds_scores(es: Elasticsearch, index: str, corpus) -> None:
    labels = corpus[2]
    query = np.random.default_rng(24).normal(size=DIMS).astype(np.float32)
    knn_only = es.search(index=index, query=knn_query(query, num_candidates=10), size=10, source=False)
    words = {"term": {"labels": "dog"}}
    both = es.search(index=index, query={"bool": {"should": [knn_query(query, num_candidates=10), words]}}, size=DOCS)
    knn_scores = {h["_id"]: h["_score"] for h in knn_only["hits"]["hits"]}
    dogs = {f"doc-{i:03d}" for i, own in enumerate(labels) if "dog" in own}
    assert {h["_id"] for h in both["hits"]["hits"]} == set(knn_scores) | dogs
    for hit in both["hits"]["hits"]:
        if hit["_id"] in knn_scores and hit["_id"] not in dogs:
            assert hit["_score"] == pytest.approx(knn_scores[hit["_id"]], abs=1e-5)
        if hit["_id"] in dogs and hit["_id"] in knn_scores:
            assert hit["_score"] > knn_scores[hit["_id"]]


def test_delete_index_with_ignore_unavailable(es: Elasticsearch, index: str) -> None:
    missing = f"{index}-missing"
    assert es.indices.delete(index=missing, ignore_unavailable=True)["acknowledged"]
    with pytest.raises(NotFoundError) as caught:
        es.indices.delete(index=missing)
    assert caught.value.error == "index_not_found_exception"
    spare = f"{index}-spare"
    es.indices.create(index=spare)
    assert es.indices.delete(index=[spare, missing], ignore_unavailable=True)["acknowledged"]
    assert not es.indices.exists(index=spare)


def test_index_expressions_wildcards_and_lists(es: Elasticsearch, index: str, leg: str) -> None:
    nothing = f"{index}-nothing*"
    assert not es.indices.exists(index=nothing)
    assert es.indices.refresh(index=nothing)["_shards"]["total"] == 0  # allow_no_indices: true by default
    with pytest.raises(NotFoundError):
        es.indices.refresh(index=nothing, allow_no_indices=False)
    with pytest.raises(NotFoundError):
        es.indices.refresh(index=[index, f"{index}-missing"])
    assert es.indices.refresh(index=[index, f"{index}-missing"], ignore_unavailable=True)["_shards"]["successful"] >= 1
    assert list(es.indices.get_mapping(index=f"{index}*")) == [index]
    with pytest.raises(NotFoundError):  # not expanded: the pattern is read as a plain name
        es.indices.get_mapping(index=f"{index}*", expand_wildcards="none")
    with pytest.raises(BadRequestError):  # action.destructive_requires_name, on by default since 8.0
        es.indices.delete(index=f"{index}*")
    peer_differs(leg, "answers false to indices.exists with a wildcard that matches an index")
    assert es.indices.exists(index=f"{index}*")


def test_mget_by_ids_and_by_docs(es: Elasticsearch, index: str) -> None:
    by_ids = es.mget(index=index, ids=["doc-001", "doc-999"], source_includes=["filename"])["docs"]
    assert [(d["_id"], d["found"]) for d in by_ids] == [("doc-001", True), ("doc-999", False)]
    assert by_ids[0]["_source"] == {"filename": "doc-001.jpg"} and by_ids[0]["_index"] == index
    docs = [
        {"_index": index, "_id": "doc-002", "_source": ["labels"]},
        {"_index": index, "_id": "doc-003", "_source": False},
        {"_index": f"{index}-missing", "_id": "doc-004"},
    ]
    by_docs = es.mget(docs=docs)["docs"]
    assert by_docs[0]["_source"] == {"labels": ["cup"]}
    assert by_docs[1]["found"] and "_source" not in by_docs[1]
    assert by_docs[2]["error"]["type"] == "index_not_found_exception" and "found" not in by_docs[2]
    with pytest.raises(BadRequestError) as caught:
        es.mget(index=index, ids=[])
    assert caught.value.error == "action_request_validation_exception"


def test_mget_on_a_missing_index_fails_per_document(es: Elasticsearch, index: str) -> None:
    docs = es.mget(index=f"{index}-missing", ids=["a"])["docs"]
    assert docs[0]["error"]["type"] == "index_not_found_exception" and docs[0]["_id"] == "a"


def test_bulk_reports_a_line_that_is_not_json_on_its_own_item(es: Elasticsearch, index: str, leg: str) -> None:
    body = b'{"index":{"_id":"good-1"}}\n{"width":1}\n{"index":{"_id":"bad-1"}}\nnot json\n'
    body += b'{"index":{"_id":"good-2"}}\n{"width":2}\n'
    items = es.bulk(index=index, operations=body)["items"]
    assert [i["index"]["status"] for i in items] == [201, 400, 201]
    peer_differs(leg, "reports x_content_parse_exception where Elasticsearch parses the source on the shard")
    assert items[1]["index"]["error"]["type"] == "document_parsing_exception"


def test_bulk_reports_a_source_that_is_not_an_object_on_its_own_item(es: Elasticsearch, index: str, leg: str) -> None:
    peer_differs(leg, "indexes an array or a string as a document, which Elasticsearch refuses")
    body = b'{"index":{"_id":"array"}}\n[1, 2]\n{"index":{"_id":"text"}}\n"words"\n'
    body += b'{"index":{"_id":"fine"}}\n{"width":3}\n'
    items = es.bulk(index=index, operations=body)["items"]
    assert [i["index"]["status"] for i in items] == [400, 400, 201]
    assert {i["index"]["error"]["type"] for i in items[:2]} == {"document_parsing_exception"}
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == DOCS + 1


def honoured_or_refused(call, honoured) -> None:
    """A parameter is either honoured (`honoured` checks the answer) or refused by name."""
    try:
        answer = call()
    except BadRequestError as error:
        reason = error.body["error"]["reason"]
        assert "the embedded engine does not support" in reason, reason
        return
    assert honoured(answer)


def labelled(labels: list[list[str]], label: str) -> int:
    return sum(label in own for own in labels)


@pytest.mark.parametrize(
    ("call", "honoured"),
    [
        (lambda es, i: es.count(index=i, q="labels:cat"), lambda a, labels: a["count"] == labelled(labels, "cat")),
        (
            lambda es, i: es.search(index=i, q="labels:cup", size=0),
            lambda a, labels: a["hits"]["total"]["value"] == labelled(labels, "cup"),
        ),
        (lambda es, i: es.search(index=i, filter_path="hits.total"), lambda a, _: list(a) == ["hits"]),
        (
            lambda es, i: es.search(index=i, post_filter={"ids": {"values": ["doc-001"]}}),
            lambda a, _: [h["_id"] for h in a["hits"]["hits"]] == ["doc-001"],
        ),
        (lambda es, i: es.search(index=i, explain=True, size=1), lambda a, _: "_explanation" in a["hits"]["hits"][0]),
        (lambda es, i: es.get(index=i, id="doc-001", stored_fields="_none_"), lambda a, _: "_source" not in a),
        (
            lambda es, i: es.indices.get(index=i, flat_settings=True),
            lambda a, _: "index.uuid" in next(iter(a.values()))["settings"],
        ),
    ],
    ids=["q-count", "q-search", "filter_path", "post_filter", "explain", "stored_fields", "flat_settings"],
)
def test_parameters_are_honoured_or_refused_by_name(es: Elasticsearch, index: str, corpus, call, honoured) -> None:
    labels = corpus[2]
    honoured_or_refused(lambda: call(es, index), lambda answer: honoured(answer, labels))


def test_total_hits_tracking_and_as_int(es: Elasticsearch, index: str) -> None:
    assert es.search(index=index, size=0)["hits"]["total"] == {"value": DOCS, "relation": "eq"}
    assert es.search(index=index, size=0, track_total_hits=10)["hits"]["total"] == {"value": 10, "relation": "gte"}
    assert "total" not in es.search(index=index, size=0, track_total_hits=False)["hits"]
    assert es.search(index=index, size=0, rest_total_hits_as_int=True)["hits"]["total"] == DOCS


def test_knn_pre_filter_keeping_few_documents_ranks_exactly_among_them(es: Elasticsearch, index: str, corpus) -> None:
    _, vectors, _ = corpus
    query = np.random.default_rng(31).normal(size=DIMS).astype(np.float32)
    few = [3, 17, 29, 44, 61]  # so few that only their rows are read
    allowed = np.zeros(DOCS, bool)
    allowed[few] = True
    ids_filter = {"ids": {"values": [f"doc-{i:03d}" for i in few]}}
    hits = knn(es, index, query, k=3)  # unfiltered, for contrast
    filtered = es.search(index=index, knn=knn_clause(query, k=3, num_candidates=100) | {"filter": ids_filter}, size=3)
    order, scores = exact_ranking(vectors, query, allowed)
    assert [h["_id"] for h in filtered["hits"]["hits"]] == [f"doc-{i:03d}" for i in order[:3]]
    assert np.allclose([h["_score"] for h in filtered["hits"]["hits"]], scores[:3], atol=1e-5)
    assert [h["_id"] for h in hits] != [h["_id"] for h in filtered["hits"]["hits"]]


def test_explained_errors_keep_the_deepest_reason(es: Elasticsearch, index: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        knn(es, index, np.ones(DIMS - 1, np.float32), k=3)
    line = explain(caught.value, load_settings())
    assert "different number of dimensions" in line and f"[{DIMS - 1}]" in line, line


# --- A learner's first hour (issue #18): what Elasticsearch's REST test files do not cover ------


@pytest.fixture
def fresh(es: Elasticsearch) -> Iterator[str]:
    """A name for an index the test creates by writing to it; deleted afterwards."""
    name = f"contract-fresh-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


def test_writing_creates_the_index_and_maps_new_fields_dynamically(es: Elasticsearch, fresh: str) -> None:
    document = {"title": "A red cup", "taken": "2026-11-01T12:00:00Z", "width": 640, "ratio": 0.75}
    document |= {"ok": True, "camera": {"make": "Pentax"}, "tags": ["cup", "red"]}
    es.index(index=fresh, id="1", document=document, refresh=True)
    properties = es.indices.get_mapping(index=fresh)[fresh]["mappings"]["properties"]
    assert properties["title"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert (properties["taken"]["type"], properties["width"]["type"], properties["ratio"]["type"]) == (
        "date",
        "long",
        "float",
    )
    assert properties["ok"]["type"] == "boolean" and properties["tags"]["type"] == "text"
    assert properties["camera"]["properties"]["make"]["type"] == "text"
    assert es.count(index=fresh, query={"term": {"title.keyword": "A red cup"}})["count"] == 1
    assert es.count(index=fresh, query={"range": {"taken": {"gte": "2026-11-01"}}})["count"] == 1


def test_strict_mappings_refuse_new_fields_and_put_mapping_adds_them(es: Elasticsearch, fresh: str) -> None:
    es.indices.create(index=fresh, mappings={"dynamic": "strict", "properties": {"name": {"type": "keyword"}}})
    with pytest.raises(BadRequestError) as caught:
        es.index(index=fresh, id="1", document={"name": "a", "size": 3})
    assert caught.value.error == "strict_dynamic_mapping_exception"
    es.indices.put_mapping(index=fresh, properties={"size": {"type": "integer"}})
    es.index(index=fresh, id="1", document={"name": "a", "size": 3}, refresh=True)
    assert es.indices.get_mapping(index=fresh)[fresh]["mappings"]["properties"]["size"] == {"type": "integer"}
    with pytest.raises(BadRequestError):  # a field's type cannot change
        es.indices.put_mapping(index=fresh, properties={"size": {"type": "keyword"}})


def test_text_is_analysed_by_the_standard_analyzer(es: Elasticsearch, fresh: str) -> None:
    es.indices.create(index=fresh, mappings={"properties": {"caption": {"type": "text"}}})
    captions = ["A cup of COFFEE, on a table", "The U.S.A. flag", "don't_stop 3.14 believing", "咖啡杯"]
    operations = [part for i, text in enumerate(captions) for part in ({"index": {"_id": str(i)}}, {"caption": text})]
    es.bulk(index=fresh, operations=operations, refresh=True)

    def matching(words: str) -> set[str]:
        hits = es.search(index=fresh, query={"match": {"caption": words}}, size=10)["hits"]["hits"]
        return {h["_id"] for h in hits}

    assert matching("coffee") == {"0"}  # lower-cased, punctuation dropped
    assert matching("u.s.a") == {"1"}  # dots between letters stay inside the word
    assert matching("don't_stop") == {"2"} and matching("3.14") == {"2"}
    assert matching("咖") == {"3"}  # each ideograph is a word
    assert matching("stop") == set()  # "don't_stop" is one word, as Unicode word boundaries say


def test_search_and_count_across_a_list_and_a_pattern_of_indices(es: Elasticsearch, fresh: str) -> None:
    other = f"{fresh}-b"
    try:
        es.index(index=fresh, id="1", document={"kind": "cup"}, refresh=True)
        es.index(index=other, id="2", document={"kind": "cup"}, refresh=True)
        es.index(index=other, id="3", document={"kind": "cat"}, refresh=True)
        listed = es.search(index=[fresh, other], query={"term": {"kind.keyword": "cup"}})["hits"]["hits"]
        assert {(h["_index"], h["_id"]) for h in listed} == {(fresh, "1"), (other, "2")}
        assert es.count(index=f"{fresh}*")["count"] == 3
        assert es.search(index=f"{fresh}*", size=0, rest_total_hits_as_int=True)["hits"]["total"] == 3
    finally:
        es.indices.delete(index=other, ignore_unavailable=True)


def test_housekeeping_answers_for_one_several_all_or_no_indices(es: Elasticsearch, index: str) -> None:
    for call in (es.indices.refresh, es.indices.flush, es.indices.forcemerge):
        assert call(index=index)["_shards"]["failed"] == 0
        assert call()["_shards"]["failed"] == 0  # every index
        with pytest.raises(NotFoundError):
            call(index=f"{index}-missing")
    assert es.cluster.health()["status"] in ("green", "yellow")


def test_an_id_over_512_bytes_fails_its_item(es: Elasticsearch, index: str) -> None:
    items = es.bulk(index=index, operations=[{"index": {"_id": "x" * 513}}, {"width": 1}])["items"]
    assert items[0]["index"]["status"] == 400 and "too long" in items[0]["index"]["error"]["reason"]


def test_auto_create_index_follows_the_cluster_setting(es: Elasticsearch, fresh: str, leg: str) -> None:
    peer_differs(leg, "acknowledges action.auto_create_index but still creates indices on write")
    es.cluster.put_settings(persistent={"action.auto_create_index": "false"})
    try:
        with pytest.raises(NotFoundError) as caught:
            es.index(index=fresh, document={"a": 1})
        assert caught.value.error == "index_not_found_exception"
        es.cluster.put_settings(persistent={"action.auto_create_index": f"+{fresh}*,-*"})
        es.index(index=fresh, document={"a": 1}, refresh=True)  # the pattern lets this one through
        with pytest.raises(NotFoundError):
            es.index(index=f"other-{fresh}", document={"a": 1})
    finally:
        es.cluster.put_settings(persistent={"action.auto_create_index": None})
    assert es.count(index=fresh)["count"] == 1


def test_field_options_are_honoured(es: Elasticsearch, fresh: str) -> None:
    """ignore_above, text terms, match on numbers, minimum_should_match as a share,
    numeric_detection, and a dense_vector that is stored but not indexed."""
    properties = {"code": {"type": "keyword", "ignore_above": 5}, "caption": {"type": "text"}}
    properties |= {"size": {"type": "integer"}, "raw": {"type": "dense_vector", "dims": 3, "index": False}}
    es.indices.create(index=fresh, mappings={"numeric_detection": True, "properties": properties})
    es.index(index=fresh, id="1", document={"code": "abc", "caption": "A red cup", "size": 3, "raw": [0.1, 2, 3]})
    es.index(index=fresh, id="2", document={"code": "abcdefgh", "caption": "A blue cup", "size": 4, "count": "42"})
    es.indices.refresh(index=fresh)

    def count(query: dict) -> int:
        return es.count(index=fresh, query=query)["count"]

    assert count({"term": {"code": "abcdefgh"}}) == 0 and count({"term": {"code": "abc"}}) == 1  # over ignore_above
    assert count({"term": {"caption": "cup"}}) == 2 and count({"term": {"caption": "Cup"}}) == 0  # analysed terms
    assert count({"match": {"size": "3"}}) == 1
    words = [{"term": {"caption": word}} for word in ("red", "cup", "green")]
    assert count({"bool": {"should": words, "minimum_should_match": "60%"}}) == 2  # 1.8 of 3 rounds down to 1
    assert count({"bool": {"should": words, "minimum_should_match": 2}}) == 1
    assert es.indices.get_mapping(index=fresh)[fresh]["mappings"]["properties"]["count"]["type"] == "long"
    assert es.get(index=fresh, id="1")["_source"]["raw"] == [0.1, 2, 3]  # as sent
    with pytest.raises(BadRequestError) as caught:
        es.search(index=fresh, knn={"field": "raw", "query_vector": [1, 2, 3], "k": 1, "num_candidates": 2})
    assert "[index] set to [true]" in explain(caught.value, load_settings())


# --- Approximate kNN (issue #24): the candidate pool, filters through the graph, quantisation ---

ANN_DIMS = 64
ANN_DOCS = 1500
QUANTIZED = ["int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat"]


def ann_index(es: Elasticsearch, name: str, kind: str, vectors: np.ndarray, **options) -> None:
    """A `dense_vector` field `v` of the given index_options type, and a `part` keyword (0, 1, 2)."""
    index_options = {"type": kind, **options}
    vector = {"type": "dense_vector", "dims": vectors.shape[1], "similarity": "cosine", "index_options": index_options}
    es.indices.create(index=name, mappings={"properties": {"v": vector, "part": {"type": "keyword"}}})
    actions = ({"_index": name, "_id": str(i), "v": v.tolist(), "part": str(i % 3)} for i, v in enumerate(vectors))
    bulk(es, actions, chunk_size=500)
    es.indices.refresh(index=name)


@pytest.fixture
def spectrum() -> tuple[np.ndarray, np.ndarray]:
    from helpers.synthetic import spectrum_vectors

    return spectrum_vectors(ANN_DOCS, ANN_DIMS, seed=3), spectrum_vectors(30, ANN_DIMS, seed=4)


def ann_ids(es: Elasticsearch, name: str, query: np.ndarray, k: int, num_candidates: int, **extra) -> list[str]:
    clause = {"field": "v", "query_vector": query.tolist(), "k": k, "num_candidates": num_candidates, **extra}
    return [h["_id"] for h in es.search(index=name, knn=clause, size=k, source=False)["hits"]["hits"]]


def mean_recall(found: list[list[str]], vectors: np.ndarray, queries: np.ndarray, k: int, rows=None) -> float:
    rows = np.arange(len(vectors)) if rows is None else rows
    truth = [rows[np.argsort(-(vectors[rows] @ q), kind="stable")[:k]] for q in queries]
    return float(np.mean([len({int(i) for i in f} & set(t.tolist())) / k for f, t in zip(found, truth)]))


def test_num_candidates_and_k_out_of_bounds_are_elasticsearch_errors(es: Elasticsearch, index: str) -> None:
    query = np.ones(DIMS, np.float32)
    cases = [(5, 3, "[num_candidates] cannot be less than [k]"), (5, 10_001, "[num_candidates] cannot exceed [10000]")]
    cases += [(0, 10, "[k] must be greater than 0")]
    for k, num_candidates, reason in cases:
        clause = {"field": VECTOR_FIELD, "query_vector": query.tolist(), "k": k, "num_candidates": num_candidates}
        with pytest.raises(BadRequestError) as caught:
            es.search(index=index, knn=clause)
        assert reason in str(caught.value.body), caught.value.body
    assert es.count(index=index)["count"] == DOCS  # nothing stored is lost


def test_a_larger_candidate_pool_finds_more_of_the_true_neighbours(es: Elasticsearch, spectrum) -> None:
    vectors, queries = spectrum
    name = f"contract-ann-{uuid.uuid4().hex[:8]}"
    ann_index(es, name, "hnsw", vectors, m=16, ef_construction=100)
    try:
        small = mean_recall([ann_ids(es, name, q, 10, 10) for q in queries], vectors, queries, 10)
        large = mean_recall([ann_ids(es, name, q, 10, 500) for q in queries], vectors, queries, 10)
        assert large >= small and large >= 0.95, (small, large)
    finally:
        es.indices.delete(index=name)


def test_filtered_knn_walks_the_graph_and_keeps_only_matches(es: Elasticsearch, spectrum) -> None:
    vectors, queries = spectrum
    name = f"contract-ann-{uuid.uuid4().hex[:8]}"
    ann_index(es, name, "hnsw", vectors)
    try:
        third = {"term": {"part": "1"}}  # lets through a third: too many for the exact fallback
        found = [ann_ids(es, name, q, 10, 100, filter=third) for q in queries]
        assert all(int(i) % 3 == 1 for ids in found for i in ids) and all(len(ids) == 10 for ids in found)
        assert mean_recall(found, vectors, queries, 10, np.arange(1, ANN_DOCS, 3)) >= 0.9
        few = {"ids": {"values": ["4", "40", "400", "1000"]}}  # fewer than num_candidates: exact
        hits = ann_ids(es, name, queries[0], 3, 10, filter=few)
        rows = np.array([4, 40, 400, 1000])
        assert hits == [str(i) for i in rows[np.argsort(-(vectors[rows] @ queries[0]))[:3]]]
    finally:
        es.indices.delete(index=name)


@pytest.mark.parametrize("kind", QUANTIZED)
def test_quantized_types_rank_nearly_exactly_and_rescoring_gives_float_scores(
    es: Elasticsearch, spectrum, kind, leg: str
) -> None:
    peer_differs(leg, "does not know the knn section's rescore_vector")
    vectors, queries = spectrum
    name = f"contract-q-{uuid.uuid4().hex[:8]}"
    ann_index(es, name, kind, vectors)
    try:
        stored = es.get(index=name, id="7")["_source"]["v"]
        assert np.array_equal(np.float32(stored), vectors[7])  # the float vector is kept as sent
        rescore = {"rescore_vector": {"oversample": 5}}
        clauses = [{"field": "v", "query_vector": q.tolist(), "k": 10, "num_candidates": 100} for q in queries]
        hits = [es.search(index=name, knn=c | rescore, size=10, source=False)["hits"]["hits"] for c in clauses]
        for q, answer in zip(queries, hits):
            exact = [(1 + float(vectors[int(h["_id"])] @ q)) / 2 for h in answer]
            assert np.allclose([h["_score"] for h in answer], exact, atol=1e-5)  # rescored with the floats
        floor = {"int8": 0.9, "int4": 0.7, "bbq_": 0.6}[kind[:4]]
        assert mean_recall([[h["_id"] for h in a] for a in hits], vectors, queries, 10) >= floor
        plain = es.search(
            index=name,
            knn={
                "field": "v",
                "query_vector": queries[0].tolist(),
                "k": 10,
                "num_candidates": 100,
                "rescore_vector": {"oversample": 0},
            },
            size=10,
        )
        approximate = [h["_score"] for h in plain["hits"]["hits"]]
        exact = [(1 + float(vectors[int(h["_id"])] @ queries[0])) / 2 for h in plain["hits"]["hits"]]
        # one bit per dimension of 64 is rough; 8 bits cut at the confidence interval clip the topics' tails
        error = {"int8": 0.03, "int4": 0.05, "bbq_": 0.2}[kind[:4]]
        assert np.allclose(approximate, exact, atol=error)  # scored from the codes: close, not equal
    finally:
        es.indices.delete(index=name)


@pytest.mark.parametrize(
    "options",
    [
        {"type": "hnsw_fast"},
        {"type": "hnsw", "m": 0},
        {"type": "hnsw", "m": 513},
        {"type": "hnsw", "ef_construction": 0},
        {"type": "int8_hnsw", "confidence_interval": 0.5},
        {"type": "int8_hnsw", "rescore_vector": {"oversample": 0.5}},
    ],
)
def test_bad_index_options_are_refused_and_nothing_is_created(es: Elasticsearch, fresh: str, options, leg) -> None:
    peer_differs(leg, "does not check m, ef_construction nor confidence_interval")
    vector = {"type": "dense_vector", "dims": 64, "similarity": "cosine", "index_options": options}
    with pytest.raises(BadRequestError):
        es.indices.create(index=fresh, mappings={"properties": {"v": vector}})
    assert not es.indices.exists(index=fresh)


def test_query_rescore_oversample_below_one_is_refused(es: Elasticsearch, index: str, leg: str) -> None:
    peer_differs(leg, "does not know the knn section's rescore_vector")
    clause = {"field": VECTOR_FIELD, "query_vector": [1.0] * DIMS, "k": 3, "num_candidates": 10}
    with pytest.raises(BadRequestError):
        es.search(index=index, knn=clause | {"rescore_vector": {"oversample": 0.5}})
    assert len(es.search(index=index, knn=clause | {"rescore_vector": {"oversample": 0}})["hits"]["hits"]) == 3
