"""Documents: `_bulk`, `_doc`, `_create` and `_mget`. Writing to a missing index creates it,
as Elasticsearch does (`action.auto_create_index` defaults to true), and new fields are
mapped dynamically (see `mapping.py`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from embedded_es import aliases, concurrency, updates
from embedded_es.errors import EsError, bad_request, index_not_found, parsing_error, unsupported, validation_failed
from embedded_es.indices import SHARDS, auto_create_allowed, check_index_name
from embedded_es.mapping import DocumentMapper
from embedded_es.search import filter_source, source_filter
from embedded_es.store import PRIMARY_TERM, Store

MAX_ID_BYTES = 512
BULK_METADATA = {"_index", "_id", "op_type", "routing", "if_seq_no", "if_primary_term"}
# One process writes: an update never meets a concurrent one, so any retry count holds.
UPDATE_METADATA = {"retry_on_conflict"}
NOOP_SHARDS = {"total": 0, "successful": 0, "failed": 0}


def parse_bulk(body: bytes, default_index: str | None) -> list[tuple[str, dict, bytes | None]]:
    """(action, metadata, raw source line) per item. A malformed action line fails the whole
    request, as on a cluster; a source line is parsed later, per item, so a bad one fails alone."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    actions, i = [], 0
    while i < len(lines):
        action_line = orjson.loads(lines[i])
        if not isinstance(action_line, dict) or len(action_line) != 1:
            found = "END_OBJECT" if action_line == {} else "a value"
            raise bad_request(f"Malformed action/metadata line [{i + 1}], expected FIELD_NAME but found [{found}]")
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
    if not actions:
        raise validation_failed("no requests added")
    return [(a, {"_index": default_index, **meta}, s) for a, meta, s in actions]


def parse_source(raw: bytes | None) -> Any:
    try:
        return orjson.loads(raw or b"")
    except orjson.JSONDecodeError as error:
        raise parsing_error(f"failed to parse: {error}") from None


def check_id(doc_id: Any) -> str | None:
    if doc_id is None:
        return None
    doc_id = str(doc_id)
    if not doc_id:
        raise bad_request("if _id is specified it must not be empty")
    size = len(doc_id.encode())
    if size > MAX_ID_BYTES:
        raise bad_request(f"id [{doc_id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {size}")
    return doc_id


def ensure_index(store: Store, index: str) -> None:
    """Create a missing index with an empty mapping, as a cluster does on first write."""
    if not store.exists(index):
        check_index_name(index)
        auto_create_allowed(store, index)
        store.create_index(index, {})


@dataclass
class Pending:
    """One index's writes queued by a bulk request, committed together once every item is read."""

    base: int  # the sequence number the first of them takes
    ops: list[tuple[int, str, dict | None, dict | None]] = field(default_factory=list)
    routings: list[str | None] = field(default_factory=list)


