"""Nested fields at search time: the `nested` query, and the `inner_hits` of a nested query or a
nested kNN, as Elasticsearch answers them.

A document's nested objects are Lucene documents of their own on a cluster; here they are read
from the parent's `_source` when a query needs them (a matcher over the objects of one nested
path, kept until the index's next write). A field inside a nested object is seen only inside a
`nested` query on its path, as on a cluster (a top-level `term` on `objects.label` matches
nothing). Vectors inside nested objects live in their own column (`store.NestedColumn`) and are
searched by `knn.nested_nearest`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedded_es.errors import EsError, bad_request, unsupported
from embedded_es.knn import nearest, object_scores
from embedded_es.query import Matcher, Result, comparable, field_values, malformed
from embedded_es.store import IndexView

NESTED_OPTIONS = {"path", "query", "score_mode", "inner_hits", "ignore_unmapped", "boost"}
SCORE_MODES = {"avg", "max", "min", "sum", "none"}
INNER_HITS_OPTIONS = {"size", "from", "name", "_source", "fields"}
# inner_hits options Elasticsearch knows that the engine refuses by name.
KNOWN_INNER_HITS_OPTIONS = {"sort", "highlight", "docvalue_fields", "explain", "script_fields", "version"}
KNOWN_INNER_HITS_OPTIONS |= {"seq_no_primary_term", "stored_fields", "track_scores", "collapse", "ignore_unmapped"}
DEFAULT_SIZE = 3  # Elasticsearch's inner_hits size
INTEGER_TYPES = {"long", "integer", "short", "byte"}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}


@dataclass
class Children:
    """The objects of one nested path, as documents a matcher evaluates: each with its parent's
    slot and its offset in the parent's array."""

    parent: np.ndarray
    offset: np.ndarray
    matcher: Matcher


def children_of(view: IndexView, sources: list[dict | None], path: str) -> Children:
    cached = view.children.get(path)
    if isinstance(cached, Children):
        cached.matcher.named.clear()
        return cached
    parents, offsets, wrapped, keys = [], [], [], []
    for slot in np.flatnonzero(view.live[: len(view.ids)]):
        value = (sources[slot] or {}).get(path)
        objects = value if isinstance(value, list) else [value]
        for offset, obj in enumerate(objects):
            if isinstance(obj, dict):
                parents.append(int(slot))
                offsets.append(offset)
                wrapped.append({path: obj})  # field paths read as from the root: `objects.label`
                keys.append(f"{view.ids[slot]}#{offset}")
    inner = IndexView(view.name, view.uuid, view.mappings, ids=keys, live=np.ones(len(keys), bool))
    children = Children(np.asarray(parents, np.int64), np.asarray(offsets, np.int32), Matcher(inner, wrapped, 10, path))
    view.children[path] = children
    return children


def shard_error(reason: str) -> EsError:
    """How a cluster reports a nested query it cannot build: a query_shard_exception around
    the builder's own illegal_state_exception."""
    cause = {"type": "illegal_state_exception", "reason": reason}
    return EsError(400, "query_shard_exception", f"failed to create query: {reason}", caused_by=cause)


@dataclass
class InnerHits:
    """One `inner_hits` definition and, per parent slot, its objects best first: (offset, score)."""

    name: str
    path: str
    options: dict
    objects: Callable[[int], list[tuple[int, float]]]


