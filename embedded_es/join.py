"""The `join` field type: parent/child relations declared in a mapping and named in documents.

The mapping and each document's relation are checked as Elasticsearch checks them (a child names
its parent and comes with a routing), and stored as written. Nothing here answers parent/child
queries (`has_child`, `has_parent`, `parent_id`): the engine refuses those by name."""

from __future__ import annotations

from typing import Any

from embedded_es.errors import EsError, parsing_error

PARAMETERS = {"relations", "eager_global_ordinals"}


def check_mapping(path: str, spec: dict, mapper_error) -> None:
    """`relations` maps each parent name to a child name or a list of them; the field sits at the root."""
    if "." in path:
        raise mapper_error(f"join field [{path}] cannot be added inside an object or in a multi-field")
    relations = spec.get("relations", {})
    children = relations.values() if isinstance(relations, dict) else []
    if not isinstance(relations, dict) or not all(
        isinstance(c, str) or (isinstance(c, list) and all(isinstance(n, str) for n in c)) for c in children
    ):
        raise mapper_error(f"[relations] on join field [{path}] must map parent names to child names")
    if not isinstance(spec.get("eager_global_ordinals", True), bool):
        raise mapper_error(f"[eager_global_ordinals] on join field [{path}] must be a boolean")


def failed(reason: str) -> EsError:
    error = parsing_error(f"failed to parse: {reason}")
    error.extra["caused_by"] = {"type": "illegal_argument_exception", "reason": reason}
    return error


def check_document(path: str, spec: dict, value: Any, routing: str | None) -> None:
    """A document's relation: a parent name, or `{name, parent}` for a child, which needs a routing
    (its parent's shard, in Elasticsearch)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"name", "parent"})
        if unknown:
            raise failed(f"unknown field name [{unknown[0]}] in join field [{path}]")
        name, parent = value.get("name"), value.get("parent")
    elif isinstance(value, str):
        name, parent = value, None
    else:
        raise failed(f"[{path}] expected START_OBJECT or VALUE_STRING but was: {type(value).__name__}")
    relations = spec.get("relations", {})
    children = {c for listed in relations.values() for c in ([listed] if isinstance(listed, str) else listed)}
    if name not in relations and name not in children:
        raise failed(f"unknown join name [{name}] for field [{path}]")
    if name in children:
        if parent is None:
            raise failed(f"[parent] is missing for join field [{path}]")
        if routing is None:
            raise failed(f"[routing] is missing for join field [{path}]")
