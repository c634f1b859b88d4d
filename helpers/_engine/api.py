"""The REST surface the engine answers, in process: (method, path, params, body) in,
(status, JSON body) out. Routing only: each endpoint checks its query-string parameters
(`request.py`) and hands over to index administration (`indices.py`), documents
(`documents.py`) or search (`search.py`). Anything else is refused with a 400 that names it."""

from __future__ import annotations

from typing import Any

import orjson

from helpers._engine import documents, indices
from helpers._engine.errors import EsError, bad_request, unsupported
from helpers._engine.request import INDEX_OPTIONS, READ, SEARCH, WAITS, WRITE, check_params, json_object, resolve
from helpers._engine.search import run_count, run_search
from helpers._engine.store import Store

VERSION = "8.19.0"
# What `route` answers (the README's table lists these).
ENDPOINTS = [
    "GET /",
    "PUT /{index}",
    "GET|HEAD|DELETE /{index}",
    "GET /{index}/_mapping",
    "PUT|POST /{index}/_mapping",
    "GET /{index}/_settings",
    "GET|POST /{index}/_refresh, _flush, _forcemerge",
    "GET /_cluster/health[/{index}]",
    "GET|PUT /_cluster/settings (action.auto_create_index)",
    "POST|PUT [/{index}]/_bulk",
    "PUT|POST /{index}/_doc/{id}, /{index}/_create/{id}",
    "POST /{index}/_doc",
    "GET|HEAD|DELETE /{index}/_doc/{id}",
    "GET|POST [/{index}]/_mget",
    "GET|POST [/{index}]/_search",
    "GET|POST [/{index}]/_count",
]
INDEX_READ = INDEX_OPTIONS | {"local", "master_timeout"}
HOUSEKEEPING = {
    "_refresh": INDEX_OPTIONS,
    "_flush": INDEX_OPTIONS | {"force", "wait_if_ongoing"},
    "_forcemerge": INDEX_OPTIONS | {"max_num_segments", "only_expunge_deletes", "flush", "wait_for_completion"},
}
HEALTH = INDEX_OPTIONS | {"level", "local", "master_timeout", "timeout", "wait_for_status", "wait_for_nodes"}
HEALTH |= {"wait_for_events", "wait_for_no_relocating_shards", "wait_for_no_initializing_shards"}
HEALTH |= {"wait_for_active_shards"}


def info() -> dict:
    return {
        "name": "embedded",
        "cluster_name": "embedded (in-process stand-in, not a cluster)",
        "version": {"number": VERSION, "build_flavor": "embedded"},
        "tagline": "You Know, for Search",
    }


def search_targets(store: Store, expression: str, params: dict) -> list:
    """The indices a search or count reads: `POST /_search` reads every index."""
    return [store.view(name) for name in resolve(store.names(), expression, params)]


def op_type(params: dict) -> str:
    value = params.get("op_type", "index")
    if value not in ("index", "create"):
        raise bad_request(f"opType must be 'create' or 'index', found: [{value}]")
    return value