def bulk(store: Store, body: bytes, default_index: str | None) -> tuple[int, dict]:
    """Every item gets its own result; valid items of one index commit in one transaction."""
    items: list[dict] = []
    pending: dict[str, Pending] = {}
    # What each id is once the queued ops apply: (seq_no, routing), or None when missing; a queued
    # op's seq_no is its place in the queue ("pending", position) until the write says the number.
    state: dict[tuple[str, str], tuple[int | tuple[str, int], str | None] | None] = {}
    latest: dict[tuple[str, str], dict] = {}  # the whole source each queued write leaves, for updates
    bumps: dict[tuple[str, str], int] = {}  # the version each id reaches as the queued ops apply
    alias_table = aliases.members(store)
    for action, meta, source in parse_bulk(body, default_index):
        if action == "index" and meta.get("op_type") == "create":
            action = "create"
        index = meta.get("_index")
        if index is not None and not isinstance(index, str):
            raise bad_request(f"Malformed action/metadata line: [_index] must be a string, got [{index}]")
        item: dict[str, Any] = {"_index": index, "_id": meta.get("_id")}
        items.append({action: item})
        try:
            if index:
                index = item["_index"] = aliases.write_index(store, index, alias_table)  # through an alias
            if action not in ("index", "create", "delete", "update"):
                raise unsupported("the bulk action", action)
            extra = set(meta) - BULK_METADATA - (UPDATE_METADATA if action == "update" else set())
            if extra:
                raise unsupported("the bulk metadata", sorted(extra)[0])
            if "op_type" in meta and meta["op_type"] not in ("index", "create"):
                raise bad_request(f"opType must be 'create' or 'index', found: [{meta['op_type']}]")
            if not index:
                raise validation_failed("index is missing")
            doc_id = check_id(meta.get("_id"))
            if doc_id is None:
                if action in ("delete", "update"):
                    raise validation_failed("id is missing")
                doc_id = uuid.uuid4().hex
            item["_id"] = doc_id
            update = parse_source(source) if action == "update" else None  # its upserts bar an expectation
            expected = concurrency.expectation(meta, action, update)  # checked before the index is created
            routing = None if meta.get("routing") is None else str(meta["routing"])
            if action == "delete" and not store.exists(index):
                raise index_not_found(index)
            ensure_index(store, index)
            document = update if action == "update" else parse_source(source) if action != "delete" else None
            view = store.view(index)
            queue = pending.get(index) or pending.setdefault(index, Pending(store.next_seq_no(index)))
            key = (index, doc_id)
            if key not in state:
                stored = store.meta(index, [doc_id]).get(doc_id)
                state[key] = (stored.seq_no, stored.routing) if stored else None
            now = state[key]
            current = None if now is None else (seq_value(now[0], queue), PRIMARY_TERM)
            if action == "create" and now is not None:
                raise EsError(
                    409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, document already exists"
                )
            if action != "update" or now is not None:  # an update of a missing document is missing, not a conflict
                concurrency.check(expected, doc_id, current, index, view.uuid)
            if action == "delete":
                item["_exists"] = now is not None
                item["_version"] = next_version(store, index, doc_id, bumps) if now is not None else 1
                item["_queued"] = item["_version"]
                queue.ops.append((len(items) - 1, doc_id, None, None))
                queue.routings.append(routing)
                state[key] = None
                continue
            if action == "update":
                previous = None
                if now is not None:
                    previous = latest.get(key) or store.fetch(index, [doc_id], True)[doc_id][0]
                    routing = routing if routing is not None else now[1]  # an update keeps the routing
                document, outcome = updates.updated_source(index, doc_id, document, previous)
                if outcome == "noop":
                    assert now is not None
                    version = bumps.get(key) or store.fetch(index, [doc_id], False)[doc_id][1]
                    item.update(result="noop", status=200, _version=version, _shards=NOOP_SHARDS)
                    item.update(_seq_no=now[0], _primary_term=PRIMARY_TERM)  # a queued seq_no is filled in below
                    continue
            rest, vectors, grown = DocumentMapper(view.mappings, doc_id, routing).read(document)
            if grown is not None:  # the mapping grows before the document is written, as on a cluster
                store.put_mappings(index, grown)
            queue.ops.append((len(items) - 1, doc_id, rest, vectors))
            queue.routings.append(routing)
            state[key] = (("pending", len(queue.ops) - 1), routing)
            latest[key] = document
            item["_queued"] = next_version(store, index, doc_id, bumps)
            item["_exists"] = now is not None
        except EsError as error:
            item.update(status=error.status, error={"type": error.error_type, "reason": error.reason, **error.extra})
    taken: dict[str, list[int]] = {}
    for index, queue in pending.items():
        if not queue.ops:
            continue
        seq_nos: list[int] = []
        ops = [(doc_id, source, vectors) for _, doc_id, source, vectors in queue.ops]
        versions = store.write(index, ops, queue.routings, seq_nos)
        taken[index] = seq_nos
        for (position, doc_id, source, _), seq_no in zip(queue.ops, seq_nos, strict=True):
            item = next(iter(items[position].values()))
            existed = item.pop("_exists", True)
            queued = item.pop("_queued")
            if source is None:
                item.update(result="deleted" if existed else "not_found", status=200 if existed else 404)
            else:
                item.update(result="updated" if existed else "created", status=200 if existed else 201)
                # the store's version when this was the id's last op; otherwise the version it had then
                item["_version"] = versions[doc_id] if queued == bumps[(index, doc_id)] else queued
            item.update(_shards=SHARDS, _seq_no=seq_no, _primary_term=PRIMARY_TERM)
    for entry in items:
        item = next(iter(entry.values()))
        item.pop("_exists", None)
        item.pop("_queued", None)
        if isinstance(item.get("_seq_no"), tuple):  # a noop after a queued op: that op's number
            item["_seq_no"] = taken[item["_index"]][item["_seq_no"][1]]
    errors = any("error" in next(iter(item.values())) for item in items)
    return 200, {"took": 0, "errors": errors, "items": items}


