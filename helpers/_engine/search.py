"""`_search` and `_count` for the embedded engine: query, kNN (see `knn.py`), sort, pages,
`_source` filtering and `fields`."""

from __future__ import annotations

import fnmatch
import functools
import time
from typing import Any

import numpy as np

from helpers._engine.errors import bad_request, unsupported
from helpers._engine.knn import nearest
from helpers._engine.query import NUMERIC_TYPES, Matcher, comparable, field_values
from helpers._engine.store import IndexView, Store

KNOWN_BODY_KEYS = {"query", "knn", "size", "from", "_source", "fields", "min_score", "track_total_hits", "timeout"}
KNOWN_BODY_KEYS |= {"sort", "search_after"}
INTEGER_TYPES = {"long", "integer", "short", "byte", "date"}


def source_filter(body: dict, params: dict) -> tuple[bool, list[str], list[str]]:
    """(fetch source?, include patterns, exclude patterns) from the body and query string."""
    spec = body.get("_source", params.get("_source", True))
    includes = [p for p in params.get("_source_includes", "").split(",") if p]
    excludes = [p for p in params.get("_source_excludes", "").split(",") if p]
    if isinstance(spec, str) and spec.lower() in ("true", "false"):
        spec = spec.lower() == "true"
    if spec is False:
        return False, [], []
    if isinstance(spec, str):
        includes += spec.split(",")
    elif isinstance(spec, list):
        includes += spec
    elif isinstance(spec, dict):
        if set(spec) - {"includes", "include", "excludes", "exclude"}:
            raise unsupported(f"_source options {sorted(set(spec) - {'includes', 'include', 'excludes', 'exclude'})}")
        for key, target in (
            ("includes", includes),
            ("include", includes),
            ("excludes", excludes),
            ("exclude", excludes),
        ):
            value = spec.get(key, [])
            target += [value] if isinstance(value, str) else value
    return True, includes, excludes


def keep_field(name: str, includes: list[str], excludes: list[str]) -> bool:
    included = not includes or any(fnmatch.fnmatchcase(name, p) or p.startswith(name + ".") for p in includes)
    return included and not any(fnmatch.fnmatchcase(name, p) for p in excludes)