def route(store: Store, method: str, parts: list[str], params: dict, body: bytes | None) -> tuple[int, dict]:
    """Dispatch one request by path shape: an optional index expression (`a,b*`, `_all`), then
    the API. Every endpoint checks its query-string parameters."""
    endpoint = f"{method} /{'/'.join(parts)}"
    named = bool(parts) and (parts[0] == "_all" or not parts[0].startswith("_"))
    target, api = (parts[0], parts[1:]) if named else ("", parts)
    if api == ["_bulk"] and method in ("POST", "PUT"):
        check_params(params, WRITE, endpoint)
        return documents.bulk(store, body or b"", target or None)
    payload: Any = orjson.loads(body) if body else {}
    if not parts and method in ("GET", "HEAD"):
        check_params(params, set(), endpoint)
        return 200, info()
    if api == ["_mget"] and method in ("GET", "POST"):
        check_params(params, READ, endpoint)
        return documents.mget(store, target or None, json_object(payload, "_mget"), params)
    if api == ["_search"] and method in ("GET", "POST"):
        check_params(params, SEARCH, endpoint)
        views = search_targets(store, target, params)
        return 200, run_search(store, views, json_object(payload, "_search"), params)
    if api == ["_count"] and method in ("GET", "POST"):
        check_params(params, INDEX_OPTIONS | {"preference"}, endpoint)
        return 200, run_count(store, search_targets(store, target, params), json_object(payload, "_count"))
    if len(api) == 1 and api[0] in HOUSEKEEPING and method in ("GET", "POST"):
        check_params(params, HOUSEKEEPING[api[0]], endpoint)
        return indices.housekeeping(store, target, params, api[0])
    if api == ["_mapping"] and method == "GET":
        check_params(params, INDEX_READ, endpoint)
        return indices.get_mappings(store, target, params)
    if api == ["_mapping"] and method in ("PUT", "POST") and named:
        check_params(params, INDEX_OPTIONS | WAITS | {"write_index_only"}, endpoint)
        if params.get("write_index_only") == "true":
            raise unsupported("the parameter", "write_index_only", "it concerns aliases")
        return indices.put_mappings(store, target, json_object(payload, "PUT _mapping"), params)
    if api == ["_settings"] and method == "GET":
        check_params(params, INDEX_READ, endpoint)
        return indices.get_settings(store, target, params)
    if parts == ["_cluster", "settings"] and method in ("GET", "PUT"):
        check_params(params, {"master_timeout", "timeout"}, endpoint)
        if method == "GET":
            return indices.get_cluster_settings(store)
        return indices.put_cluster_settings(store, json_object(payload, "PUT _cluster/settings"))
    if parts[:2] == ["_cluster", "health"] and len(parts) <= 3 and method == "GET":
        check_params(params, HEALTH, endpoint)
        return indices.cluster_health(store, parts[2] if len(parts) == 3 else "", params)
    if named and not api:
        if method == "PUT":
            check_params(params, WAITS, endpoint)
            return indices.create_index(store, target, json_object(payload, "index creation"))
        if method == "HEAD":
            check_params(params, INDEX_READ, endpoint)
            return indices.index_exists(store, target, params)
        if method == "GET":
            check_params(params, INDEX_READ, endpoint)
            return indices.get_indices(store, target, params)
        if method == "DELETE":
            check_params(params, INDEX_OPTIONS | WAITS, endpoint)
            return indices.delete_indices(store, target, params)
    if named and api == ["_doc"] and method == "POST":
        check_params(params, WRITE | {"op_type"}, endpoint)
        return documents.write_doc(store, target, None, payload, create=op_type(params) == "create")
    if named and len(api) == 2 and api[0] in ("_doc", "_create"):
        (op, doc_id), index = api, target
        if method in ("PUT", "POST"):
            check_params(params, WRITE | ({"op_type"} if op == "_doc" else set()), endpoint)
            return documents.write_doc(
                store, index, doc_id, payload, create=op == "_create" or op_type(params) == "create"
            )
        if op == "_doc" and method in ("GET", "HEAD"):
            check_params(params, READ, endpoint)
            return documents.get_doc(store, index, doc_id, params)
        if op == "_doc" and method == "DELETE":
            check_params(params, WRITE, endpoint)
            return documents.delete_doc(store, index, doc_id)
    raise unsupported("the endpoint", endpoint)


def handle(store: Store, method: str, path: str, params: dict, body: bytes | None) -> tuple[int, dict]:
    """Answer one request. Raises EsError for every refusal."""
    with store.lock:
        store.sync()
        store.written.clear()
        try:
            answer = route(store, method, [p for p in path.split("/") if p], params, body)
            if method != "GET" and params.get("refresh") in ("", "true", "wait_for"):
                for index in sorted(i for i in store.written if store.exists(i)):  # documents join the graphs now
                    store.refresh(index)
            return answer
        except orjson.JSONDecodeError as error:
            raise EsError(400, "parse_exception", f"request body is not valid JSON: {error}") from None