def seq_value(seq_no: int | tuple[str, int], queue: Pending) -> int:
    """A stored sequence number, or the one a queued op will take."""
    return seq_no if isinstance(seq_no, int) else queue.base + seq_no[1]


def next_version(store: Store, index: str, doc_id: str, bumps: dict[tuple[str, str], int]) -> int:
    """The version one more queued operation on this id gives it (the stored version, counted on)."""
    key = (index, doc_id)
    if key not in bumps:
        stored = store.fetch(index, [doc_id], False).get(doc_id)
        bumps[key] = stored[1] if stored else 0
    bumps[key] += 1
    return bumps[key]


# Query-string parameters of the single-document APIs that travel as bulk metadata.
ITEM_PARAMS = ("routing", "if_seq_no", "if_primary_term", "retry_on_conflict")


def write_doc(
    store: Store,
    index: str,
    doc_id: str | None,
    body: Any,
    create: bool,
    action: str | None = None,
    params: dict | None = None,
) -> tuple[int, dict]:
    """One document written through `_bulk`'s code: `_doc`, `_create`, `_update` (`action="update"`)
    and `DELETE _doc` (`action="delete"`)."""
    action = action or ("create" if create else "index")
    meta = {"_index": index} | ({"_id": doc_id} if doc_id is not None else {})
    meta |= {name: value for name, value in (params or {}).items() if name in ITEM_PARAMS}
    if action != "update":
        meta.pop("retry_on_conflict", None)
    lines = orjson.dumps({action: meta}) + b"\n" + (orjson.dumps(body) + b"\n" if action != "delete" else b"")
    _, response = bulk(store, lines, index)
    item = response["items"][0][action]
    if "error" in item:
        error = item["error"]
        raise EsError(
            item["status"],
            error["type"],
            error["reason"],
            **{k: v for k, v in error.items() if k not in ("type", "reason")},
        )
    return item["status"], {k: v for k, v in item.items() if k != "status"}


def delete_doc(store: Store, index: str, doc_id: str, params: dict) -> tuple[int, dict]:
    store.view(index)  # 404 for a missing index, never auto-created by a delete
    return write_doc(store, index, doc_id, None, False, "delete", params)


def found_doc(store: Store, index: str, doc_id: str, source_spec: dict, params: dict) -> dict:
    """One document as `GET _doc` and `_mget` show it: `found: false` when it is not there."""
    view = store.view(index)
    base = {"_index": index, "_id": doc_id}
    if doc_id not in view.slot_of:
        return {**base, "found": False}
    fetch_source, includes, excludes = source_filter(source_spec, params)
    source, _ = store.fetch(index, [doc_id], with_vectors=fetch_source)[doc_id]
    meta = store.meta(index, [doc_id])[doc_id]
    result = {**base, "_version": meta.version, "_seq_no": meta.seq_no, "_primary_term": PRIMARY_TERM, "found": True}
    if meta.routing is not None:
        result["_routing"] = meta.routing
    if fetch_source:
        result["_source"] = filter_source(source, includes, excludes)
    return result


def get_doc(store: Store, index: str, doc_id: str, params: dict) -> tuple[int, dict]:
    result = found_doc(store, index, doc_id, {}, params)
    return (200 if result["found"] else 404), result


def mget(store: Store, default_index: str | None, body: dict, params: dict) -> tuple[int, dict]:
    """`_mget` in both forms (`docs: [{_index, _id, _source}]`, or `ids` with the index in the
    path). A missing document is `found: false`; a missing index fails only its own items."""
    unknown = set(body) - {"docs", "ids"}
    if unknown:
        raise unsupported("the mget option", sorted(unknown)[0])
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
        extra = set(request) - {"_index", "_id", "_source", "routing"}
        if extra:
            raise unsupported("the mget option", sorted(extra)[0], "of a document")
        if request.get("_id") is None:
            problems.append(f"id is missing for doc {position}")
        if request.get("_index", default_index) is None:
            problems.append(f"index is missing for doc {position}")
    if not requests:
        problems.append("no documents to get")
    if problems:
        raise validation_failed(*problems)
    docs = []
    for request in requests:
        index, doc_id = request.get("_index", default_index), str(request["_id"])
        spec = {"_source": request["_source"]} if "_source" in request else {}
        try:
            docs.append(found_doc(store, index, doc_id, spec, params))
        except EsError as error:
            docs.append({"_index": index, "_id": doc_id, "error": error.body()["error"]})
    return 200, {"docs": docs}
