"""`_delete_by_query` and `_update_by_query` without scripts: the documents a query matches,
deleted, or written again unchanged (which picks up mapping changes, the reason to run an
update by query without a script). Both run to completion before they answer; scripts and
background tasks are refused by name. The response has Elasticsearch's fields."""

from __future__ import annotations

import math
import time

import orjson

from embedded_es import documents
from embedded_es.errors import EsError, bad_request, unsupported
from embedded_es.request import INDEX_OPTIONS, WAITS
from embedded_es.search import run_search
from embedded_es.store import Store

BATCH = 1000  # Elasticsearch's default scroll_size: the response counts batches of it
PARAMS = INDEX_OPTIONS | WAITS | {"refresh", "conflicts", "scroll_size", "max_docs", "q", "wait_for_completion"}
PARAMS |= {"scroll", "search_type", "slices", "requests_per_second", "preference", "search_timeout"}
BODY_KEYS = {"query", "max_docs", "conflicts"}


def whole(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise bad_request(f"Failed to parse int parameter [{name}] with value [{value}]") from None
    return number


def by_query(store: Store, api: str, views: list, body: dict, params: dict) -> dict:
    started = time.perf_counter()
    for key in body:
        if key == "script":
            raise unsupported("the update option", "script", f"in {api}")
        if key not in BODY_KEYS:
            raise EsError(400, "parsing_exception", f"Unknown key for a START_OBJECT in [{key}].")
    if params.get("wait_for_completion") == "false":
        raise unsupported("the parameter", "wait_for_completion", "false: background tasks")
    if params.get("slices", "1") not in ("1", "auto"):
        raise unsupported("the parameter", "slices", "one process answers, in one slice")
    conflicts = body.get("conflicts", params.get("conflicts", "abort"))
    if conflicts not in ("abort", "proceed"):
        raise bad_request(f'conflicts may only be "proceed" or "abort" but was [{conflicts}]')
    batch = whole(params.get("scroll_size", BATCH), "scroll_size")
    limit = body.get("max_docs", params.get("max_docs"))
    query = {"query": body.get("query", {"match_all": {}})}
    query |= {"size": sum(v.count for v in views), "_source": False, "track_total_hits": True, "sort": ["_doc"]}
    hits = run_search(store, views, query, {})["hits"]["hits"]
    if limit is not None:
        hits = hits[: whole(limit, "max_docs")]
    done = 0
    for index in dict.fromkeys(hit["_index"] for hit in hits):
        ids = [hit["_id"] for hit in hits if hit["_index"] == index]
        if api == "_delete_by_query":
            store.write(index, [(doc_id, None, None) for doc_id in ids])
        else:
            for start in range(0, len(ids), batch):
                fetched = store.fetch(index, ids[start : start + batch], with_vectors=True)
                routings = {i: m.routing for i, m in store.meta(index, list(fetched)).items()}  # kept, as on a cluster
                lines = b"".join(
                    orjson.dumps({"index": {"_index": index, "_id": i} | routed(routings[i])})
                    + b"\n"
                    + orjson.dumps(fetched[i][0])
                    + b"\n"
                    for i in fetched
                )
                documents.bulk(store, lines, index)
        done += len(ids)
    answer = {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "total": len(hits),
        "deleted" if api == "_delete_by_query" else "updated": done,
        "batches": math.ceil(len(hits) / batch),
        "version_conflicts": 0,
        "noops": 0,
        "retries": {"bulk": 0, "search": 0},
        "throttled_millis": 0,
        "requests_per_second": -1.0,
        "throttled_until_millis": 0,
        "failures": [],
    }
    if api == "_update_by_query":
        answer["deleted"] = 0
    return answer


def routed(routing: str | None) -> dict:
    return {} if routing is None else {"routing": routing}
