"""`_search` and `_count` for the embedded engine: query, kNN (see `knn.py`), sort, pages,
`_source` filtering and `fields`."""

from __future__ import annotations

import fnmatch
import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from embedded_es.errors import EsError, bad_request, refused, shard_failure, unsupported
from embedded_es.knn import nearest, object_scores
from embedded_es.nested import check_names, inner_hits_of, nested_fields, render_inner_hits
from embedded_es.query import NUMERIC_TYPES, Matcher, comparable, field_values
from embedded_es.request import flag
from embedded_es.store import PRIMARY_TERM, IndexView, Store, nested_paths

KNOWN_BODY_KEYS = {"query", "knn", "size", "from", "_source", "fields", "min_score", "track_total_hits", "timeout"}
KNOWN_BODY_KEYS |= {"sort", "search_after", "docvalue_fields", "stored_fields", "seq_no_primary_term"}
# Search body keys Elasticsearch knows that the engine refuses by name; others are unknown keys.
ELASTICSEARCH_BODY_KEYS = {"aggs", "aggregations", "post_filter", "highlight", "rescore", "suggest", "collapse"}
ELASTICSEARCH_BODY_KEYS |= {"explain", "version"}
ELASTICSEARCH_BODY_KEYS |= {"script_fields", "indices_boost", "profile", "runtime_mappings", "stats"}
ELASTICSEARCH_BODY_KEYS |= {"terminate_after", "rank", "ext", "slice", "track_scores", "sub_searches"}
INTEGER_TYPES = {"long", "integer", "short", "byte", "date"}


def source_filter(body: dict, params: dict) -> tuple[bool, list[str], list[str]]:
    """(fetch source?, include patterns, exclude patterns). The query string's `_source`,
    `_source_includes` and `_source_excludes`, when given, replace the body's `_source`."""
    from_url = any(k in params for k in ("_source", "_source_includes", "_source_excludes"))
    spec = params.get("_source", True) if from_url else body.get("_source", True)
    includes = [p for p in params.get("_source_includes", "").split(",") if p]
    excludes = [p for p in params.get("_source_excludes", "").split(",") if p]
    if isinstance(spec, str) and spec.lower() in ("true", "false"):
        spec = spec.lower() == "true"
    if spec is False:
        return False, [], []
    if isinstance(spec, str):
        includes += spec.split(",")
    elif isinstance(spec, list):
        if not all(isinstance(p, str) for p in spec):
            raise bad_request(f"[_source] patterns must be strings, got {spec}")
        includes += spec
    elif isinstance(spec, dict):
        if set(spec) - {"includes", "include", "excludes", "exclude"}:
            raise unsupported(
                "the _source option", sorted(set(spec) - {"includes", "include", "excludes", "exclude"})[0]
            )
        for key, target in (
            ("includes", includes),
            ("include", includes),
            ("excludes", excludes),
            ("exclude", excludes),
        ):
            value = spec.get(key, [])
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise bad_request(f"[_source] [{key}] must be a pattern or an array of patterns, got [{value}]")
            target += value
    elif spec is not True:
        raise bad_request(f"[_source] must be a boolean, a string, an array or an object, got [{spec}]")
    return True, includes, excludes


def matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def path_kept(path: str, includes: list[str], excludes: list[str]) -> bool:
    """Whether `_source` filtering keeps the value at a dotted path: neither it nor an object
    above it is excluded, and it or an object above it is included (or nothing is)."""
    above = [".".join(path.split(".")[: i + 1]) for i in range(path.count(".") + 1)]
    if any(matches(p, excludes) for p in above):
        return False
    return not includes or any(matches(p, includes) for p in above)


def filter_source(source: dict, includes: list[str], excludes: list[str], prefix: str = "") -> dict:
    """`_source` filtering on full dotted paths, as Elasticsearch does: `include.field1` keeps
    one field of the `include` object, `incl*` or `include` keeps the object whole; excludes
    win; an object left empty by filtering is dropped."""
    kept: dict = {}
    for key, value in source.items():
        path = f"{prefix}{key}"
        if matches(path, excludes):
            continue
        if not includes or matches(path, includes):
            kept[key] = filter_value(value, [], excludes, path)
            continue
        if isinstance(value, (dict, list)) and any(p.startswith(f"{path}.") or "*" in p for p in includes):
            inner = filter_value(value, includes, excludes, path)
            if inner not in ({}, []):
                kept[key] = inner
    return kept


