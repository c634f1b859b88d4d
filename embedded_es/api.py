"""The REST surface the engine answers, in process: (method, path, params, body) in,
(status, JSON body) out. Routing only: each endpoint checks its query-string parameters
(`request.py`) and hands over to index administration (`indices.py`), documents
(`documents.py`) or search (`search.py`). Anything else is refused with a 400 that names it."""

from __future__ import annotations

from typing import Any

import orjson

from embedded_es import aliases, by_query, documents, indices, msearch, pit, scroll
from embedded_es.errors import EsError, bad_request, index_not_found, unsupported
from embedded_es.request import (
    DOC_WRITE,
    INDEX_OPTIONS,
    READ,
    SEARCH,
    WAITS,
    WRITE,
    check_params,
    json_object,
    resolve,
)
from embedded_es.retrievers import run_retriever
from embedded_es.search import run_count, run_search
from embedded_es.store import Store

VERSION = "8.19.0"
# What `route` answers (the table in docs/engine.md lists these).
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
    "POST /{index}/_update/{id} (doc, doc_as_upsert, upsert)",
    "POST /{index}/_delete_by_query, _update_by_query (no script)",
    "GET|POST [/{index}]/_mget",
    "GET|POST [/{index}]/_search",
    "GET|POST [/{index}]/_count",
    "GET|POST [/{index}]/_msearch (NDJSON)",
    "GET|POST /_search/scroll[/{scroll_id}]",
    "POST /{index}/_pit, DELETE /_pit, and `pit` in a search body",
    "POST /_aliases (add, remove, remove_index)",
    "GET|HEAD [/{index}]/_alias[/{name}]",
    "PUT|POST|DELETE /{index}/_alias[es]/{name}",
    "DELETE /_search/scroll[/{scroll_id}]",
    "GET /_data_stream/{name} (none exist here)",
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
MSEARCH = {"rest_total_hits_as_int", "typed_keys", "max_concurrent_searches", "search_type", "ccs_minimize_roundtrips"}
MSEARCH |= {"max_concurrent_shard_requests", "pre_filter_shard_size"} | INDEX_OPTIONS


def info() -> dict:
    return {
        "name": "embedded",
        "cluster_name": "embedded (in-process stand-in, not a cluster)",
        "version": {"number": VERSION, "build_flavor": "embedded"},
        "tagline": "You Know, for Search",
    }


def search_targets(store: Store, expression: str, params: dict) -> list:
    """The indices a search or count reads (aliases resolved): `POST /_search` reads every index."""
    return [store.view(name) for name in resolve(store.names(), aliases.expand(store, expression), params)]


def with_q(body: dict, params: dict) -> dict:
    """The `q` parameter in its simplest Lucene form, `field:value` (one term), as the match
    query it amounts to; any other query-string syntax is refused by name."""
    q = params.pop("q", None)
    if q is None:
        return body
    field, sep, value = q.partition(":")
    if not sep or not field or not value or any(c in q for c in ' "*?~^()[]{}\\/+-!&|') or ":" in value:
        raise unsupported("the parameter", "q", f"only the form field:term is answered, got [{q}]")
    if "query" in body:
        raise bad_request("request [_search] contains unrecognized parameter: [q]")
    return {**body, "query": {"match": {field: value}}}


def one_search(store: Store, target: str, body: dict, params: dict) -> dict:
    """One search, as `_search` or one line of `_msearch` asks it: through a point in time, a
    retriever, a scroll, or the plain form."""
    if "pit" in body:
        if "scroll" in params:
            raise bad_request("using [point in time] is not allowed in a scroll context")
        return pit.search(store, target, body, params)
    views = search_targets(store, target, params)
    if "retriever" in body:
        if "scroll" in params:
            raise bad_request("cannot specify [retriever] and [scroll]")
        return run_retriever(store, views, body, params)
    if "scroll" in params:
        return scroll.start(store, views, body, params)
    return run_search(store, views, body, params)