def requested_fields(body: dict, view: IndexView) -> list[str]:
    for entry in body.get("fields", []):
        if isinstance(entry, dict) and set(entry) - {"field"}:
            raise unsupported(f"fields options {sorted(set(entry) - {'field'})}")
    patterns = [f["field"] if isinstance(f, dict) else f for f in body.get("fields", [])]
    mapped = list(view.mappings.get("properties", {}))
    return [name for name in mapped if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def run_search(store: Store, view: IndexView, body: dict, params: dict) -> dict:
    started = time.perf_counter()
    unknown = set(body) - KNOWN_BODY_KEYS
    if unknown:
        raise unsupported(f"search options {sorted(unknown)}")
    size = int(body.get("size", params.get("size", 10)))
    offset = int(body.get("from", params.get("from", 0)))
    if size < 0 or offset < 0:
        raise bad_request("[size] and [from] must not be negative")
    knn = body.get("knn", [])
    knn = knn if isinstance(knn, list) else [knn]
    sort = sort_spec(body.get("sort", []))
    sorts_by_field = any(name != "_score" for name, _ in sort)
    needs_sources = "query" in body or any("filter" in clause for clause in knn) or sorts_by_field
    sources = store.sources(view) if needs_sources else []
    matcher = Matcher(view, sources, size)

    scores: dict[int, float] = {}
    for clause in knn:
        for slot, score in nearest(view, matcher, clause, size, query_form=False).items():
            scores[slot] = scores.get(slot, 0.0) + score
    if "query" in body or not knn:
        matches, query_scores = matcher.evaluate(body.get("query", {"match_all": {}}))
        for slot in np.flatnonzero(matches):
            scores[int(slot)] = scores.get(int(slot), 0.0) + float(query_scores[slot])
    if "min_score" in body:
        scores = {s: v for s, v in scores.items() if v >= float(body["min_score"])}

    if sort:
        ranked, sort_values = sorted_by(matcher, scores, sort, body.get("search_after"))
    else:
        ranked, sort_values = sorted(scores.items(), key=lambda item: (-item[1], item[0])), {}
    page = ranked[offset : offset + size]
    hits = render_hits(store, view, page, body, params)
    if sort:
        for hit, (slot, _) in zip(hits, page):
            hit["sort"] = sort_values[slot]
            if all(name != "_score" for name, _ in sort):
                hit["_score"] = None  # as a cluster does: sorting by a field does not compute scores
    found: dict[str, Any] = {"max_score": ranked[0][1] if ranked and not sorts_by_field else None, "hits": hits}
    total = total_hits(len(ranked), body, params)
    return {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": found if total is None else {"total": total, **found},
    }


def parse_track(value: Any) -> bool | int:
    if isinstance(value, bool) or (isinstance(value, int) and value >= -1):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and value.lstrip("-").isdigit() and int(value) >= -1:
        return int(value)
    raise bad_request(f"[track_total_hits] must be true, false or a number of hits, got [{value}]")


def check_search_type(params: dict) -> None:
    """One shard: both search types see the same term statistics, so both are honoured."""
    kind = params.get("search_type", "query_then_fetch")
    if kind not in ("query_then_fetch", "dfs_query_then_fetch"):
        raise bad_request(f"No search type for [{kind}]")


def total_hits(count: int, body: dict, params: dict) -> dict | int | None:
    """`hits.total` as Elasticsearch reports it: exact up to `track_total_hits` (10,000 by
    default), then a lower bound; left out when tracking is off; a number with
    `rest_total_hits_as_int`, which requires exact tracking."""
    check_search_type(params)
    as_int = params.get("rest_total_hits_as_int", "false") in ("", "true")
    given = body.get("track_total_hits", params.get("track_total_hits"))
    track = parse_track(given) if given is not None else (True if as_int else 10_000)
    if as_int:
        if track is False or track == -1:
            return -1
        if track is not True:
            raise bad_request("[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate")
        return count
    if track is False or track == -1:  # -1: Elasticsearch's "disabled"
        return None
    if track is True or count <= track:
        return {"value": count, "relation": "eq"}
    return {"value": track, "relation": "gte"}


def sort_spec(spec: Any) -> list[tuple[str, bool]]:
    """`sort` as [(field, descending)]: "field", {"field": "desc"} or {"field": {"order": ...}}."""
    items = spec if isinstance(spec, list) else [spec]
    parsed = []
    for item in items:
        if isinstance(item, str):
            name, order = item, "desc" if item == "_score" else "asc"
        elif isinstance(item, dict) and len(item) == 1:
            ((name, order),) = item.items()
            if isinstance(order, dict):
                if set(order) - {"order"}:
                    raise unsupported(f"sort options {sorted(set(order) - {'order'})}")
                order = order.get("order", "desc" if name == "_score" else "asc")
        else:
            raise bad_request(f"malformed sort {item!r}")
        if order not in ("asc", "desc"):
            raise bad_request(f"[sort] order must be asc or desc, not [{order}]")
        parsed.append((name, order == "desc"))
    return parsed


def sorted_by(
    matcher: Matcher, scores: dict[int, float], sort: list[tuple[str, bool]], search_after: list | None
) -> tuple[list[tuple[int, float]], dict[int, list]]:
    """Hits in `sort` order (documents without a value last, as `missing: _last` does),
    those after `search_after` only, with the sort values each hit reports."""
    fields = [(name, descending, *matcher.resolve(name)) for name, descending in sort]

    def key_of(slot: int, score: float) -> list:
        key = []
        for name, descending, path, kind in fields:
            if name == "_score":
                key.append(score)
                continue
            values = [comparable(v, kind) for v in field_values(matcher.sources[slot], path)]
            value = (max(values) if descending else min(values)) if values else None
            key.append(int(value) if value is not None and kind in INTEGER_TYPES else value)
        return key

    def compare(a: list, b: list) -> int:
        for (_, descending, _, _), x, y in zip(fields, a, b):
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            return (1 if x > y else -1) * (-1 if descending else 1)
        return 0

    keys = {slot: key_of(slot, score) for slot, score in scores.items()}
    if search_after is not None:
        if not isinstance(search_after, list) or len(search_after) != len(fields):
            raise bad_request("[search_after] must have one value per sort field")
        after = [
            comparable(v, kind) if kind in NUMERIC_TYPES | {"date"} else v
            for (_, _, _, kind), v in zip(fields, search_after)
        ]
        keys = {slot: key for slot, key in keys.items() if compare(key, after) > 0}
    order = sorted(keys, key=functools.cmp_to_key(lambda a, b: compare(keys[a], keys[b]) or a - b))
    return [(slot, scores[slot]) for slot in order], keys


def render_hits(store: Store, view: IndexView, page: list[tuple[int, float]], body: dict, params: dict) -> list[dict]:
    fetch_source, includes, excludes = source_filter(body, params)
    fields = requested_fields(body, view)
    vector_names = set(view.columns)
    wanted_vectors = fetch_source and any(keep_field(n, includes, excludes) for n in vector_names)
    ids = [view.ids[slot] for slot, _ in page]
    needs_documents = fetch_source or bool(fields)
    with_vectors = wanted_vectors or bool(vector_names & set(fields))
    stored = store.fetch(view.name, ids, with_vectors) if needs_documents else {}
    hits = []
    for (_, score), doc_id in zip(page, ids):
        source = stored[doc_id][0] if needs_documents else {}
        hit: dict[str, Any] = {"_index": view.name, "_id": doc_id, "_score": score}
        if fetch_source:
            hit["_source"] = {k: v for k, v in source.items() if keep_field(k, includes, excludes)}
        if fields:
            hit["fields"] = {
                n: source[n] if isinstance(source[n], list) else [source[n]] for n in fields if n in source
            }
        hits.append(hit)
    return hits


def run_count(store: Store, view: IndexView, body: dict) -> dict:
    if set(body) - {"query"}:
        raise unsupported(f"count options {sorted(set(body) - {'query'})}")
    if "query" not in body:
        count = view.count
    else:
        matcher = Matcher(view, store.sources(view))
        count = int(matcher.evaluate(body["query"])[0].sum())
    return {"count": count, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}