def filter_value(value: Any, includes: list[str], excludes: list[str], path: str) -> Any:
    """A kept value with filtering applied inside its objects (arrays of objects included);
    with includes left, only objects can still hold something that matches."""
    if isinstance(value, dict):
        return filter_source(value, includes, excludes, f"{path}.")
    if isinstance(value, list):
        inside = [filter_value(v, includes, excludes, path) for v in value if isinstance(v, dict) or not includes]
        return [v for v in inside if v != {}] if includes else inside
    return value


def mapped_leaves(mappings: dict, prefix: str = "", source_prefix: str = "") -> dict[str, str]:
    """Every mapped leaf field, objects walked and multi-fields included: {name: path in the source}."""
    leaves = {}
    for name, spec in mappings.get("properties", {}).items():
        path, source_path = f"{prefix}{name}", f"{source_prefix}{name}"
        if spec.get("type", "object") in ("object", "nested"):
            leaves |= mapped_leaves(spec, f"{path}.", f"{source_path}.")
            continue
        leaves[path] = source_path
        for sub in spec.get("fields", {}):
            leaves[f"{path}.{sub}"] = source_path  # a multi-field reads its parent's value
    return leaves


def stored_leaves(mappings: dict, prefix: str = "") -> dict[str, str]:
    """Mapped fields with `store: true`, by name: what `stored_fields` can return."""
    found = {}
    for name, spec in mappings.get("properties", {}).items():
        if spec.get("type", "object") == "object":
            found |= stored_leaves(spec, f"{prefix}{name}.")
        elif spec.get("store") is True:
            found[f"{prefix}{name}"] = f"{prefix}{name}"
    return found


def typed_leaves(view: IndexView, pattern: str) -> dict[str, tuple[str, str | None, dict]]:
    """Mapped leaf fields (multi-fields included) matching a pattern: {name: (source path, type, mapping)}."""
    matcher = Matcher(view, [])
    return {name: matcher.field(name) for name in mapped_leaves(view.mappings) if fnmatch.fnmatchcase(name, pattern)}


def requested_fields(body: dict, view: IndexView) -> dict[str, str]:
    """The `fields` a search asks for, as {field name: path in the source}."""
    entries = body.get("fields", [])
    if not isinstance(entries, list) or not all(
        isinstance(e, str) or (isinstance(e, dict) and isinstance(e.get("field"), str)) for e in entries
    ):
        raise EsError(400, "parsing_exception", "[fields] must be an array of field names or {field: name} objects")
    for entry in entries:
        if isinstance(entry, dict) and set(entry) - {"field"}:
            raise unsupported("the fields option", sorted(set(entry) - {"field"})[0])
    patterns = [f["field"] if isinstance(f, dict) else f for f in entries]
    if not patterns:
        return {}
    return {n: p for n, p in mapped_leaves(view.mappings).items() if any(fnmatch.fnmatchcase(n, q) for q in patterns)}


def check_body(body: dict) -> None:
    for key in body:
        if key in KNOWN_BODY_KEYS:
            continue
        if key in ELASTICSEARCH_BODY_KEYS:
            raise unsupported("the search option", key)
        raise EsError(400, "parsing_exception", f"Unknown key for a START_OBJECT in [{key}].")


MATCH_ALL = {"match_all": {}}
PARSE_ERRORS = {"parsing_exception", "x_content_parse_exception"}


def on_shard(view: IndexView, work: Callable[..., Any], *args: Any) -> Any:
    """Run one index's share of a search; its errors come back as a cluster's shard failures
    (parse errors and refusals stay as they are: they fail the request, not a shard)."""
    try:
        return work(*args)
    except EsError as error:
        if error.error_type in PARSE_ERRORS or refused(error):
            raise
        raise shard_failure(error, view.name) from None


def whole_number(body: dict, params: dict, name: str, default: int) -> int:
    value = body.get(name, params.get(name, default))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad_request(f"[{name}] must be a number, got [{value}]") from None
    if number < 0:
        raise bad_request(f"[{name}] parameter cannot be negative, found [{number}]")
    return number


Entry = tuple[int, int, float]  # (position of the index in the request, slot, score)


def shards_header(shards: int) -> dict:
    """`_shards` of a search-like answer: one shard per index here, every one successful."""
    return {"total": shards, "successful": shards, "skipped": 0, "failed": 0}


def search_response(started: float, shards: int, found: dict, total: dict | int | None) -> dict:
    """A search's answer around its `hits` (`found`: max_score and hits; `total` left out when None)."""
    return {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": shards_header(shards),
        "hits": found if total is None else {"total": total, **found},
    }


