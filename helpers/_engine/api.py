"""The REST subset the project uses, answered in process: (method, path, params, body) in,
(status, JSON body) out. Anything outside the subset is refused with a 400 that names the
feature, never guessed at."""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np
import orjson

from helpers._engine.errors import EsError, bad_request, invalid_index_name, parsing_error, unsupported
from helpers._engine.query import NUMERIC_TYPES, comparable, field_values
from helpers._engine.request import INDEX_OPTIONS, READ, SEARCH, WAITS, WRITE, check_params, json_object, resolve
from helpers._engine.search import keep_field, run_count, run_search, source_filter
from helpers._engine.store import IndexView, Store
from helpers._engine.text import ANALYZERS

VERSION = "8.19.0"
SHARDS = {"total": 1, "successful": 1, "failed": 0}
SIMILARITIES = {"cosine", "dot_product", "l2_norm", "max_inner_product"}
INDEX_OPTION_TYPES = {"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw", "flat", "int8_flat", "int4_flat", "bbq_flat"}
FIELD_TYPES = NUMERIC_TYPES | {"keyword", "text", "date", "boolean", "dense_vector", "object"}
ALLOWED_SETTINGS = {"number_of_shards", "number_of_replicas", "refresh_interval"}
INVALID_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:A-Z]')


def check_index_name(index: str) -> None:
    if not index or INVALID_INDEX_CHARS.search(index) or index[0] in "_-+" or index in (".", ".."):
        raise invalid_index_name(index)


def check_mappings(mappings: dict) -> None:
    unknown = set(mappings) - {"properties", "dynamic", "_meta"}
    if unknown:
        raise unsupported(f"mapping options {sorted(unknown)}")
    for name, spec in mappings.get("properties", {}).items():
        kind = spec.get("type", "object")
        if kind not in FIELD_TYPES:
            raise unsupported(f"fields of type [{kind}] (field [{name}])")
        if kind == "object":
            check_mappings({"properties": spec.get("properties", {})})
        if kind == "text" and spec.get("analyzer", "standard") not in ANALYZERS:
            raise unsupported(f"text analyzers other than {sorted(ANALYZERS)} (field [{name}])")
        if "fields" in spec:  # multi-fields: the same value indexed another way
            check_mappings({"properties": spec["fields"]})
        if kind != "dense_vector":
            continue
        dims = spec.get("dims")
        if not isinstance(dims, int) or not 1 <= dims <= 4096:
            raise bad_request(f"[dims] of dense_vector field [{name}] must be a number from 1 to 4096")
        if spec.get("similarity", "cosine") not in SIMILARITIES:
            raise bad_request(f"unknown similarity [{spec.get('similarity')}] for field [{name}]")
        if spec.get("element_type", "float") != "float" or spec.get("index") is False:
            raise unsupported(f"dense_vector field [{name}] with element_type or index other than float/true")
        options = spec.get("index_options", {}).get("type", "hnsw")
        if options not in INDEX_OPTION_TYPES:
            raise bad_request(f"unknown index_options type [{options}] for field [{name}]")


def create_index(store: Store, index: str, body: dict) -> tuple[int, dict]:
    check_index_name(index)
    if set(body) - {"mappings", "settings", "aliases"} or body.get("aliases"):
        raise unsupported(f"index creation options {sorted(set(body) - {'mappings', 'settings'})}")
    settings = body.get("settings", {})
    flat = {k.removeprefix("index."): v for k, v in {**settings.pop("index", {}), **settings}.items()}
    if set(flat) - ALLOWED_SETTINGS:
        raise unsupported(f"index settings {sorted(set(flat) - ALLOWED_SETTINGS)}")
    mappings = body.get("mappings", {})
    check_mappings(mappings)
    store.create_index(index, mappings)
    return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}


