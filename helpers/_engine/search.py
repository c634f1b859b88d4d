"""`_search` and `_count` for the embedded engine: exact kNN with Elasticsearch's scoring.

Scores follow the dense_vector docs: cosine `(1 + cos) / 2`, dot_product `(1 + dot) / 2`,
l2_norm `1 / (1 + d²)`, max_inner_product `dot + 1` (or `1 / (1 - dot)` below zero). The kNN
`similarity` option is a floor on the raw similarity (cosine, dot, or a ceiling on the L2
distance), not on the score. Exact search returns what HNSW approximates, so
`num_candidates` is validated but cannot lower the quality.
"""

from __future__ import annotations

import fnmatch
import functools
import time
from typing import Any

import numpy as np

from helpers._engine.errors import bad_request, unsupported
from helpers._engine.query import NUMERIC_TYPES, Matcher, comparable, field_values
from helpers._engine.store import IndexView, Store

MAX_NUM_CANDIDATES = 10_000
KNOWN_BODY_KEYS = {"query", "knn", "size", "from", "_source", "fields", "min_score", "track_total_hits", "timeout"}
KNOWN_BODY_KEYS |= {"sort", "search_after"}
INTEGER_TYPES = {"long", "integer", "short", "byte", "date"}


def score_of(similarity: str, raw: np.ndarray) -> np.ndarray:
    if similarity in ("cosine", "dot_product"):
        return (1 + raw) / 2
    if similarity == "l2_norm":
        return 1 / (1 + raw**2)
    return np.where(raw < 0, 1 / (1 - raw), raw + 1)  # max_inner_product


def knn_hits(view: IndexView, matcher: Matcher, clause: dict, default_k: int) -> dict[int, float]:
    """Top-k slots for one kNN clause, as {slot: boosted score}."""
    unknown = set(clause) - {"field", "query_vector", "k", "num_candidates", "filter", "similarity", "boost"}
    if unknown:
        raise unsupported(f"knn options {sorted(unknown)}")
    name = clause.get("field")
    column = view.columns.get(name)
    if column is None:
        raise bad_request(f"[knn] queries are only supported on [dense_vector] fields, [{name}] is not one")
    k = int(clause.get("k", default_k))
    num_candidates = int(clause.get("num_candidates", min(int(1.5 * k), MAX_NUM_CANDIDATES)))
    if k < 1:
        raise bad_request("[k] must be greater than 0")
    if num_candidates < k:
        raise bad_request("[num_candidates] cannot be less than [k]")
    if num_candidates > MAX_NUM_CANDIDATES:
        raise bad_request(f"[num_candidates] cannot exceed [{MAX_NUM_CANDIDATES}]")
    query = np.asarray(clause.get("query_vector"), dtype=np.float32)
    if query.ndim != 1 or len(query) != column.dims:
        raise bad_request(
            f"the query vector has a different number of dimensions [{query.size}] than the document vectors "
            f"[{column.dims}]"
        )
    if column.similarity == "cosine" and not np.any(query):
        raise bad_request("The [cosine] similarity does not support vectors with zero magnitude.")
    used = len(view.ids)
    eligible = view.live[:used] & column.present[:used]
    filters = clause.get("filter", [])
    for f in filters if isinstance(filters, list) else [filters]:
        eligible &= matcher.evaluate(f)[0][:used]
    raw = column.raw_similarity(query, used)
    if "similarity" in clause:
        floor = float(clause["similarity"])
        eligible &= raw <= floor if column.similarity == "l2_norm" else raw >= floor
    # The score is monotonic in the raw similarity: pick the top k first, score only those.
    cost = raw if column.similarity == "l2_norm" else -raw
    eligible_count = int(eligible.sum())
    if eligible_count < used:
        cost = np.where(eligible, cost, np.inf)
    take = min(k, eligible_count)
    if take == 0:
        return {}
    slots = np.argpartition(cost, take - 1)[:take]
    scores = score_of(column.similarity, raw[slots]).astype(np.float32)
    boost = float(clause.get("boost", 1.0))
    return {int(s): float(v) * boost for s, v in zip(slots, scores)}


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
    matcher = Matcher(view, sources)

    scores: dict[int, float] = {}
    for clause in knn:
        for slot, score in knn_hits(view, matcher, clause, default_k=size).items():
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
    return {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": len(ranked), "relation": "eq"},
            "max_score": ranked[0][1] if ranked and not sorts_by_field else None,
            "hits": hits,
        },
    }


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