def run_search(store: Store, views: list[IndexView], body: dict, params: dict) -> dict:
    """One search over one or several indices: each index scored on its own (kNN keeps the
    `k` best of all of them), then one ranking, one page, one total."""
    started = time.perf_counter()
    check_body(body)
    size = whole_number(body, params, "size", 10)
    offset = whole_number(body, params, "from", 0)
    knn = body.get("knn", [])
    knn = knn if isinstance(knn, list) else [knn]
    if not all(isinstance(clause, dict) for clause in knn):
        raise EsError(400, "parsing_exception", "[knn] must be an object or an array of objects")
    if "min_score" in body and (isinstance(body["min_score"], bool) or not isinstance(body["min_score"], (int, float))):
        raise EsError(400, "parsing_exception", f"[min_score] must be a number, got [{body['min_score']}]")
    if knn and "search_type" in params:
        raise bad_request(
            "cannot set [search_type] when using [knn] search, since the search type is determined automatically"
        )
    sort = sort_spec(body.get("sort", []))
    sorts_by_field = any(name != "_score" for name, _ in sort)
    needs_sources = "query" in body or any("filter" in clause for clause in knn) or sorts_by_field
    matchers = [Matcher(view, store.sources(view) if needs_sources else [], size) for view in views]

    scores: dict[tuple[int, int], float] = {}
    knn_names: list[tuple[str, set[tuple[int, int]]]] = []
    for clause in knn:
        found = [
            ((position, slot), score)
            for position, (view, matcher) in enumerate(zip(views, matchers))
            for slot, score in on_shard(view, nearest, view, matcher, clause, size, False).items()
        ]
        k = clause.get("k", size) if isinstance(clause, dict) else size
        kept = sorted(found, key=lambda item: -item[1])[: int(k)]  # the k best of all indices
        for key, score in kept:
            scores[key] = scores.get(key, 0.0) + score
        if "inner_hits" in clause:
            for view, matcher in zip(views, matchers):
                if clause["field"] in view.nested:
                    path = clause["field"].rsplit(".", 1)[0]
                    objects = functools.partial(object_scores, view, clause)
                    matcher.inner.append(inner_hits_of(clause["inner_hits"], path, objects))
        if "_name" in clause:
            knn_names.append((str(clause["_name"]), {key for key, _ in kept}))
    if "query" in body or not knn:
        for position, matcher in enumerate(matchers):
            matches, query_scores = on_shard(views[position], matcher.evaluate, body.get("query", MATCH_ALL))
            for slot in np.flatnonzero(matches):
                key = (position, int(slot))
                scores[key] = scores.get(key, 0.0) + float(query_scores[slot])
    if "min_score" in body:
        scores = {key: v for key, v in scores.items() if v >= float(body["min_score"])}

    entries = [(position, slot, score) for (position, slot), score in scores.items()]
    if sort:
        ranked, sort_values = sorted_by(matchers, entries, sort, body.get("search_after"))
    else:
        ranked, sort_values = sorted(entries, key=lambda e: (-e[2], e[0], e[1])), {}
    page = ranked[offset : offset + size]
    for matcher in matchers:
        check_names(matcher.inner)
    hits = render_hits(store, views, page, body, params, [m.inner for m in matchers])
    for hit, (position, slot, _) in zip(hits, page):
        matched = [name for name, keys in knn_names if (position, slot) in keys]
        matched += [name for name, mask in matchers[position].named if mask[slot]]
        if matched:
            hit["matched_queries"] = list(dict.fromkeys(matched))
        if sort:
            hit["sort"] = sort_values[(position, slot)]
            if all(name != "_score" for name, _ in sort):
                hit["_score"] = None  # as a cluster does: sorting by a field does not compute scores
    found: dict[str, Any] = {"max_score": max((e[2] for e in ranked), default=None) if not sorts_by_field else None}
    found["hits"] = hits
    total = total_hits(len(entries), body, params)  # all matches: search_after pages, it does not filter the count
    return search_response(started, len(views), found, total)


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
                    raise unsupported("the sort option", sorted(set(order) - {"order"})[0])
                order = order.get("order", "desc" if name == "_score" else "asc")
        else:
            raise bad_request(f"malformed sort {item!r}")
        if order not in ("asc", "desc"):
            raise bad_request(f"[sort] order must be asc or desc, not [{order}]")
        parsed.append((name, order == "desc"))
    return parsed