def split_document(view: IndexView, doc_id: str, source: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """Validate a document against the mapping; return its source without vectors, and them."""
    if not isinstance(source, dict):
        raise parsing_error("Malformed content, must start with an object")
    rest, vectors = {}, {}
    for key, value in source.items():
        column = view.columns.get(key)
        if column is None:
            kind = view.mappings.get("properties", {}).get(key, {}).get("type")
            if kind in NUMERIC_TYPES or kind == "date":
                try:
                    [comparable(v, kind) for v in field_values(source, key)]
                except EsError:
                    raise parsing_error(
                        f"failed to parse field [{key}] of type [{kind}] in document with id '{doc_id}'"
                    ) from None
            rest[key] = value
            continue
        try:
            vector = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise parsing_error(
                f"failed to parse field [{key}] of type [dense_vector]: expected an array of numbers"
            ) from None
        if vector.ndim != 1 or len(vector) != column.dims:
            raise parsing_error(
                f"The [dense_vector] field [{key}] in doc [document with id '{doc_id}'] has a different number of "
                f"dimensions [{vector.size}] than defined in the mapping [{column.dims}]"
            )
        if not np.all(np.isfinite(vector)):
            raise parsing_error(f"The [dense_vector] field [{key}] must contain only finite numbers")
        if column.similarity == "cosine" and not np.any(vector):
            raise parsing_error("The [cosine] similarity does not support vectors with zero magnitude.")
        vectors[key] = vector
    return rest, vectors


def parse_bulk(body: bytes, default_index: str | None) -> list[tuple[str, dict, bytes | None]]:
    """(action, metadata, raw source line) per item. A malformed action line fails the whole
    request, as on a cluster; a source line is parsed later, per item, so a bad one fails alone."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    actions, i = [], 0
    while i < len(lines):
        action_line = orjson.loads(lines[i])
        if not isinstance(action_line, dict) or len(action_line) != 1:
            raise bad_request(f"Malformed action/metadata line [{i + 1}], expected a single action")
        ((action, meta),) = action_line.items()
        if not isinstance(meta, dict):
            raise bad_request(f"Malformed action/metadata line [{i + 1}], expected START_OBJECT")
        if action == "delete":
            actions.append((action, meta, None))
            i += 1
            continue
        if i + 1 >= len(lines):
            raise bad_request(f"The bulk request must be terminated by a newline [{action}] without a source")
        actions.append((action, meta, lines[i + 1]))
        i += 2
    return [(a, {"_index": default_index, **meta}, s) for a, meta, s in actions]


def parse_source(raw: bytes | None) -> Any:
    try:
        return orjson.loads(raw or b"")
    except orjson.JSONDecodeError as error:
        raise parsing_error(f"failed to parse: {error}") from None


def bulk(store: Store, body: bytes, default_index: str | None) -> tuple[int, dict]:
    """Every item gets its own result; valid items of one index commit in one transaction."""
    items: list[dict] = []
    pending: dict[str, list[tuple[int, str, dict | None, dict | None]]] = {}
    present_after: dict[tuple[str, str], bool] = {}  # whether each id exists once the queued ops apply
    for action, meta, source in parse_bulk(body, default_index):
        index, doc_id = meta.get("_index"), meta.get("_id")
        item: dict[str, Any] = {"_index": index, "_id": doc_id}
        items.append({action: item})
        try:
            if action not in ("index", "create", "delete"):
                raise unsupported(f"the bulk action [{action}]")
            extra = set(meta) - {"_index", "_id"}
            if extra:
                raise unsupported(f"bulk metadata {sorted(extra)}")
            if not index:
                raise bad_request("index is missing")
            view = store.view(index)
            if doc_id is None:
                if action != "index":
                    raise bad_request(f"an id is required for a [{action}] operation")
                doc_id = item["_id"] = uuid.uuid4().hex
            exists = present_after.get((index, doc_id), doc_id in view.slot_of)
            if action == "create" and exists:
                raise EsError(
                    409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, document already exists"
                )
            if action == "delete":
                if not exists:
                    item.update(result="not_found", status=404, _version=1)
                    continue
                pending.setdefault(index, []).append((len(items) - 1, doc_id, None, None))
                present_after[(index, doc_id)] = False
            else:
                rest, vectors = split_document(view, doc_id, parse_source(source))
                pending.setdefault(index, []).append((len(items) - 1, doc_id, rest, vectors))
                present_after[(index, doc_id)] = True
                item["_exists"] = exists
        except EsError as error:
            item.update(status=error.status, error={"type": error.error_type, "reason": error.reason, **error.extra})
    for index, ops in pending.items():
        versions = store.write(index, [(doc_id, source, vectors) for _, doc_id, source, vectors in ops])
        for position, doc_id, source, _ in ops:
            item = next(iter(items[position].values()))
            existed = item.pop("_exists", True)
            if source is None:
                item.update(result="deleted", status=200, _version=1)
            else:
                item.update(result="updated" if existed else "created", status=200 if existed else 201)
                item["_version"] = versions[doc_id]
            item["_shards"] = SHARDS
    errors = any("error" in next(iter(item.values())) for item in items)
    return 200, {"took": 0, "errors": errors, "items": items}


def found_doc(store: Store, index: str, doc_id: str, source_spec: dict, params: dict) -> dict:
    """One document as `GET _doc` and `_mget` show it: `found: false` when it is not there."""
    view = store.view(index)
    base = {"_index": index, "_id": doc_id}
    if doc_id not in view.slot_of:
        return {**base, "found": False}
    fetch_source, includes, excludes = source_filter(source_spec, params)
    source, version = store.fetch(index, [doc_id], with_vectors=fetch_source)[doc_id]
    result = {**base, "_version": version, "found": True}
    if fetch_source:
        result["_source"] = {k: v for k, v in source.items() if keep_field(k, includes, excludes)}
    return result


def get_doc(store: Store, index: str, doc_id: str, params: dict) -> tuple[int, dict]:
    result = found_doc(store, index, doc_id, {}, params)
    return (200 if result["found"] else 404), result


def validation_failed(problems: list[str]) -> EsError:
    listed = "".join(f"{i}: {problem};" for i, problem in enumerate(problems, 1))
    return EsError(400, "action_request_validation_exception", f"Validation Failed: {listed}")


def mget(store: Store, default_index: str | None, body: dict, params: dict) -> tuple[int, dict]:
    """`_mget` in both forms (`docs: [{_index, _id, _source}]`, or `ids` with the index in the
    path). A missing document is `found: false`; a missing index fails only its own items."""
    unknown = set(body) - {"docs", "ids"}
    if unknown:
        raise unsupported(f"mget options {sorted(unknown)}")
    if "ids" in body:
        if not isinstance(body["ids"], list):
            raise bad_request("[ids] must be an array of document ids")
        requests = [{"_id": doc_id} for doc_id in body["ids"]]
    else:
        requests = body.get("docs", [])
        if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
            raise bad_request("[docs] must be an array of objects")
    problems = []
    for position, request in enumerate(requests):
        extra = set(request) - {"_index", "_id", "_source"}
        if extra:
            raise unsupported(f"mget document options {sorted(extra)}")
        if request.get("_id") is None:
            problems.append(f"id is missing for doc {position}")
        if request.get("_index", default_index) is None:
            problems.append(f"index is missing for doc {position}")
    if not requests:
        problems.append("no documents to get")
    if problems:
        raise validation_failed(problems)
    docs = []
    for request in requests:
        index, doc_id = request.get("_index", default_index), str(request["_id"])
        spec = {"_source": request["_source"]} if "_source" in request else {}
        try:
            docs.append(found_doc(store, index, doc_id, spec, params))
        except EsError as error:
            docs.append({"_index": index, "_id": doc_id, "error": error.body()["error"]})
    return 200, {"docs": docs}


def write_doc(store: Store, index: str, doc_id: str | None, body: Any, create: bool) -> tuple[int, dict]:
    action = "create" if create else "index"
    meta = {"_index": index} | ({"_id": doc_id} if doc_id else {})
    _, response = bulk(store, orjson.dumps({action: meta}) + b"\n" + orjson.dumps(body) + b"\n", index)
    item = response["items"][0][action]
    if "error" in item:
        raise EsError(item["status"], item["error"]["type"], item["error"]["reason"])
    return item["status"], {k: v for k, v in item.items() if k != "status"}


def delete_indices(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    """Wildcards and `_all` are refused, as `action.destructive_requires_name` (on by default
    since 8.0) refuses them on a cluster; missing names are an error unless ignore_unavailable."""
    for index in resolve(store.names(), expression, params, forbid_wildcards=True):
        store.delete_index(index)
    return 200, {"acknowledged": True}


def get_indices(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    answer = {}
    for index in resolve(store.names(), expression, params):
        view = store.view(index)
        settings = {"index": {"number_of_shards": "1", "number_of_replicas": "0", "uuid": view.uuid}}
        answer[index] = {"aliases": {}, "mappings": view.mappings, "settings": settings}
    return 200, answer


def index_exists(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    try:
        found = resolve(store.names(), expression, params, allow_no_indices=False)
    except EsError:
        return 404, {}
    return (200 if found else 404), {}


def get_mappings(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    names = resolve(store.names(), expression, params)
    return 200, {index: {"mappings": store.view(index).mappings} for index in names}


def housekeeping(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    """`_refresh`, `_flush` and `_forcemerge`: every acknowledged write is already durable and
    searchable here, so each answers for the indices it names once they are checked to exist."""
    names = resolve(store.names(), expression, params)
    shards = len(names)
    return 200, {"_shards": {"total": shards, "successful": shards, "failed": 0}}


def one_index(store: Store, expression: str, params: dict) -> IndexView:
    names = resolve(store.names(), expression, params)
    if len(names) != 1:
        raise unsupported(f"searching {len(names)} indices in one request (resolved from [{expression}])")
    return store.view(names[0])


def route(store: Store, method: str, parts: list[str], params: dict, body: bytes | None) -> tuple[int, dict]:
    """Dispatch one request by path shape: an optional index expression (`a,b*`, `_all`), then
    the API. Every endpoint checks its query-string parameters."""
    endpoint = f"{method} /{'/'.join(parts)}"
    named = bool(parts) and (parts[0] == "_all" or not parts[0].startswith("_"))
    target, api = (parts[0], parts[1:]) if named else ("", parts)
    if api == ["_bulk"] and method in ("POST", "PUT"):
        check_params(params, WRITE, endpoint)
        return bulk(store, body or b"", target or None)
    payload: Any = orjson.loads(body) if body else {}
    if not parts and method in ("GET", "HEAD"):
        check_params(params, set(), endpoint)
        return 200, {
            "name": "embedded",
            "cluster_name": "embedded (in-process stand-in, not a cluster)",
            "version": {"number": VERSION, "build_flavor": "embedded"},
            "tagline": "You Know, for Search",
        }
    if api == ["_mget"] and method in ("GET", "POST"):
        check_params(params, READ, endpoint)
        return mget(store, target or None, json_object(payload, "_mget"), params)
    if named and not api:
        if method == "PUT":
            check_params(params, WAITS, endpoint)
            return create_index(store, target, json_object(payload, "index creation"))
        if method == "HEAD":
            check_params(params, INDEX_OPTIONS | {"local", "master_timeout"}, endpoint)
            return index_exists(store, target, params)
        if method == "GET":
            check_params(params, INDEX_OPTIONS | {"local", "master_timeout"}, endpoint)
            return get_indices(store, target, params)
        if method == "DELETE":
            check_params(params, INDEX_OPTIONS | WAITS, endpoint)
            return delete_indices(store, target, params)
    if api == ["_mapping"] and method == "GET":
        check_params(params, INDEX_OPTIONS | {"local", "master_timeout"}, endpoint)
        return get_mappings(store, target, params)
    if api == ["_refresh"] and method in ("GET", "POST"):
        check_params(params, INDEX_OPTIONS, endpoint)
        return housekeeping(store, target, params)
    if named and len(api) == 1:
        op = api[0]
        if op == "_search" and method in ("GET", "POST"):
            check_params(params, SEARCH, endpoint)
            view = one_index(store, target, params)
            return 200, run_search(store, view, json_object(payload, "_search"), params)
        if op == "_count" and method in ("GET", "POST"):
            check_params(params, INDEX_OPTIONS | {"preference"}, endpoint)
            return 200, run_count(store, one_index(store, target, params), json_object(payload, "_count"))
        if op == "_doc" and method == "POST":
            check_params(params, WRITE | {"op_type"}, endpoint)
            return write_doc(store, target, None, payload, create=op_type(params) == "create")
    if named and len(api) == 2 and api[0] in ("_doc", "_create"):
        (op, doc_id), index = api, target
        if method in ("PUT", "POST"):
            check_params(params, WRITE | ({"op_type"} if op == "_doc" else set()), endpoint)
            return write_doc(store, index, doc_id, payload, create=op == "_create" or op_type(params) == "create")
        if op == "_doc" and method in ("GET", "HEAD"):
            check_params(params, READ, endpoint)
            return get_doc(store, index, doc_id, params)
        if op == "_doc" and method == "DELETE":
            check_params(params, WRITE, endpoint)
            view = store.view(index)
            if doc_id not in view.slot_of:
                return 404, {"_index": index, "_id": doc_id, "result": "not_found"}
            store.write(index, [(doc_id, None, None)])
            return 200, {"_index": index, "_id": doc_id, "result": "deleted", "_shards": SHARDS}
    raise unsupported(f"[{endpoint}]")


def op_type(params: dict) -> str:
    value = params.get("op_type", "index")
    if value not in ("index", "create"):
        raise bad_request(f"opType must be 'create' or 'index', found: [{value}]")
    return value


def handle(store: Store, method: str, path: str, params: dict, body: bytes | None) -> tuple[int, dict]:
    """Answer one request. Raises EsError for every refusal."""
    with store.lock:
        store.sync()
        return route(store, method, [p for p in path.split("/") if p], params, body)
