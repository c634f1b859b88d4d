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

from helpers._engine import embedded_client
from helpers._settings import load_settings
from helpers.connect import connect
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
        pytest.skip("cluster leg: set ELASTICSEARCH_URL (see README, 'Contract tests against a cluster') to run it")
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