def sorted_by(
    matchers: list[Matcher], entries: list[Entry], sort: list[tuple[str, bool]], search_after: list | None
) -> tuple[list[Entry], dict[tuple[int, int], list]]:
    """Hits in `sort` order (documents without a value last, as `missing: _last` does),
    those after `search_after` only, with the sort values each hit reports."""
    kinds = []
    for name, _ in sort:  # one type per field across indices: the first index that maps it
        kinds.append(next((m.resolve(name)[1] for m in matchers if m.resolve(name)[1]), None))

    def key_of(position: int, slot: int, score: float) -> list:
        matcher, key = matchers[position], []
        for (name, descending), kind in zip(sort, kinds):
            if name == "_score":
                key.append(score)
                continue
            if name == "_doc":  # index order, as a one-shard cluster's doc ids
                key.append(slot)
                continue
            if name == "_shard_doc":  # the point-in-time tiebreaker: (shard << 32) + doc, one shard per index
                key.append((position << 32) + slot)
                continue
            path, _ = matcher.resolve(name)
            if name.split(".")[0] in nested_paths(matcher.view.mappings) and "." in name:
                raise unsupported("the sort option", "nested", f"sort field [{name}] is inside a nested field")
            values = [comparable(v, kind) for v in field_values(matcher.sources[slot], path)]
            value = (max(values) if descending else min(values)) if values else None
            key.append(int(value) if value is not None and kind in INTEGER_TYPES else value)
        return key

    def compare(a: list, b: list) -> int:
        for (_, descending), x, y in zip(sort, a, b):
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            return (1 if x > y else -1) * (-1 if descending else 1)
        return 0

    keys = {(p, slot): key_of(p, slot, score) for p, slot, score in entries}
    if search_after is not None:
        if not isinstance(search_after, list) or len(search_after) != len(sort):
            raise bad_request("[search_after] must have one value per sort field")
        after = [comparable(v, kind) if kind in NUMERIC_TYPES | {"date"} else v for kind, v in zip(kinds, search_after)]
        try:
            entries = [e for e in entries if compare(keys[(e[0], e[1])], after) > 0]
        except TypeError:
            raise bad_request("[search_after] values must have the types of their sort fields") from None

    def order(a: Entry, b: Entry) -> int:
        return compare(keys[(a[0], a[1])], keys[(b[0], b[1])]) or (a[0] - b[0]) or (a[1] - b[1])

    return sorted(entries, key=functools.cmp_to_key(order)), keys


def listed(body: dict, params: dict, key: str) -> list | None:
    """A list option given in the body or, comma-separated, in the query string."""
    if key in body:
        value = body[key]
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list):
            raise EsError(400, "parsing_exception", f"[{key}] must be an array")
        return value
    return params[key].split(",") if key in params else None


def doc_values(source: dict | None, path: str, kind: str | None, spec: dict) -> list[Any]:
    """A field's values as its doc values hold them: sorted, keywords unique, floats at float
    precision, dates formatted as strict_date_optional_time (UTC, milliseconds)."""
    values = [comparable(v, kind) for v in field_values(source, path)]
    if kind == "keyword":
        limit = spec.get("ignore_above")
        return sorted({str(v) for v in values if limit is None or len(str(v)) <= limit})
    if kind in INTEGER_TYPES - {"date"}:
        return sorted(int(v) for v in values)
    if kind in ("float", "half_float"):
        return sorted(float(np.float32(v)) for v in values)
    if kind == "date":
        return [format_millis(v) for v in sorted(values)]
    if kind == "boolean":
        return sorted(bool(v) for v in values)
    return sorted(values)


def format_millis(millis: float) -> str:
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def docvalue_fields(body: dict, params: dict, matcher_of: Callable[[str], tuple]) -> dict[str, Callable]:
    """{field: reader} for `docvalue_fields`; text has no doc values, as on a cluster."""
    entries = listed(body, params, "docvalue_fields")
    readers: dict[str, Callable] = {}
    for entry in entries or []:
        if isinstance(entry, dict):
            extra = set(entry) - {"field"}
            if extra:
                raise unsupported("the fields option", sorted(extra)[0], "of docvalue_fields")
            entry = entry.get("field")
        if not isinstance(entry, str):
            raise EsError(400, "parsing_exception", "[docvalue_fields] must name fields")
        for name, (path, kind, spec) in matcher_of(entry).items():
            if kind == "text":
                raise bad_request(
                    f"Can't load fielddata on [{name}] because fielddata is unsupported on fields of type [text]. "
                    "Use a keyword field instead."
                )
            if kind not in (None, "object", "dense_vector"):
                readers[name] = lambda source, path=path, kind=kind, spec=spec: doc_values(source, path, kind, spec)
    return readers


