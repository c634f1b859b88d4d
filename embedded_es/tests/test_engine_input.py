"""Bad input to the embedded engine gets a clear 4xx, never a raw Python exception or a 5xx:
every option of search, kNN, the queries, mappings, documents and index names is sent values
of the wrong shape (null, strings, numbers, lists, objects) through the official client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from elasticsearch import ApiError, Elasticsearch

from embedded_es import embedded_client

WRONG = [None, "x", 5, -1, 1.5, [], {}, [1], ["a"], {"a": 1}, True, [None], {"": {}}, [[1, 2, 3]], [{"a": 1}]]
MAPPING = {
    "properties": {
        "v": {"type": "dense_vector", "dims": 3},
        "k": {"type": "keyword"},
        "n": {"type": "long"},
        "t": {"type": "text"},
        "d": {"type": "date"},
        "o": {"type": "object", "properties": {"x": {"type": "keyword"}}},
    }
}


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Elasticsearch:
    es = embedded_client(tmp_path_factory.mktemp("engine-input"))
    es.indices.create(index="f", mappings=MAPPING)
    document = {"v": [1, 2, 3], "k": "a", "n": 1, "t": "hello world", "d": "2020-01-01", "o": {"x": "y"}}
    es.index(index="f", id="1", document=document, refresh=True)
    return es


def requests(value: object) -> dict[str, Callable[[Elasticsearch], object]]:
    """One request per place a value can go wrong."""
    knn = {"field": "v", "query_vector": [1, 2, 3], "k": 1, "num_candidates": 5}
    calls: dict[str, Callable[[Elasticsearch], object]] = {}
    for key in ("query", "knn", "size", "from", "sort", "_source", "fields", "min_score", "track_total_hits"):
        calls[f"search {key}"] = lambda es, key=key: es.search(index="f", body={key: value})
    calls["search_after"] = lambda es: es.search(index="f", sort=["k"], search_after=value)
    for kind in ("match_all", "term", "terms", "range", "ids", "prefix", "exists", "bool", "constant_score"):
        calls[f"query {kind}"] = lambda es, kind=kind: es.search(index="f", query={kind: value})
    for kind in ("match", "multi_match", "script_score", "knn", "range", "term", "terms", "prefix"):
        for field in ("k", "n", "d", "t"):
            calls[f"query {kind} {field}"] = lambda es, k=kind, f=field: es.search(index="f", query={k: {f: value}})
    for key in ("field", "query_vector", "k", "num_candidates", "filter", "similarity", "boost", "rescore_vector"):
        calls[f"knn {key}"] = lambda es, key=key: es.search(index="f", knn=knn | {key: value})
        calls[f"knn query {key}"] = lambda es, key=key: es.search(index="f", query={"knn": knn | {key: value}})
    calls["bool minimum_should_match"] = lambda es: es.search(
        index="f", query={"bool": {"should": [{"match_all": {}}], "minimum_should_match": value}}
    )
    calls["multi_match fields"] = lambda es: es.search(
        index="f", query={"multi_match": {"query": "x", "fields": value}}
    )
    script = {"source": "cosineSimilarity(params.q, 'v') + 1.0", "params": {"q": value}}
    calls["script params"] = lambda es: es.search(index="f", query={"script_score": {"query": {}, "script": script}})
    for part in ("mappings", "settings", "aliases"):
        calls[f"create {part}"] = lambda es, part=part: es.indices.create(index="g", body={part: value})
    for spec in ("field", "type", "dims", "index_options", "fields"):
        field = {"field": value, "type": {"type": value}, "dims": {"type": "dense_vector", "dims": value}}
        field |= {"index_options": {"type": "dense_vector", "dims": 3, "index_options": value}}
        field |= {"fields": {"type": "text", "fields": value}}
        calls[f"create {spec}"] = lambda es, spec=spec, field=field: es.indices.create(
            index="g", mappings={"properties": {"x": field[spec]}}
        )
    for name in ("v", "k", "n", "t", "d", "o", "new"):
        calls[f"index {name}"] = lambda es, name=name: es.index(index="f", id="2", document={name: value})
    calls["put_mapping"] = lambda es: es.indices.put_mapping(index="f", body={"properties": {"k": value}})
    calls["mget docs"] = lambda es: es.mget(index="f", body={"docs": value})
    calls["mget ids"] = lambda es: es.mget(index="f", body={"ids": value})
    calls["mget _source"] = lambda es: es.mget(index="f", docs=[{"_id": "1", "_source": value}])
    calls["bulk action"] = lambda es: es.bulk(index="f", operations=[value, {"a": 1}])
    calls["bulk metadata"] = lambda es: es.bulk(operations=[{"index": value}, {"a": 1}])
    calls["bulk _index"] = lambda es: es.bulk(operations=[{"index": {"_index": value}}, {"a": 1}])
    calls["bulk _id"] = lambda es: es.bulk(index="f", operations=[{"index": {"_id": value}}, {"a": 1}])
    calls["count"] = lambda es: es.count(index="f", body={"query": value})
    return calls


def server_errors(
    es: Elasticsearch, calls: dict[str, Callable[[Elasticsearch], object]], client_refusals: tuple[str, ...] = ()
) -> list[str]:
    """Each call that the engine answered with a 5xx or a raw exception (what these tests exist to
    catch); `client_refusals` are messages of the client's own, raised before anything is sent.
    Index "g", which some calls create, is removed after each."""
    failures = []
    for name, call in calls.items():
        try:
            call(es)
        except ApiError as error:
            if error.meta.status >= 500:
                failures.append(f"{name}: {error.meta.status}")
        except Exception as error:
            if not (client_refusals and str(error).startswith(client_refusals)):
                failures.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            es.options(ignore_status=404).indices.delete(index="g")
    return failures


@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_values_of_the_wrong_shape_get_a_4xx(es: Elasticsearch, value: object) -> None:
    assert server_errors(es, requests(value)) == []


@pytest.mark.parametrize("name", ["UPPER", "_x", "a b", "a,b", "a*", "..", "-a", "a" * 300, "a:b", "a#b"])
def test_bad_index_names_get_a_4xx(tmp_path: Path, name: str) -> None:
    es = embedded_client(tmp_path)
    for call in (es.indices.create, lambda index: es.index(index=index, document={"a": 1})):
        with pytest.raises(ApiError) as caught:
            call(index=name)
        assert 400 <= caught.value.meta.status < 500
