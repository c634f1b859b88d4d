"""if_seq_no / if_primary_term validated as Elasticsearch validates them (texts from its
DocWriteRequest, IndexRequest and UpdateRequest), and the join field's checks; refusals by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedded_es.api import handle
from embedded_es.errors import EsError
from embedded_es.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path)
    handle(store, "PUT", "/i/_doc/1", {}, b'{"n": 1}')
    return store


def refusal(store: Store, method: str, path: str, params: dict, body: dict | None = None) -> tuple[int, str, str]:
    with pytest.raises(EsError) as caught:
        handle(store, method, path, params, json.dumps(body).encode() if body is not None else None)
    return caught.value.status, caught.value.error_type, caught.value.reason


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "reason"),
    [
        (
            "PUT",
            "/i/_doc/1",
            {"if_seq_no": "0"},
            {"n": 2},
            "Validation Failed: 1: ifSeqNo is set, but primary term is [0];",
        ),
        (
            "DELETE",
            "/i/_doc/1",
            {"if_primary_term": "1"},
            None,
            "Validation Failed: 1: ifSeqNo is unassigned, but primary term is [1];",
        ),
        (
            "PUT",
            "/i/_create/2",
            {"if_seq_no": "0", "if_primary_term": "1"},
            {"n": 2},
            "Validation Failed: 1: create operations do not support compare and set. use index instead;",
        ),
        (
            "POST",
            "/i/_update/1",
            {"if_seq_no": "0", "if_primary_term": "1", "retry_on_conflict": "2"},
            {"doc": {"n": 2}, "upsert": {"n": 0}},
            "Validation Failed: 1: compare and write operations can not be retried;"
            "2: upsert requests don't support `if_seq_no` and `if_primary_term`;",
        ),
    ],
)
def test_expectations_are_validated(store: Store, method, path, params, body, reason) -> None:
    assert refusal(store, method, path, params, body) == (400, "action_request_validation_exception", reason)
    assert handle(store, "GET", "/i/_doc/1", {}, None)[1]["_source"] == {"n": 1}  # nothing written


def test_negative_numbers_are_refused(store: Store) -> None:
    reason = refusal(store, "PUT", "/i/_doc/1", {"if_seq_no": "-1", "if_primary_term": "1"}, {"n": 2})[2]
    assert reason == "sequence numbers must be non negative. got [-1]."
    reason = refusal(store, "PUT", "/i/_doc/1", {"if_seq_no": "0", "if_primary_term": "-1"}, {"n": 2})[2]
    assert reason == "primary term must be non negative. got [-1]"


def test_a_conflict_in_a_bulk_fails_only_its_item(store: Store) -> None:
    body = b'{"index":{"_id":"1","if_seq_no":7,"if_primary_term":1}}\n{"n":9}\n{"index":{"_id":"2"}}\n{"n":2}\n'
    items = handle(store, "POST", "/i/_bulk", {}, body)[1]["items"]
    assert [i["index"]["status"] for i in items] == [409, 201]
    assert items[1]["index"]["_seq_no"] == 1  # the failed item took no sequence number


def test_join_fields_sit_at_the_root_and_parent_child_queries_are_refused_by_name(store: Store) -> None:
    nested = {"mappings": {"properties": {"o": {"properties": {"j": {"type": "join", "relations": {"a": "b"}}}}}}}
    assert refusal(store, "PUT", "/k", {}, nested)[1] == "mapper_parsing_exception"
    for query in ({"has_child": {"type": "b", "query": {"match_all": {}}}}, {"parent_id": {"type": "b", "id": "1"}}):
        status, kind, reason = refusal(store, "POST", "/i/_search", {}, {"query": query})
        assert (status, kind) == (400, "illegal_argument_exception")
        assert f"does not support the query [{next(iter(query))}]" in reason


def test_other_scripts_are_refused_by_name(tmp_path: Path) -> None:
    store = Store(tmp_path)
    handle(store, "PUT", "/v", {}, b'{"mappings": {"properties": {"v": {"type": "dense_vector", "dims": 2}}}}')
    source = "double value = dotProduct(params.q, 'v'); return sigmoid(value, 2, params.a);"
    script = {"source": source, "params": {"q": [1, 0]}}
    reason = refusal(
        store, "POST", "/v/_search", {}, {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}}
    )[2]
    assert reason.startswith("the embedded engine does not support the script [double value")