def terminate_after(value: str) -> int:
    try:
        cap = int(value)
    except ValueError:
        raise bad_request(f"Failed to parse int parameter [terminate_after] with value [{value}]") from None
    if cap < 0:
        raise bad_request("terminateAfter must be > 0")
    return cap


def count_terminated(store: Store, views: list, body: dict, cap: int) -> dict:
    """`_count?terminate_after=N`: each index (one shard here) stops counting at N, and the
    answer says it terminated early when one did."""
    counts = [run_count(store, [view], body)["count"] for view in views]
    answer = run_count(store, [], body)
    answer["count"] = sum(min(c, cap) for c in counts)
    answer["_shards"] = {**answer["_shards"], "total": len(views), "successful": len(views)}
    if any(c >= cap for c in counts):
        answer["terminated_early"] = True
    return answer


def alias_route(
    store: Store, method: str, target: str, api: list[str], params: dict, payload: Any, endpoint: str
) -> tuple[int, dict]:
    name = api[1] if len(api) == 2 else None
    if not target and api == ["_aliases"] and method == "POST":
        check_params(params, WAITS, endpoint)
        return aliases.apply(store, json_object(payload, "_aliases").get("actions"))
    if method in ("GET", "HEAD") and api[0] == "_alias":
        check_params(params, INDEX_READ, endpoint)
        status, answer = aliases.get(store, target, name, params)
        return status, answer
    if method in ("PUT", "POST") and target and name:
        check_params(params, WAITS, endpoint)
        return aliases.put(store, target, name, json_object(payload, "PUT _alias"))
    if method == "DELETE" and target and name:
        check_params(params, WAITS, endpoint)
        return aliases.delete(store, target, name)
    raise unsupported("the endpoint", endpoint)


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
    if api == ["_msearch"] and method in ("GET", "POST"):
        check_params(params, MSEARCH, endpoint)
        return msearch.msearch(
            body or b"", target, params, lambda index, request, options: one_search(store, index, request, options)
        )
    payload: Any = orjson.loads(body) if body else {}
    if not parts and method in ("GET", "HEAD"):
        check_params(params, set(), endpoint)
        return 200, info()
    if api == ["_mget"] and method in ("GET", "POST"):
        check_params(params, READ, endpoint)
        return documents.mget(store, target or None, json_object(payload, "_mget"), params)
    if api[:2] == ["_search", "scroll"] and len(api) <= 3 and not named:
        path_id = api[2] if len(api) == 3 else None
        if method in ("GET", "POST"):
            check_params(params, {"scroll", "scroll_id", "rest_total_hits_as_int"}, endpoint)
            request = json_object(payload, "_search/scroll") | ({"scroll_id": path_id} if path_id else {})
            return 200, scroll.scroll(store, request, params)
        if method == "DELETE":
            check_params(params, set(), endpoint)
            return scroll.clear(store, json_object(payload, "clear scroll"), path_id)
    if api == ["_search"] and method in ("GET", "POST"):
        check_params(params, SEARCH | {"scroll", "q"}, endpoint)
        return 200, one_search(store, target, with_q(json_object(payload, "_search"), params), params)
    if api == ["_count"] and method in ("GET", "POST"):
        check_params(params, INDEX_OPTIONS | {"preference", "q", "terminate_after"}, endpoint)
        body = with_q(json_object(payload, "_count"), params)
        cap = terminate_after(params.get("terminate_after", "0"))  # checked before the indices, as on a cluster
        views = search_targets(store, target, params)
        return 200, run_count(store, views, body) if cap == 0 else count_terminated(store, views, body, cap)
    if named and len(api) == 1 and api[0] in ("_delete_by_query", "_update_by_query") and method == "POST":
        check_params(params, by_query.PARAMS, endpoint)
        body = with_q(json_object(payload, api[0]), params)
        return 200, by_query.by_query(store, api[0], search_targets(store, target, params), body, params)
    alias_api = (
        api[:1] in (["_alias"], ["_aliases"]) and len(api) <= 2 and (named or api[0] == "_alias" or method == "POST")
    )
    if alias_api:
        return alias_route(store, method, target, api, params, payload, endpoint)
    if named and api == ["_pit"] and method == "POST":
        check_params(params, INDEX_OPTIONS | {"keep_alive", "preference", "allow_partial_search_results"}, endpoint)
        return 200, pit.open_pit(store, target, params)
    if parts == ["_pit"] and method == "DELETE":
        check_params(params, set(), endpoint)
        return pit.close_pit(store, json_object(payload, "DELETE _pit"))
    if parts[:1] == ["_data_stream"] and len(parts) == 2 and method == "GET":
        check_params(params, {"expand_wildcards", "include_defaults", "master_timeout", "verbose"}, endpoint)
        if any(c in parts[1] for c in "*?") or parts[1] == "_all":
            return 200, {"data_streams": []}  # the engine has no data streams (creating one is refused)
        raise index_not_found(parts[1].split(",")[0])
    if len(api) == 1 and api[0] in HOUSEKEEPING and method in ("GET", "POST"):
        check_params(params, HOUSEKEEPING[api[0]], endpoint)
        return indices.housekeeping(store, aliases.expand(store, target), params, api[0])
    if api == ["_mapping"] and method == "GET":
        check_params(params, INDEX_READ, endpoint)
        return indices.get_mappings(store, aliases.expand(store, target), params)
    if api == ["_mapping"] and method in ("PUT", "POST") and named:
        check_params(params, INDEX_OPTIONS | WAITS | {"write_index_only"}, endpoint)
        if params.get("write_index_only") == "true":
            raise unsupported("the parameter", "write_index_only", "it concerns aliases")
        return indices.put_mappings(store, target, json_object(payload, "PUT _mapping"), params)
    if api == ["_settings"] and method == "GET":
        check_params(params, INDEX_READ, endpoint)
        return indices.get_settings(store, aliases.expand(store, target), params)
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
            aliases.refuse_index_named_as_alias(store, target)
            return indices.create_index(store, target, json_object(payload, "index creation"))
        if method == "HEAD":
            check_params(params, INDEX_READ, endpoint)
            return indices.index_exists(store, aliases.expand(store, target), params)
        if method == "GET":
            check_params(params, INDEX_READ, endpoint)
            status, answer = indices.get_indices(store, aliases.expand(store, target), params)
            for index, about in answer.items():
                about["aliases"] = aliases.aliases_of(store, index)
            return status, answer
        if method == "DELETE":
            check_params(params, INDEX_OPTIONS | WAITS, endpoint)
            if any(part in aliases.members(store) for part in target.split(",")):
                raise bad_request(
                    f"The provided expression [{target}] matches an alias, specify the corresponding concrete "
                    "indices instead."
                )
            answer = indices.delete_indices(store, target, params)
            aliases.forget_missing(store)
            return answer
    if named and api == ["_doc"] and method == "POST":
        check_params(params, DOC_WRITE | {"op_type"}, endpoint)
        index = aliases.write_index(store, target)
        return documents.write_doc(store, index, None, payload, op_type(params) == "create", params=params)
    if named and len(api) == 2 and api[0] == "_update" and method == "POST":
        check_params(params, DOC_WRITE | {"retry_on_conflict"}, endpoint)
        index = aliases.write_index(store, target)
        return documents.write_doc(store, index, api[1], payload, False, "update", params)
    if named and len(api) == 2 and api[0] in ("_doc", "_create"):
        (op, doc_id), index = api, target
        index = aliases.write_index(store, target) if method != "GET" and method != "HEAD" else index
        if method in ("GET", "HEAD"):
            index = aliases.single_index(store, target)
        if method in ("PUT", "POST"):
            check_params(params, DOC_WRITE | ({"op_type"} if op == "_doc" else set()), endpoint)
            create = op == "_create" or op_type(params) == "create"
            return documents.write_doc(store, index, doc_id, payload, create, params=params)
        if op == "_doc" and method in ("GET", "HEAD"):
            check_params(params, READ, endpoint)
            return documents.get_doc(store, index, doc_id, params)
        if op == "_doc" and method == "DELETE":
            check_params(params, DOC_WRITE, endpoint)
            return documents.delete_doc(store, index, doc_id, params)
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