def with_seq_no(body: dict, params: dict) -> bool:
    """`seq_no_primary_term`, in the body or the query string: hits carry `_seq_no` and `_primary_term`."""
    wanted = body.get("seq_no_primary_term", flag(params, "seq_no_primary_term", False))
    if not isinstance(wanted, bool):
        raise EsError(400, "x_content_parse_exception", f"[seq_no_primary_term] must be a boolean, got [{wanted}]")
    return wanted


def render_hits(
    store: Store, views: list[IndexView], page: list[Entry], body: dict, params: dict, inner: list[list] | None = None
) -> list[dict]:
    fetch_source, includes, excludes = source_filter(body, params)
    seq_nos = with_seq_no(body, params)
    metas = {}  # routing (always shown when a document has one) and sequence numbers, per hit
    for position in sorted({position for position, _, _ in page}):
        ids = [views[position].ids[slot] for p, slot, _ in page if p == position]
        metas |= {(position, i): m for i, m in store.meta(views[position].name, ids).items()}
    stored_fields = listed(body, params, "stored_fields")
    if stored_fields is not None:  # only stored fields come back, and `_source` only when listed
        fetch_source = fetch_source and "_source" in stored_fields and "_none_" not in stored_fields
    stored: dict[tuple[int, str], dict] = {}
    fields_of: dict[int, dict[str, str]] = {}
    docvalues_of: dict[int, dict[str, Callable]] = {}
    for position in sorted({position for position, _, _ in page}):
        view = views[position]
        fields_of[position] = requested_fields(body, view)
        for name in stored_fields or []:
            fields_of[position] |= {
                n: p for n, p in stored_leaves(view.mappings).items() if fnmatch.fnmatchcase(n, str(name))
            }
        docvalues_of[position] = docvalue_fields(body, params, lambda pattern, view=view: typed_leaves(view, pattern))
        vector_names = set(view.columns) | set(view.nested)
        wanted_vectors = fetch_source and any(path_kept(n, includes, excludes) for n in vector_names)
        ids = [view.ids[slot] for p, slot, _ in page if p == position]
        inner_of = inner[position] if inner else []
        if fetch_source or fields_of[position] or docvalues_of[position] or inner_of:
            inner_vectors = any(d.options.get("_source", True) is not False for d in inner_of)
            with_vectors = wanted_vectors or inner_vectors or bool(vector_names & set(fields_of[position]))
            for doc_id, (source, _) in store.fetch(view.name, ids, with_vectors).items():
                stored[(position, doc_id)] = source
    hits = []
    for position, slot, score in page:
        view = views[position]
        doc_id = view.ids[slot]
        source = stored.get((position, doc_id), {})
        hit: dict[str, Any] = {"_index": view.name, "_id": doc_id, "_score": score}
        if stored_fields is not None and "_none_" in stored_fields:
            del hit["_id"]  # `_none_`: not even the id, as on a cluster
        meta = metas.get((position, doc_id))
        if meta is not None and seq_nos:
            hit |= {"_seq_no": meta.seq_no, "_primary_term": PRIMARY_TERM}
        if meta is not None and meta.routing is not None:
            hit["_routing"] = meta.routing
        if fetch_source:
            hit["_source"] = filter_source(source, includes, excludes)
        nested_names = {n: p for n, p in fields_of[position].items() if n.split(".")[0] in nested_paths(view.mappings)}
        values = {n: field_values(source, path) for n, path in fields_of[position].items() if n not in nested_names}
        values |= {n: read(source) for n, read in docvalues_of[position].items()}
        grouped = nested_fields(view, source, nested_names) if nested_names else {}
        if any(values.values()) or grouped:
            hit["fields"] = {n: v for n, v in values.items() if v} | grouped
        for definition in inner[position] if inner else []:
            leaves = mapped_leaves(view.mappings)
            rendered = render_inner_hits(view, doc_id, slot, source, definition, leaves, filter_source, source_filter)
            hit.setdefault("inner_hits", {})[definition.name] = rendered
        hits.append(hit)
    return hits


def run_count(store: Store, views: list[IndexView], body: dict) -> dict:
    for key in body:
        if key != "query":  # Elasticsearch's own answer to any other key of a count body
            raise EsError(400, "parsing_exception", f"request does not support [{key}]")
    count = 0
    for view in views:
        if "query" not in body:
            count += view.count
        else:
            count += int(Matcher(view, store.sources(view)).evaluate(body["query"])[0].sum())
    return {"count": count, "_shards": shards_header(len(views))}
