"""Partial updates: the body of `POST /{index}/_update/{id}` and of a bulk `update` action.

`doc` is merged into the stored source the way Elasticsearch merges it (objects recursively,
every other value replaced); `doc_as_upsert` and `upsert` create a missing document; an update
that changes nothing is a `noop` (`detect_noop`, on by default). Scripted updates are refused
by name."""

from __future__ import annotations

import copy
from typing import Any

from embedded_es.errors import EsError, bad_request, unsupported, validation_failed

UPDATE_KEYS = {"doc", "doc_as_upsert", "upsert", "detect_noop", "script", "scripted_upsert", "_source"}


def merge(target: dict, changes: dict) -> dict:
    """`changes` merged into a copy of `target`: objects merged key by key, all else replaced."""
    merged = copy.deepcopy(target)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def document_missing(index: str, doc_id: str) -> EsError:
    return EsError(404, "document_missing_exception", f"[{doc_id}]: document missing", index=index, shard="0")


def check(body: Any) -> dict:
    """The update body, checked: unknown keys fail as a cluster fails them, scripts are refused."""
    if not isinstance(body, dict):
        raise EsError(400, "x_content_parse_exception", "[UpdateRequest] failed to parse: expected an object")
    for key in body:
        if key not in UPDATE_KEYS:
            raise EsError(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] unknown field [{key}]")
    if "script" in body or body.get("scripted_upsert"):
        raise unsupported("the update option", "script", "scripted updates")
    if "_source" in body:
        raise unsupported("the update option", "_source", "returning the updated source")
    for key in ("doc", "upsert"):
        if key in body and not isinstance(body[key], dict):
            raise EsError(400, "x_content_parse_exception", f"[UpdateRequest] failed to parse field [{key}]")
    if "doc" not in body:
        raise validation_failed("script or doc is missing")
    if body.get("doc_as_upsert") and "upsert" in body:
        raise validation_failed("upsert requests don't support `doc_as_upsert` and `upsert` at the same time")
    for key in ("doc_as_upsert", "detect_noop"):
        if key in body and not isinstance(body[key], bool):
            raise bad_request(f"[UpdateRequest] [{key}] must be a boolean")
    return body


def updated_source(index: str, doc_id: str, body: dict, current: dict | None) -> tuple[dict, str]:
    """(the source to write, the result it gives: `created`, `updated` or `noop`)."""
    body = check(body)
    if current is None:
        if body.get("doc_as_upsert"):
            return copy.deepcopy(body["doc"]), "created"
        if "upsert" in body:
            return copy.deepcopy(body["upsert"]), "created"
        raise document_missing(index, doc_id)
    merged = merge(current, body["doc"])
    if body.get("detect_noop", True) and merged == current:
        return current, "noop"
    return merged, "updated"
