"""The engine's side of issue #25, where only the engine can be asked: bad input to retrievers,
scroll, point in time, updates, `_msearch`, aliases and by-query requests gets a clear 4xx
(never a raw exception or a 5xx); a scroll and a point in time expire; refusals name their area;
a refused HEAD request still reaches the caller with its reason."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from embedded_es import embedded_client
from embedded_es.errors import REFUSAL
from embedded_es.surface import area_of
from embedded_es.tests.test_engine_input import WRONG, server_errors


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Elasticsearch:
    es = embedded_client(tmp_path_factory.mktemp("engine-next"))
    es.indices.create(index="f", mappings={"properties": {"v": {"type": "dense_vector", "dims": 3}}})
    for i in range(5):
        es.index(index="f", id=str(i), document={"v": [1, i, 2], "t": f"word {i}", "n": i})
    es.indices.refresh(index="f")
    return es


def requests(value: object) -> dict[str, Callable[[Elasticsearch], object]]:
    knn = {"field": "v", "query_vector": [1, 2, 3], "k": 2, "num_candidates": 5}
    standard = {"standard": {"query": {"match_all": {}}}}
    calls: dict[str, Callable[[Elasticsearch], object]] = {}
    calls["retriever"] = lambda es: es.search(index="f", retriever=value)
    for kind in ("standard", "knn", "rrf", "linear"):
        calls[f"retriever {kind}"] = lambda es, kind=kind: es.search(index="f", retriever={kind: value})
    for key in ("query", "filter", "min_score", "sort"):
        calls[f"standard {key}"] = lambda es, key=key: es.search(index="f", retriever={"standard": {key: value}})
    for key in ("field", "query_vector", "k", "num_candidates", "filter"):
        calls[f"knn retriever {key}"] = lambda es, key=key: es.search(index="f", retriever={"knn": knn | {key: value}})
    for key in ("retrievers", "rank_window_size", "rank_constant", "filter"):
        rrf = {"retrievers": [standard, {"knn": knn}], key: value}
        calls[f"rrf {key}"] = lambda es, rrf=rrf: es.search(index="f", retriever={"rrf": rrf})
    for key in ("weight", "normalizer", "retriever"):
        child = {"retriever": standard, key: value}
        calls[f"linear {key}"] = lambda es, c=child: es.search(index="f", retriever={"linear": {"retrievers": [c]}})
    calls["scroll"] = lambda es: es.search(index="f", scroll=value)
    calls["scroll id"] = lambda es: es.scroll(body={"scroll_id": value})
    calls["clear scroll"] = lambda es: es.clear_scroll(body={"scroll_id": value})
    calls["pit keep_alive"] = lambda es: es.open_point_in_time(index="f", keep_alive=value)
    calls["pit"] = lambda es: es.search(body={"pit": value})
    calls["pit id"] = lambda es: es.search(body={"pit": {"id": value}})
    calls["close pit"] = lambda es: es.close_point_in_time(body={"id": value})
    for key in ("doc", "upsert", "doc_as_upsert", "detect_noop"):
        calls[f"update {key}"] = lambda es, key=key: es.update(index="f", id="1", body={"doc": {}, key: value})
    calls["bulk update"] = lambda es: es.bulk(operations=[{"update": {"_index": "f", "_id": "1"}}, value])
    calls["msearch header"] = lambda es: es.msearch(searches=[value, {}])
    calls["msearch body"] = lambda es: es.msearch(searches=[{"index": "f"}, value])
    calls["aliases actions"] = lambda es: es.indices.update_aliases(body={"actions": value})
    for key in ("index", "alias", "is_write_index"):
        add = {"index": "f", "alias": "a"} | {key: value}
        calls[f"alias add {key}"] = lambda es, add=add: es.indices.update_aliases(actions=[{"add": add}])
    calls["delete_by_query"] = lambda es: es.delete_by_query(index="g", body={"query": value})
    calls["update_by_query max_docs"] = lambda es: es.update_by_query(index="f", body={"max_docs": value})
    calls["count terminate_after"] = lambda es: es.count(index="f", terminate_after=value)
    return calls


@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_values_of_the_wrong_shape_get_a_4xx(es: Elasticsearch, value: object) -> None:
    assert server_errors(es, requests(value), client_refusals=("Empty value passed for",)) == []


def test_a_scroll_and_a_point_in_time_expire(es: Elasticsearch) -> None:
    first = es.search(index="f", scroll="1s", size=1)
    pit = es.open_point_in_time(index="f", keep_alive="1s")["id"]
    time.sleep(1.2)
    with pytest.raises(NotFoundError) as caught:
        es.scroll(scroll_id=first["_scroll_id"], scroll="1m")
    assert caught.value.body["error"]["caused_by"]["type"] == "search_context_missing_exception"
    with pytest.raises(NotFoundError):
        es.search(pit={"id": pit}, size=1)


def test_a_keep_alive_over_a_day_is_refused(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.search(index="f", scroll="2d")
    assert "search.max_keep_alive" in str(caught.value)


@pytest.mark.parametrize(
    ("call", "area"),
    [
        (lambda es: es.update(index="f", id="1", script={"source": "ctx._source.n++"}), "the update option"),
        (lambda es: es.search(index="f", body={"rank": {"rrf": {}}}), "the search option"),
        (lambda es: es.search(index="f", body={"sub_searches": []}), "the search option"),
        (lambda es: es.search(index="f", retriever={"text_similarity_reranker": {}}), "the retriever"),
        (lambda es: es.update_by_query(index="f", script={"source": "x"}), "the update option"),
        (
            lambda es: es.indices.update_aliases(actions=[{"add": {"index": "f", "alias": "a", "filter": {}}}]),
            "the alias option",
        ),
    ],
)
def test_refusals_name_their_area(es: Elasticsearch, call: Callable, area: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        call(es)
    reason = caught.value.body["error"]["reason"]
    assert reason.startswith(REFUSAL) and area_of(reason) == area


def test_a_refused_head_request_says_why(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.perform_request("HEAD", "/_cat/indices")
    assert REFUSAL in str(caught.value) and "HEAD /_cat/indices" in str(caught.value)
