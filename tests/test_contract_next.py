"""The contract for what learners' code sends after the first hour (issue #25): scroll and
`helpers.scan` / `helpers.reindex`, partial updates and bulk `update` actions, retrievers,
`_msearch` and `_count` with `terminate_after`. Same three legs as tests/test_contract.py:
the embedded engine always, noida-db when it starts, a real cluster when ELASTICSEARCH_URL is
set; every expectation here is what Elasticsearch answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError
from elasticsearch.helpers import bulk, reindex, scan

from helpers.hybrid import rrf_available
from tests.test_contract import es, leg, peer_differs, peer_url  # noqa: F401 (fixtures)

DIMS = 8
WORDS = ["red cat", "blue dog", "red dog", "green cup", "red cup", "blue cat"]


@pytest.fixture
def index(es: Elasticsearch) -> Iterator[str]:  # noqa: F811
    name = f"next-{uuid.uuid4().hex[:10]}"
    es.indices.create(
        index=name,
        mappings={
            "properties": {
                "text": {"type": "text"},
                "n": {"type": "integer"},
                "kind": {"type": "keyword"},
                "v": {"type": "dense_vector", "dims": DIMS, "index": True, "similarity": "cosine"},
            }
        },
    )
    rng = np.random.default_rng(3)
    actions = [
        {
            "_index": name,
            "_id": str(i),
            "_source": {"text": WORDS[i % 6], "n": i, "kind": "even" if i % 2 == 0 else "odd"}
            | {"v": rng.normal(size=DIMS).round(3).tolist()},
        }
        for i in range(30)
    ]
    bulk(es, actions, refresh=True)
    yield name
    es.options(ignore_status=404).indices.delete(index=name)
    es.options(ignore_status=404).indices.delete(index=f"{name}-copy")


# --- scroll, scan, reindex --------------------------------------------------------------------


def test_scroll_pages_through_everything_then_the_id_is_gone(es: Elasticsearch, index: str) -> None:  # noqa: F811
    first = es.search(index=index, scroll="1m", size=7, sort=["n"], source=False)
    seen = [h["_id"] for h in first["hits"]["hits"]]
    assert first["hits"]["total"] == {"value": 30, "relation": "eq"}
    scroll_id = first["_scroll_id"]
    while True:
        page = es.scroll(scroll_id=scroll_id, scroll="1m")
        if not page["hits"]["hits"]:
            break
        seen += [h["_id"] for h in page["hits"]["hits"]]
        scroll_id = page["_scroll_id"]
    assert seen == [str(i) for i in range(30)]
    assert es.clear_scroll(scroll_id=scroll_id)["num_freed"] == 1
    with pytest.raises(NotFoundError) as caught:
        es.scroll(scroll_id=scroll_id, scroll="1m")
    assert caught.value.body["error"]["root_cause"][0]["type"] == "search_context_missing_exception"


def test_a_scroll_is_a_snapshot(es: Elasticsearch, index: str) -> None:  # noqa: F811
    first = es.search(index=index, scroll="1m", size=10, sort=["n"], source=False)
    es.index(index=index, id="new", document={"n": -1}, refresh=True)
    es.delete(index=index, id="25", refresh=True)
    rest = []
    page = es.scroll(scroll_id=first["_scroll_id"], scroll="1m")
    while page["hits"]["hits"]:
        rest += [h["_id"] for h in page["hits"]["hits"]]
        page = es.scroll(scroll_id=page["_scroll_id"], scroll="1m")
    assert rest == [str(i) for i in range(10, 30)]
    es.clear_scroll(scroll_id=page["_scroll_id"])


def test_scroll_refuses_from(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "accepts `from` in a scroll context")
    with pytest.raises(BadRequestError) as caught:
        es.search(index=index, scroll="1m", from_=5)
    assert "using [from] is not allowed in a scroll context" in str(caught.value)


def test_scan_and_reindex(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "has no GET _data_stream, which helpers.reindex asks first")
    docs = list(scan(es, index=index, query={"query": {"term": {"kind": "even"}}}, size=4))
    assert sorted(int(d["_id"]) for d in docs) == list(range(0, 30, 2))
    reindex(es, index, f"{index}-copy", bulk_kwargs={"refresh": True})
    assert es.count(index=f"{index}-copy")["count"] == 30
    assert es.get(index=f"{index}-copy", id="7")["_source"]["text"] == WORDS[1]


# --- updates ---------------------------------------------------------------------------------


def test_update_merges_doc_and_reports_the_result(es: Elasticsearch, index: str) -> None:  # noqa: F811
    answer = es.update(index=index, id="1", doc={"kind": "changed", "extra": {"a": 1}})
    assert (answer["result"], answer["_version"]) == ("updated", 2)
    source = es.get(index=index, id="1")["_source"]
    assert (source["kind"], source["extra"], source["text"]) == ("changed", {"a": 1}, WORDS[1])
    es.update(index=index, id="1", doc={"extra": {"b": 2}})
    assert es.get(index=index, id="1")["_source"]["extra"] == {"a": 1, "b": 2}
    assert es.update(index=index, id="1", doc={"kind": "changed"})["result"] == "noop"


def test_update_of_a_missing_document(es: Elasticsearch, index: str) -> None:  # noqa: F811
    with pytest.raises(NotFoundError) as caught:
        es.update(index=index, id="nope", doc={"n": 1})
    assert caught.value.error == "document_missing_exception"
    created = es.update(index=index, id="up1", doc={"n": 1}, doc_as_upsert=True)
    assert (created["result"], created.meta.status) == ("created", 201)
    es.update(index=index, id="up2", doc={"n": 2}, upsert={"n": 0})
    assert es.get(index=index, id="up2")["_source"] == {"n": 0}


def test_bulk_update_actions(es: Elasticsearch, index: str) -> None:  # noqa: F811
    answer = es.bulk(
        operations=[
            {"update": {"_index": index, "_id": "2"}},
            {"doc": {"kind": "bulk"}},
            {"update": {"_index": index, "_id": "missing"}},
            {"doc": {"kind": "bulk"}},
        ]
    )
    first, second = (item["update"] for item in answer["items"])
    assert (first["status"], first["result"]) == (200, "updated")
    assert (second["status"], second["error"]["type"]) == (404, "document_missing_exception")
    assert es.get(index=index, id="2")["_source"]["kind"] == "bulk"


# --- retrievers ------------------------------------------------------------------------------


def needs_rank_licence(es: Elasticsearch, leg: str) -> None:  # noqa: F811
    """A cluster runs `rrf` and `linear` with an Enterprise or trial licence only."""
    if leg == "cluster" and not rrf_available(es):
        pytest.skip("cluster leg: rrf and linear retrievers need an Enterprise or trial licence")


def ranked_ids(answer: dict) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def test_standard_retriever_is_the_query(es: Elasticsearch, index: str) -> None:  # noqa: F811
    query = {"match": {"text": "red"}}
    plain = es.search(index=index, query=query, size=5)
    retrieved = es.search(index=index, retriever={"standard": {"query": query}}, size=5)
    assert ranked_ids(retrieved) == ranked_ids(plain)
    assert np.allclose([h["_score"] for h in retrieved["hits"]["hits"]], [h["_score"] for h in plain["hits"]["hits"]])


def test_rrf_fuses_ranks(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    needs_rank_licence(es, leg)
    vector = es.get(index=index, id="4")["_source"]["v"]
    knn = {"field": "v", "query_vector": vector, "k": 5, "num_candidates": 30}
    query = {"match": {"text": "cup"}}
    window, constant = 5, 10
    standard_ids = ranked_ids(es.search(index=index, query=query, size=window))
    knn_ids = ranked_ids(es.search(index=index, knn=knn, size=window))
    expected: dict[str, float] = {}
    for ids in (standard_ids, knn_ids):
        for rank, doc_id in enumerate(ids, 1):
            expected[doc_id] = expected.get(doc_id, 0.0) + 1 / (constant + rank)
    answer = es.search(
        index=index,
        retriever={
            "rrf": {
                "retrievers": [{"standard": {"query": query}}, {"knn": knn}],
                "rank_window_size": window,
                "rank_constant": constant,
            }
        },
        size=5,
        source=False,
    )
    scores = {hit["_id"]: hit["_score"] for hit in answer["hits"]["hits"]}
    best = sorted(expected.values(), reverse=True)[:5]
    assert np.allclose(sorted(scores.values(), reverse=True), best, atol=1e-6)
    assert all(abs(expected[doc_id] - score) < 1e-6 for doc_id, score in scores.items())


def test_filter_on_a_compound_retriever_reaches_every_child(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    needs_rank_licence(es, leg)
    vector = es.get(index=index, id="4")["_source"]["v"]
    answer = es.search(
        index=index,
        retriever={
            "rrf": {
                "retrievers": [
                    {"standard": {"query": {"match": {"text": "red"}}}},
                    {"knn": {"field": "v", "query_vector": vector, "k": 10, "num_candidates": 30}},
                ],
                "filter": {"term": {"kind": "odd"}},
            }
        },
        size=10,
        source=["kind"],
    )
    assert answer["hits"]["hits"] and {h["_source"]["kind"] for h in answer["hits"]["hits"]} == {"odd"}


def test_linear_with_minmax(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    needs_rank_licence(es, leg)
    peer_differs(leg, "has no linear retriever")
    query = {"match": {"text": "red cat"}}
    plain = es.search(index=index, query=query, size=10)["hits"]["hits"]
    scores = [h["_score"] for h in plain]
    low, high = min(scores), max(scores)
    assert high > low
    answer = es.search(
        index=index,
        retriever={
            "linear": {
                "retrievers": [{"retriever": {"standard": {"query": query}}, "weight": 2, "normalizer": "minmax"}],
                "rank_window_size": 10,
            }
        },
        size=10,
    )
    got = {h["_id"]: h["_score"] for h in answer["hits"]["hits"]}
    for hit in plain:
        assert abs(got[hit["_id"]] - 2 * (hit["_score"] - low) / (high - low)) < 1e-5


def test_rank_window_smaller_than_size_is_refused(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    needs_rank_licence(es, leg)
    with pytest.raises(BadRequestError) as caught:
        es.search(
            index=index,
            retriever={"rrf": {"retrievers": [{"standard": {"query": {"match_all": {}}}}], "rank_window_size": 3}},
            size=5,
        )
    assert "rank_window_size" in str(caught.value)


# --- _msearch, _count ------------------------------------------------------------------------


def test_msearch_answers_each_search_on_its_own(es: Elasticsearch, index: str) -> None:  # noqa: F811
    answer = es.msearch(
        searches=[
            {"index": index},
            {"query": {"term": {"kind": "even"}}, "size": 0},
            {"index": "no-such-index"},
            {"query": {"match_all": {}}},
            {"index": index},
            {"query": {"match": {"text": "cat"}}, "size": 2},
        ]
    )
    first, missing, third = answer["responses"]
    assert (first["status"], first["hits"]["total"]["value"]) == (200, 15)
    assert (missing["status"], missing["error"]["type"]) == (404, "index_not_found_exception")
    assert third["status"] == 200 and len(third["hits"]["hits"]) == 2


def test_count_with_terminate_after(es: Elasticsearch, index: str, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "does not report terminated_early on _count")
    answer = es.count(index=index, terminate_after=5)
    assert (answer["count"], answer["terminated_early"]) == (5, True)
    assert "terminated_early" not in es.count(index=index)


# --- point in time ---------------------------------------------------------------------------


def test_point_in_time_pages_a_snapshot_with_search_after(es: Elasticsearch, index: str) -> None:  # noqa: F811
    pit = es.open_point_in_time(index=index, keep_alive="1m")["id"]
    es.index(index=index, id="late", document={"n": 100, "kind": "even"}, refresh=True)
    es.delete(index=index, id="3", refresh=True)
    seen, after = [], None
    while True:
        extra = {"search_after": after} if after else {}
        answer = es.search(pit={"id": pit, "keep_alive": "1m"}, sort=[{"n": "asc"}], size=8, source=False, **extra)
        hits = answer["hits"]["hits"]
        assert answer["hits"]["total"]["value"] == 30  # the count of all matches, on every page
        if not hits:
            break
        seen += [hit["_id"] for hit in hits]
        after = hits[-1]["sort"]
        pit = answer["pit_id"]
    assert seen == [str(i) for i in range(30)]
    assert es.close_point_in_time(id=pit)["succeeded"]
    with pytest.raises(NotFoundError):
        es.search(pit={"id": pit}, size=1)


# --- by query, versions ----------------------------------------------------------------------


def test_delete_by_query_and_update_by_query(es: Elasticsearch, index: str) -> None:  # noqa: F811
    deleted = es.delete_by_query(index=index, query={"term": {"kind": "odd"}}, refresh=True)
    assert (deleted["total"], deleted["deleted"], deleted["failures"]) == (15, 15, [])
    assert es.count(index=index)["count"] == 15
    updated = es.update_by_query(index=index, query={"range": {"n": {"lt": 10}}}, refresh=True)
    assert (updated["total"], updated["updated"]) == (5, 5)
    assert es.get(index=index, id="2")["_version"] == 2
    assert es.get(index=index, id="12")["_version"] == 1


def test_delete_reports_the_version_it_leaves(es: Elasticsearch, index: str) -> None:  # noqa: F811
    es.index(index=index, id="5", document={"n": 5})
    answer = es.delete(index=index, id="5")
    assert (answer["result"], answer["_version"]) == ("deleted", 3)


# --- aliases ---------------------------------------------------------------------------------


def test_an_alias_swap_moves_searches_and_writes(es: Elasticsearch, index: str) -> None:  # noqa: F811
    alias, second = f"{index}-alias", f"{index}-copy"
    es.indices.create(index=second)
    es.index(index=second, id="only", document={"n": 1}, refresh=True)
    es.indices.update_aliases(actions=[{"add": {"index": index, "alias": alias}}])
    assert es.search(index=alias, size=0)["hits"]["total"]["value"] == 30
    assert es.get(index=alias, id="4")["_index"] == index
    assert es.indices.exists_alias(name=alias)
    es.indices.update_aliases(
        actions=[
            {"remove": {"index": index, "alias": alias}},
            {"add": {"index": second, "alias": alias, "is_write_index": True}},
        ]
    )
    assert es.indices.get_alias(name=alias) == {second: {"aliases": {alias: {"is_write_index": True}}}}
    assert es.index(index=alias, id="new", document={"n": 2}, refresh=True)["_index"] == second
    assert es.count(index=alias)["count"] == 2
    es.indices.delete_alias(index=second, name=alias)
    assert not es.indices.exists_alias(name=alias)
    with pytest.raises(NotFoundError):
        es.indices.get_alias(name=alias)


def test_writes_to_an_alias_of_two_indices_need_a_write_index(es: Elasticsearch, index: str) -> None:  # noqa: F811
    alias, second = f"{index}-alias", f"{index}-copy"
    es.indices.create(index=second)
    es.indices.put_alias(index=f"{index},{second}", name=alias)
    answer = es.bulk(operations=[{"index": {"_index": alias}}, {"n": 1}])
    item = answer["items"][0]["index"]
    assert (answer["errors"], item["status"], item["error"]["type"]) == (True, 400, "illegal_argument_exception")
    assert "no write index is defined for alias" in item["error"]["reason"]
    with pytest.raises(BadRequestError):
        es.indices.create(index=alias)


def test_remove_index_and_add_its_name_as_an_alias_in_one_request(es: Elasticsearch, index: str) -> None:  # noqa: F811
    """How a re-built index replaces an old one under the same name without a gap."""
    rebuilt = f"{index}-copy"
    es.indices.create(index=rebuilt)
    es.index(index=rebuilt, id="new", document={"n": 1}, refresh=True)
    es.indices.update_aliases(actions=[{"remove_index": {"index": index}}, {"add": {"index": rebuilt, "alias": index}}])
    assert es.indices.get_alias(name=index) == {rebuilt: {"aliases": {index: {}}}}
    assert [hit["_id"] for hit in es.search(index=index)["hits"]["hits"]] == ["new"]
    es.indices.delete(index=rebuilt)  # and its alias with it, so the fixture finds nothing left


# --- sequence numbers, optimistic concurrency control, routing --------------------------------


@pytest.fixture
def fresh(es: Elasticsearch) -> Iterator[str]:  # noqa: F811
    """An empty one-shard index: its sequence numbers start at 0."""
    name = f"seq-{uuid.uuid4().hex[:10]}"
    es.indices.create(index=name, settings={"number_of_shards": 1})
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


def test_every_write_takes_the_next_sequence_number(es: Elasticsearch, fresh: str) -> None:  # noqa: F811
    taken = [
        es.index(index=fresh, id="a", document={"n": 1}),
        es.index(index=fresh, id="a", document={"n": 2}),
        es.create(index=fresh, id="b", document={"n": 3}),
        es.delete(index=fresh, id="b"),
        es.options(ignore_status=404).delete(index=fresh, id="b"),  # not found: a delete all the same
        es.update(index=fresh, id="a", doc={"n": 4}),
    ]
    assert [(t["_seq_no"], t["_primary_term"]) for t in taken] == [(i, 1) for i in range(6)]
    noop = es.update(index=fresh, id="a", doc={"n": 4})
    assert (noop["result"], noop["_seq_no"]) == ("noop", 5)
    got = es.get(index=fresh, id="a")
    assert (got["_seq_no"], got["_primary_term"], got["_version"]) == (5, 1, 3)
    items = es.bulk(index=fresh, operations=[{"index": {"_id": "c"}}, {"n": 5}, {"delete": {"_id": "a"}}])["items"]
    assert [next(iter(i.values()))["_seq_no"] for i in items] == [6, 7]
    es.indices.refresh(index=fresh)
    hits = es.search(index=fresh, seq_no_primary_term=True)["hits"]["hits"]
    assert [(h["_id"], h["_seq_no"], h["_primary_term"]) for h in hits] == [("c", 6, 1)]
    assert "_seq_no" not in es.search(index=fresh)["hits"]["hits"][0]


def test_if_seq_no_guards_every_write(es: Elasticsearch, fresh: str, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "leaves out the period Elasticsearch writes before 'but no document was found'")
    es.index(index=fresh, id="a", document={"n": 1})
    es.index(index=fresh, id="a", document={"n": 2})  # seq_no 1
    stale = {"if_seq_no": 0, "if_primary_term": 1}
    for write in (
        lambda: es.index(index=fresh, id="a", document={"n": 9}, **stale),
        lambda: es.update(index=fresh, id="a", doc={"n": 9}, **stale),
        lambda: es.delete(index=fresh, id="a", **stale),
    ):
        with pytest.raises(ConflictError) as caught:
            write()
        assert caught.value.body["error"]["type"] == "version_conflict_engine_exception"
        assert caught.value.body["error"]["reason"] == (
            "[a]: version conflict, required seqNo [0], primary term [1]. current document has seqNo [1] "
            "and primary term [1]"
        )
    with pytest.raises(ConflictError) as caught:
        es.index(index=fresh, id="missing", document={"n": 9}, **stale)
    assert caught.value.body["error"]["reason"] == (
        "[missing]: version conflict, required seqNo [0], primary term [1]. but no document was found"
    )
    item = es.bulk(index=fresh, operations=[{"delete": {"_id": "a", **stale}}])["items"][0]["delete"]
    assert (item["status"], item["error"]["type"]) == (409, "version_conflict_engine_exception")
    got = es.get(index=fresh, id="a")  # nothing changed
    assert (got["_source"], got["_seq_no"], got["_version"]) == ({"n": 2}, 1, 2)
    done = es.index(index=fresh, id="a", document={"n": 3}, if_seq_no=1, if_primary_term=1)
    assert (done["result"], done["_seq_no"]) == ("updated", 2)


def test_routing_is_kept_and_shown(es: Elasticsearch, fresh: str, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "leaves `_routing` out of search hits")
    es.index(index=fresh, id="a", document={"n": 1}, routing="r1", refresh=True)
    assert es.get(index=fresh, id="a", routing="r1")["_routing"] == "r1"
    assert es.search(index=fresh)["hits"]["hits"][0]["_routing"] == "r1"
    es.update(index=fresh, id="a", doc={"n": 2}, routing="r1")
    assert es.get(index=fresh, id="a", routing="r1")["_routing"] == "r1"
    es.update_by_query(index=fresh, refresh=True)
    assert es.get(index=fresh, id="a", routing="r1")["_routing"] == "r1"


def test_join_field_children_need_their_routing(es: Elasticsearch, leg: str) -> None:  # noqa: F811
    peer_differs(leg, "indexes a join child without its routing")
    name = f"join-{uuid.uuid4().hex[:10]}"
    relations = {"question_answer": {"type": "join", "relations": {"question": "answer"}}}
    es.indices.create(index=name, mappings={"properties": relations})
    try:
        assert es.indices.get_mapping(index=name)[name]["mappings"]["properties"] == relations
        es.index(index=name, id="1", document={"question_answer": "question"})
        with pytest.raises(BadRequestError) as caught:
            es.index(index=name, id="2", document={"question_answer": {"name": "answer", "parent": "1"}})
        assert "[routing] is missing for join field [question_answer]" in str(caught.value)
        es.index(index=name, id="2", document={"question_answer": {"name": "answer", "parent": "1"}}, routing="1")
        assert es.get(index=name, id="2", routing="1")["_routing"] == "1"
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def test_script_score_sigmoid_of_a_dot_product(es: Elasticsearch, leg: str) -> None:  # noqa: F811
    """elasticsearch-py's VectorStore scores DOT_PRODUCT this way: Painless's sigmoid(1, e, -x) is 1 / (1 + e^-x)."""
    peer_differs(leg, "cannot compile Painless's sigmoid (a script_exception)")
    name = f"sigmoid-{uuid.uuid4().hex[:10]}"
    es.indices.create(index=name, mappings={"properties": {"v": {"type": "dense_vector", "dims": 2}}})
    try:
        es.index(index=name, id="a", document={"v": [0.6, 0.8]})
        es.index(index=name, id="b", document={"v": [0.8, -0.6]}, refresh=True)
        source = "double value = dotProduct(params.q, 'v'); return sigmoid(1, Math.E, -value);"
        script = {"source": source, "params": {"q": [1.0, 0.0]}}
        hits = es.search(index=name, query={"script_score": {"query": {"match_all": {}}, "script": script}})
        found = [(h["_id"], h["_score"]) for h in hits["hits"]["hits"]]
        assert [doc_id for doc_id, _ in found] == ["b", "a"]
        assert [score for _, score in found] == pytest.approx([1 / (1 + np.exp(-0.8)), 1 / (1 + np.exp(-0.6))])
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


# --- dis_max over a knn clause ------------------------------------------------------------------


def test_dis_max_over_knn_and_a_word_query(es: Elasticsearch) -> None:  # noqa: F811
    """Elasticsearch's own REST test (search.vectors/140_knn_query_with_other_queries): the knn
    clause scores its similarity (l2_norm: 1 / (1 + d²)), the keyword match BM25 with the (k1 + 1)
    factor Elasticsearch keeps (idf alone here: ln 2), and dis_max the best plus tie_breaker × the rest."""
    name = f"dismax-{uuid.uuid4().hex[:10]}"
    vector = {"type": "dense_vector", "dims": 4, "similarity": "l2_norm", "index_options": {"type": "hnsw"}}
    es.indices.create(
        index=name,
        settings={"number_of_shards": 1},
        mappings={"dynamic": False, "properties": {"my_vector": vector, "my_name": {"type": "keyword"}}},
    )
    try:
        operations: list[dict] = []
        for i in range(1, 11):
            operations += [{"index": {"_id": str(i)}}, {"my_vector": [1, 1, 1, i], "my_name": f"v{2 - i % 2}"}]
        es.bulk(index=name, operations=operations, refresh=True)

        def dis_max(boost: float) -> list[tuple[str, float]]:
            knn = {"field": "my_vector", "query_vector": [1, 1, 1, 1], "num_candidates": 5, "boost": boost}
            query = {"dis_max": {"queries": [{"knn": knn}, {"match": {"my_name": "v2"}}], "tie_breaker": 0.8}}
            answer = es.search(index=name, query=query, size=10)
            assert answer["hits"]["total"]["value"] == 8  # 5 from knn, 3 more from the match
            return [(h["_id"], h["_score"]) for h in answer["hits"]["hits"]]

        ln2 = float(np.log(2))
        found = dis_max(1.0)
        assert [doc_id for doc_id, _ in found] == ["2", "1", "4", "6", "8", "10", "3", "5"]
        expected = [ln2 + 0.8 * 0.5, 1.0, ln2 + 0.8 * 0.1, ln2, ln2, ln2, 0.2, 1 / 17]
        assert [score for _, score in found] == pytest.approx(expected, rel=1e-5)
        boosted = dis_max(3.0)  # a clause's boost scales its score before dis_max picks the best
        assert boosted[:2] == [("1", pytest.approx(3.0, rel=1e-5)), ("2", pytest.approx(1.5 + 0.8 * ln2, rel=1e-5))]
    finally:
        es.options(ignore_status=404).indices.delete(index=name)
