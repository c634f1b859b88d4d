"""Index administration: create, get, exists, delete, mappings (GET and PUT), settings,
housekeeping (`_refresh`, `_flush`, `_forcemerge`) and `_cluster/health`."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from embedded_es.errors import EsError, bad_request, invalid_index_name, unsupported
from embedded_es.mapping import check_mappings, merge
from embedded_es.request import flag, resolve
from embedded_es.store import Store

SHARDS = {"total": 1, "successful": 1, "failed": 0}
# Index settings the engine honours: one shard holds everything, one copy, and every write is
# searchable at once, so these cannot change an answer; any other setting is refused by name.
ALLOWED_SETTINGS = {"number_of_shards", "number_of_replicas", "refresh_interval"}
DEFAULT_SETTINGS = {"number_of_shards": "1", "number_of_replicas": "1"}
INVALID_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:]')
MAX_INDEX_NAME_BYTES = 255


def check_index_name(index: str) -> None:
    if not index or INVALID_INDEX_CHARS.search(index) or index[0] in "_-+" or index in (".", ".."):
        raise invalid_index_name(index)
    if index.lower() != index:
        raise EsError(
            400, "invalid_index_name_exception", f"Invalid index name [{index}], must be lowercase", index=index
        )
    if len(index.encode()) > MAX_INDEX_NAME_BYTES:
        raise EsError(
            400, "invalid_index_name_exception", f"Invalid index name [{index}], index name is too long", index=index
        )


def dotted(node: dict, prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat |= dotted(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def flat_settings(settings: Any) -> dict[str, str]:
    """`{"index": {"number_of_shards": 1}}`, `{"index.number_of_shards": 1}` and
    `{"number_of_shards": 1}` all as {"number_of_shards": "1"}."""
    if not isinstance(settings, dict):
        raise EsError(400, "settings_exception", f"Failed to load settings from [{settings}]")
    flat = {key.removeprefix("index."): value for key, value in dotted(settings).items()}
    # Always on since 8.0: only `true` is accepted, as on a cluster.
    if str(flat.pop("soft_deletes.enabled", "true")).lower() != "true":
        raise bad_request("Creating indices with soft-deletes disabled is no longer supported.")
    refused = sorted(set(flat) - ALLOWED_SETTINGS)
    if refused:
        raise unsupported("the index setting", f"index.{refused[0]}")
    for key in ("number_of_shards", "number_of_replicas"):
        if key in flat:
            value = str(flat[key])
            if not value.isdigit() or (key == "number_of_shards" and int(value) < 1):
                raise bad_request(f"Failed to parse value [{value}] for setting [index.{key}]")
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in flat.items()}


def create_index(store: Store, index: str, body: dict) -> tuple[int, dict]:
    check_index_name(index)
    if "aliases" in body:
        if not isinstance(body["aliases"], dict):
            raise EsError(
                400, "parse_exception", f"Failed to parse aliases: expected an object, got [{body['aliases']}]"
            )
        raise unsupported("the index creation option", "aliases")
    unknown = set(body) - {"mappings", "settings", "aliases"}
    if unknown:
        raise EsError(400, "parse_exception", f"unknown key [{sorted(unknown)[0]}] for create index")
    settings = flat_settings(body.get("settings", {}))
    mappings = check_mappings(body.get("mappings", {}))
    store.create_index(index, mappings, settings)
    return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}


def index_settings(store: Store, index: str) -> dict:
    settings = DEFAULT_SETTINGS | store.settings(index)
    return {"index": {**settings, "uuid": store.view(index).uuid, "provided_name": index}}


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
        answer[index] = {"aliases": {}, "mappings": view.mappings, "settings": index_settings(store, index)}
    return 200, answer


def get_settings(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    return 200, {
        index: {"settings": index_settings(store, index)} for index in resolve(store.names(), expression, params)
    }


def index_exists(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    try:
        found = resolve(store.names(), expression, params, allow_no_indices=False)
    except EsError:
        return 404, {}
    return (200 if found else 404), {}


def get_mappings(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    names = resolve(store.names(), expression, params)
    return 200, {index: {"mappings": store.view(index).mappings} for index in names}


def put_mappings(store: Store, expression: str, body: dict, params: dict) -> tuple[int, dict]:
    names = resolve(store.names(), expression, params)
    merged = {index: merge(store.view(index).mappings, body) for index in names}  # all checked before any change
    for index, mappings in merged.items():
        store.put_mappings(index, mappings)
    return 200, {"acknowledged": True}


def housekeeping(store: Store, expression: str, params: dict, api: str) -> tuple[int, dict]:
    """`_refresh`, `_flush` and `_forcemerge`: every acknowledged write is already durable and
    searchable here; a refresh or flush adds the writes since to the kNN graphs now rather
    than at the next kNN search."""
    if api == "_forcemerge":
        max_segments = params.get("max_num_segments")
        if max_segments is not None and (not max_segments.lstrip("-").isdigit() or int(max_segments) < -1):
            raise bad_request(f"[max_num_segments] must be a number, got [{max_segments}]")
        flag(params, "only_expunge_deletes", False)
        if not flag(params, "wait_for_completion", True):
            raise unsupported("the parameter", "wait_for_completion", "false: the engine runs no background tasks")
    if api == "_flush":
        flag(params, "force", False)
        flag(params, "wait_if_ongoing", True)
    names = resolve(store.names(), expression, params)
    if api in ("_refresh", "_flush"):  # the kNN graphs take in the writes since (and are saved)
        for name in names:
            store.refresh(name)
    shards = len(names)
    return 200, {"_shards": {"total": shards, "successful": shards, "failed": 0}}


CLUSTER_SETTINGS = {"action.auto_create_index"}


def flat_cluster_settings(section: Any) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise bad_request(f"cluster settings must be an object, got [{section}]")
    return dotted(section)


def put_cluster_settings(store: Store, body: dict) -> tuple[int, dict]:
    """`PUT _cluster/settings`: `action.auto_create_index` only (persistent and transient are
    one here: the engine is one process's store); any other setting is refused by name."""
    unknown = set(body) - {"persistent", "transient"}
    if unknown:
        raise bad_request(f"request body of PUT _cluster/settings does not support [{sorted(unknown)[0]}]")
    answer: dict[str, dict] = {"persistent": {}, "transient": {}}
    changes: dict[str, str | None] = {}
    for section in ("persistent", "transient"):
        for name, value in flat_cluster_settings(body.get(section, {})).items():
            if name not in CLUSTER_SETTINGS:
                raise unsupported("the cluster setting", name)
            if value is not None and not isinstance(value, (str, bool)):
                raise bad_request(f"[{name}] takes true, false or a list of index patterns, got [{value}]")
            changes[name] = None if value is None else str(value).lower() if isinstance(value, bool) else value
            if value is not None:
                answer[section][name] = changes[name]
    store.put_cluster_settings(changes)
    return 200, {"acknowledged": True, **answer}


def get_cluster_settings(store: Store) -> tuple[int, dict]:
    return 200, {"persistent": store.cluster_settings(), "transient": {}}


def auto_create_allowed(store: Store, index: str) -> None:
    """`action.auto_create_index`: true (the default), false, or patterns like `+logs-*,-tmp*`
    (the first that matches decides; none matching refuses)."""
    rule = store.cluster_settings().get("action.auto_create_index", "true")
    if rule == "true":
        return
    if rule == "false":
        raise EsError(
            404,
            "index_not_found_exception",
            f"no such index [{index}] and [action.auto_create_index] is [false]",
            index=index,
        )
    for pattern in (p.strip() for p in rule.split(",") if p.strip()):
        allowed = not pattern.startswith("-")
        if fnmatch.fnmatchcase(index, pattern.lstrip("+-")):
            if allowed:
                return
            break
    raise EsError(
        404,
        "index_not_found_exception",
        f"no such index [{index}] and [action.auto_create_index] ([{rule}]) doesn't match",
        index=index,
    )


def cluster_health(store: Store, expression: str, params: dict) -> tuple[int, dict]:
    """One node, one copy of each shard, nothing ever relocating: green as soon as asked.
    `wait_for_*` conditions that this state meets are honoured at once; others are refused."""
    names = resolve(store.names(), expression, params) if expression else store.names()
    wanted = params.get("wait_for_status")
    if wanted is not None and wanted not in ("green", "yellow", "red"):
        raise bad_request(f"unknown cluster health status [{wanted}]")
    nodes = params.get("wait_for_nodes")
    if nodes is not None and nodes.lstrip("<>=") not in ("1", ""):
        raise unsupported("the parameter", "wait_for_nodes", f"other than one node, got [{nodes}]")
    level = params.get("level", "cluster")
    if level != "cluster":
        raise unsupported("the parameter", "level", f"other than [cluster], got [{level}]")
    return 200, {
        "cluster_name": "embedded",
        "status": "green",
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": len(names),
        "active_shards": len(names),
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": 0,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0,
    }