def inner_hits_of(spec: Any, path: str, objects: Callable[[int], list[tuple[int, float]]]) -> InnerHits:
    if not isinstance(spec, dict):
        raise malformed("[inner_hits] must be an object")
    for option in spec:
        if option not in INNER_HITS_OPTIONS:
            if option in KNOWN_INNER_HITS_OPTIONS:
                raise unsupported("the inner_hits option", option)
            raise malformed(f"[inner_hits] unknown field [{option}]")
    for option in ("size", "from"):
        value = spec.get(option, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad_request(f"[inner_hits] [{option}] must be a non-negative integer, got [{value}]")
    return InnerHits(str(spec.get("name", path)), path, spec, objects)


def nested_path_of(view: IndexView, path: Any, ignore_unmapped: bool) -> bool:
    """Whether `path` names a nested field (False: unmapped and ignored); errors as a cluster's."""
    if not isinstance(path, str):
        raise malformed("[nested] requires 'path' field")
    spec: dict = view.mappings
    for part in path.split("."):
        spec = spec.get("properties", {}).get(part) or {}
    if not spec:
        if ignore_unmapped:
            return False
        raise shard_error(f"[nested] failed to find nested object under path [{path}]")
    if spec.get("type") != "nested":
        raise shard_error(f"[nested] nested object under path [{path}] is not of nested type")
    return True


def nested_query(matcher: Matcher, spec: dict) -> Result:
    """`nested`: parents whose objects match the inner query, scored by `score_mode` over the
    matching objects (avg by default); a `knn` query inside is a nested kNN (score_mode max)."""
    unknown = set(spec) - NESTED_OPTIONS
    if unknown:
        raise unsupported("the query option", sorted(unknown)[0], "of [nested]")
    if "query" not in spec:
        raise malformed("[nested] requires 'query' field")
    if matcher.scope:
        raise unsupported("the query", "nested", f"inside a nested query on [{matcher.scope}]")
    mode = spec.get("score_mode", "avg")
    if mode not in SCORE_MODES:
        raise bad_request(f"No score mode for child query [{mode}] found")
    size = len(matcher.live)
    none = np.zeros(size, bool), np.zeros(size, np.float32)
    if not nested_path_of(matcher.view, spec.get("path"), spec.get("ignore_unmapped", False) is True):
        return none
    path, query, boost = spec["path"], spec["query"], float(spec.get("boost", 1.0))
    view = matcher.view
    if isinstance(query, dict) and len(query) == 1 and "knn" in query:
        clause = query["knn"]
        if isinstance(clause, dict) and clause.get("field") in view.nested:
            if not str(clause["field"]).startswith(f"{path}."):
                raise bad_request(f"[knn] field [{clause['field']}] is not inside nested path [{path}]")
            found = nearest(view, matcher, clause, matcher.size, query_form=True)
            matches, scores = none[0].copy(), none[1].copy()
            if found:
                slots = np.fromiter(found, np.int64, len(found))
                matches[slots] = True
                scores[slots] = np.fromiter(found.values(), np.float32, len(found)) * np.float32(boost)
            if "inner_hits" in spec:
                matcher.inner.append(
                    inner_hits_of(spec["inner_hits"], path, lambda slot: object_scores(view, clause, slot))
                )
            return matches, scores
    children = children_of(view, matcher.sources, path)
    child_matches, child_scores = children.matcher.evaluate(query)
    hit = np.flatnonzero(child_matches)
    parents, values = children.parent[hit], child_scores[hit].astype(np.float64)
    matches = np.zeros(size, bool)
    matches[parents] = True
    scores = np.zeros(size, np.float64)
    if mode in ("sum", "avg"):
        np.add.at(scores, parents, values)
        if mode == "avg":
            counts = np.bincount(parents, minlength=size)
            scores = np.divide(scores, counts, out=scores, where=counts > 0)
    elif mode == "max":
        scores[parents] = -np.inf
        np.maximum.at(scores, parents, values)
    elif mode == "min":
        scores[parents] = np.inf
        np.minimum.at(scores, parents, values)
    scores = np.where(matches, scores * boost, 0).astype(np.float32)
    if "inner_hits" in spec:
        per_parent: dict[int, list[tuple[int, float]]] = {}
        for parent, offset, score in zip(parents, children.offset[hit], values):
            per_parent.setdefault(int(parent), []).append((int(offset), float(np.float32(score))))
        for found in per_parent.values():
            found.sort(key=lambda item: (-item[1], item[0]))
        matcher.inner.append(inner_hits_of(spec["inner_hits"], path, lambda slot: per_parent.get(slot, [])))
    return matches, scores


# --- rendering -------------------------------------------------------------------------------


def field_value(value: Any, kind: str | None) -> Any:
    """A value as the `fields` option formats it for its mapped type."""
    if kind in ("keyword", "text"):
        return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    if kind in INTEGER_TYPES:
        return int(comparable(value, kind))
    if kind in FLOAT_TYPES:
        return float(np.float32(comparable(value, kind))) if kind != "double" else float(value)
    return value


def object_fields(view: IndexView, path: str, obj: dict, fields: dict[str, str]) -> dict | None:
    """One nested object's `fields`, keyed by name inside the object ({"label": ["cup"]})."""
    matcher = Matcher(view, [], scope=path)
    found = {}
    for name, source_path in fields.items():
        kind = matcher.field(name)[1]
        values = [field_value(v, kind) for v in field_values({path: obj}, source_path)]
        if values:
            found[name[len(path) + 1 :]] = values
    return found or None


def nested_fields(view: IndexView, source: dict, fields: dict[str, str]) -> dict[str, list]:
    """The `fields` of a document that fall inside its nested fields, grouped as a cluster
    groups them: {"objects": [{"label": ["cup"]}, {"label": ["plate"]}]}."""
    grouped: dict[str, list] = {}
    for path in sorted({name.split(".")[0] for name in fields}):
        inside = {n: p for n, p in fields.items() if n.startswith(f"{path}.")}
        value = source.get(path)
        objects = value if isinstance(value, list) else [value]
        found = [object_fields(view, path, obj, inside) for obj in objects if isinstance(obj, dict)]
        if any(found):
            grouped[path] = [f for f in found if f]
    return grouped


def render_inner_hits(
    view: IndexView, doc_id: str, slot: int, source: dict, inner: InnerHits,
    leaves: dict[str, str], filter_source: Callable, source_filter: Callable,
) -> dict:  # fmt: skip
    """One hit's `inner_hits.<name>`: total, max_score and the page of objects, each with
    `_nested`, `_score` and its `_source` (filtered on full paths, then the object taken out)
    and/or `fields`."""
    found = inner.objects(slot)
    start = inner.options.get("from", 0)
    page = found[start : start + inner.options.get("size", DEFAULT_SIZE)]
    fetch, includes, excludes = source_filter(inner.options, {})
    patterns = inner.options.get("fields", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise EsError(400, "parsing_exception", "[fields] must be an array of field names")
    wanted = {
        n: p
        for n, p in leaves.items()
        if n.startswith(f"{inner.path}.") and any(fnmatch.fnmatchcase(n, q) for q in patterns)
    }
    value = source.get(inner.path)
    objects = value if isinstance(value, list) else [value]
    hits = []
    for offset, score in page:
        obj = objects[offset] if offset < len(objects) and isinstance(objects[offset], dict) else {}
        hit: dict[str, Any] = {
            "_index": view.name,
            "_id": doc_id,
            "_nested": {"field": inner.path, "offset": offset},
            "_score": score,
        }
        if fetch:
            hit["_source"] = filter_source({inner.path: obj}, includes, excludes).get(inner.path, {})
        fields = object_fields(view, inner.path, obj, wanted) if wanted else None
        if fields:
            hit["fields"] = {inner.path: [fields]}
        hits.append(hit)
    return {
        "hits": {
            "total": {"value": len(found), "relation": "eq"},
            "max_score": found[0][1] if found else None,
            "hits": hits,
        }
    }


def check_names(inner: list[InnerHits]) -> None:
    seen: set[str] = set()
    for definition in inner:
        if definition.name in seen:
            raise bad_request(f"[inner_hits] already contains an entry for key [{definition.name}]")
        seen.add(definition.name)
