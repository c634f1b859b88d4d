"""kNN with Elasticsearch's scoring, for the top-level `knn` section and the `knn` query.

Search is approximate where Elasticsearch's is (`ann.py`: an HNSW graph per field, with
`num_candidates` as its beam, quantised codes for the int8 / int4 / bbq types, Lucene's exact
fallback for restrictive filters) and exact for `flat`. Scores follow the dense_vector docs:
cosine `(1 + cos) / 2`, dot_product `(1 + dot) / 2`, l2_norm `1 / (1 + d²)`, max_inner_product
`dot + 1` (or `1 / (1 - dot)` below zero). The `similarity` option is a floor on the raw
similarity (cosine, dot, or a ceiling on the L2 distance), not on the score.
Hits from the float `hnsw` graph are scored exactly; quantised types score with their codes
unless `rescore_vector` asks for the float vectors.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

import numpy as np

from embedded_es.errors import EsError, bad_request, unsupported
from embedded_es.store import IndexView, NestedColumn, VectorColumn

MAX_NUM_CANDIDATES = 10_000
# Read only the eligible rows when fewer than 1 in SUBSET_SHARE documents are eligible: gathering
# rows costs more than one streaming product over the whole matrix unless few are kept (measured
# at 100,000 x 512: a third of the rows gathered 50 ms, the whole product 16 ms, 3% of rows 1 ms).
SUBSET_SHARE = 10
# rescore_vector: the best `k * oversample` quantised candidates rescored with the float vectors.
SECTION_OPTIONS = {"field", "query_vector", "k", "num_candidates", "filter", "similarity", "boost", "rescore_vector"}
QUERY_OPTIONS = SECTION_OPTIONS
SECTION_OPTIONS = SECTION_OPTIONS | {"_name", "inner_hits"}  # the query form's `_name` is read by the query parser


# Query types whose matches depend on the documents alone: a kNN pre-filter made of these is
# kept (as Elasticsearch's query cache keeps filter bitsets) until the index's next write.
PURE_QUERIES = {"term", "terms", "ids", "exists", "match_all", "prefix", "bool"}
BOOL_CLAUSES = {"must", "filter", "should", "must_not"}


class Filters(Protocol):
    def evaluate(self, query: dict) -> tuple[np.ndarray, np.ndarray]: ...


def score_of(similarity: str, raw: np.ndarray) -> np.ndarray:
    if similarity in ("cosine", "dot_product"):
        return (1 + raw) / 2
    if similarity == "l2_norm":
        return 1 / (1 + raw**2)
    return np.where(raw < 0, 1 / (1 - raw), raw + 1)  # max_inner_product


def whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise bad_request(f"[{name}] must be an integer, got [{value}]")
    return int(value)


def query_parse_error(error: EsError) -> EsError:
    """The knn query reports a bad option as its parser does: wrapped in x_content_parse_exception."""
    cause = {"type": error.error_type, "reason": error.reason}
    return EsError(400, "x_content_parse_exception", f"[knn] failed to parse: {error.reason}", caused_by=cause)


def limits(clause: dict, size: int, query_form: bool) -> tuple[int, int]:
    """(how many neighbours the clause matches, num_candidates), validated as Elasticsearch does.
    The top-level section keeps `k` (default: `size`); the query form keeps `k` when given,
    else `num_candidates` per shard (one shard here), and the request's `size` picks the page."""
    k = whole(clause["k"], "k") if clause.get("k") is not None else None
    default_candidates = min(math.ceil(1.5 * (k if k is not None else size)), MAX_NUM_CANDIDATES)
    num_candidates = clause.get("num_candidates")
    num_candidates = whole(num_candidates, "num_candidates") if num_candidates is not None else default_candidates
    if k is not None and k < 1:
        raise bad_request("[k] must be greater than 0")
    if num_candidates < 1:
        raise bad_request("[num_candidates] must be greater than 0")
    if num_candidates > MAX_NUM_CANDIDATES:
        raise bad_request(f"[num_candidates] cannot exceed [{MAX_NUM_CANDIDATES}]")
    if k is not None and num_candidates < k:
        raise bad_request("[num_candidates] cannot be less than [k]")
    if query_form:
        return (k if k is not None else num_candidates), num_candidates
    if k is None and num_candidates < size:
        raise bad_request(f"[num_candidates] cannot be less than [size] ([{num_candidates}] < [{size}])")
    return (k if k is not None else size), num_candidates


def nearest(view: IndexView, filters: Filters, clause: dict, size: int, query_form: bool) -> dict[int, float]:
    """The clause's nearest documents among those its `filter` lets through (a pre-filter),
    as {slot: boosted score}."""
    if not isinstance(clause, dict):
        raise bad_request("[knn] must be an object")
    unknown = set(clause) - (QUERY_OPTIONS if query_form else SECTION_OPTIONS)
    if unknown:
        raise unsupported("the knn option", sorted(unknown)[0])
    rescore = clause.get("rescore_vector", {"oversample": 1.0})
    oversample = rescore.get("oversample") if isinstance(rescore, dict) else None
    if (
        not isinstance(oversample, (int, float))
        or isinstance(oversample, bool)
        or not (oversample == 0 or oversample >= 1)
    ):
        raise bad_request(f"[rescore_vector] requires [oversample] to be 0 or at least 1, got [{oversample}]")
    for required in ("field", "query_vector"):
        if required not in clause:
            raise bad_request(f"[knn] requires [{required}]")
    name = clause["field"]
    if not isinstance(name, str):
        raise bad_request(f"[knn] [field] must be a field name, got [{name}]")
    for option in ("similarity", "boost"):
        value = clause.get(option)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise bad_request(f"[knn] [{option}] must be a number, got [{value}]")
    try:
        count, num_candidates = limits(clause, size, query_form)
    except EsError as error:
        raise (query_parse_error(error) if query_form else error) from None
    column = view.columns.get(name) or view.nested.get(name)
    if "inner_hits" in clause and not isinstance(column, NestedColumn):
        raise bad_request(f"[inner_hits] can only be used with a knn search on a nested field, [{name}] is not one")
    if column is not None and not column.indexed:
        raise bad_request(f"to perform knn search on field [{name}], its mapping must have [index] set to [true]")
    if column is None:
        kind = view.field_type(name)
        if kind is None or kind == "dense_vector":  # unmapped, or no document yet gave it a dimension
            return {}
        raise bad_request(f"[knn] queries are only supported on [dense_vector] fields, [{name}] is of type [{kind}]")
    try:
        query = np.asarray(clause["query_vector"], dtype=np.float32)
    except (TypeError, ValueError):
        raise bad_request("[query_vector] must be an array of numbers") from None
    if query.ndim != 1 or len(query) != column.dims:
        raise bad_request(
            f"The query vector has a different number of dimensions [{query.size}] than the document vectors "
            f"[{column.dims}]."
        )
    if column.similarity == "cosine" and not np.any(query):
        raise bad_request("The [cosine] similarity does not support vectors with zero magnitude.")
    used = len(view.ids)
    filters_given = clause.get("filter", [])
    filters_given = filters_given if isinstance(filters_given, list) else [filters_given]
    floor = None if clause.get("similarity") is None else float(clause["similarity"])
    boost = 1.0 if clause.get("boost") is None else float(clause["boost"])
    if isinstance(column, NestedColumn):
        parents = parent_filter(view, filters, filters_given, used)
        return nested_nearest(view, column, name, query, parents, bool(filters_given), count, num_candidates,
                              floor, boost)  # fmt: skip
    eligible = pre_filter(view, filters, filters_given, name, column, used)
    found = None
    if column.kind != "flat" and view.graph_of is not None:
        given = eligible if filters_given else None
        found = approximate(view, column, name, query, given, count, num_candidates, clause)
    slots, raw = found if found is not None else exact(column, query, eligible, used)
    if floor is not None:
        kept = raw <= floor if column.similarity == "l2_norm" else raw >= floor
        slots, raw = slots[kept], raw[kept]
    take = min(count, len(raw))
    if take == 0:
        return {}
    # The score is monotonic in the raw similarity: pick the top first, score only those.
    cost = raw if column.similarity == "l2_norm" else -raw
    picked = np.argpartition(cost, take - 1)[:take]
    scores = score_of(column.similarity, raw[picked]).astype(np.float32)
    return {int(s): float(v) * boost for s, v in zip(slots[picked], scores)}


def pure(query: Any) -> bool:
    """A filter whose matches depend on the stored documents only (no `now`, no script, no
    nested kNN, no `_name` to report)."""
    if not isinstance(query, dict) or len(query) != 1:
        return False
    ((kind, spec),) = query.items()
    if kind not in PURE_QUERIES or (isinstance(spec, dict) and "_name" in spec):
        return False
    if kind != "bool":
        return True
    clauses = [spec.get(name, []) for name in BOOL_CLAUSES] if isinstance(spec, dict) else [None]
    return all(pure(q) for c in clauses for q in (c if isinstance(c, list) else [c]))


def pre_filter(view: IndexView, filters: Filters, given: list, name: str, column: VectorColumn, used: int
               ) -> np.ndarray:  # fmt: skip
    """The used slots that hold a vector in the field and that every filter lets through. A
    pure filter's mask is kept on the view until its next write, read-only: the same object
    again, so the graph's selector built from it is reused too (a repeated filter costs a
    lookup, as with Elasticsearch's query cache)."""
    key = json.dumps([name, given], sort_keys=True) if all(pure(f) for f in given) else None
    cached = view.knn_filters.get(key) if key is not None else None
    if cached is not None and len(cached) == used:
        return cached
    mask = view.live[:used] & column.present[:used]
    for f in given:
        mask &= filters.evaluate(f)[0][:used]
    if key is not None:
        mask.flags.writeable = False
        view.knn_filters[key] = mask
    return mask


def exact(column: VectorColumn, query: np.ndarray, eligible: np.ndarray, used: int) -> tuple[np.ndarray, np.ndarray]:
    """Every eligible document with its raw similarity to the query, over the float vectors."""
    if int(eligible.sum()) * SUBSET_SHARE < used:
        # A pre-filter that keeps few documents: compare with their rows only, which makes a
        # filtered query cheaper than an unfiltered one instead of dearer.
        slots = np.flatnonzero(eligible)
        return slots, column.raw_similarity(query, used, slots)
    raw = column.raw_similarity(query, used)
    return np.flatnonzero(eligible), raw[eligible]


def oversample_of(clause: dict, column: VectorColumn) -> float:
    """How many times `k` quantised candidates are rescored with the float vectors (0: none):
    the query's `rescore_vector`, else the field's (bbq types: 3, as from 9.1)."""
    given = clause.get("rescore_vector") or column.spec.get("index_options", {}).get("rescore_vector") or {}
    return float(given.get("oversample", 0))


def approximate(
    view: IndexView, column: VectorColumn, name: str, query: np.ndarray, eligible: np.ndarray | None,
    count: int, num_candidates: int, clause: dict,
) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """Candidates from the field's graph (or its codes, for the quantised flat types), with
    `num_candidates` as the beam, then rescored with the float vectors: always for `hnsw`
    (its scores are exact), for quantised types the best `k * oversample` when asked.
    None: Lucene would search exactly here (the float `hnsw` type's fallback)."""
    assert view.graph_of is not None
    oversample = oversample_of(clause, column) if column.kind != "hnsw" else 0.0
    rescored = math.ceil(count * oversample) if oversample >= 1 else 0
    pool = min(max(num_candidates, rescored), MAX_NUM_CANDIDATES)
    unit = query / np.linalg.norm(query) if column.similarity == "cosine" else query
    found = view.graph_of(name).search(unit, eligible, pool, eligible is not None)
    if found is None:
        return None
    slots, raw = found
    used = len(view.ids)
    if column.kind == "hnsw":
        return slots, column.raw_similarity(query, used, slots)
    if rescored:
        order = np.argsort(raw if column.similarity == "l2_norm" else -raw, kind="stable")[:rescored]
        slots = slots[order]
        return slots, column.raw_similarity(query, used, slots)
    return slots, raw


# --- nested kNN ----------------------------------------------------------------------------


def parent_filter(view: IndexView, filters: Filters, given: list, used: int) -> np.ndarray:
    """The live documents that every filter lets through (a nested kNN's filter is on the parents)."""
    mask = view.live[:used].copy()
    for f in given:
        mask &= filters.evaluate(f)[0][:used]
    return mask


def best_per_parent(column: NestedColumn, rows: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(parent slots, raw similarity of each one's best object), best first; ties: the earlier row."""
    order = np.argsort(raw if column.similarity == "l2_norm" else -raw, kind="stable")
    parents = column.parent[rows[order]]
    _, first = np.unique(parents, return_index=True)
    first.sort()  # back in best-first order
    return parents[first], raw[order][first]


def nested_nearest(
    view: IndexView, column: NestedColumn, name: str, query: np.ndarray, parents: np.ndarray, filtered: bool,
    count: int, num_candidates: int, floor: float | None, boost: float,
) -> dict[int, float]:  # fmt: skip
    """The `count` parents whose best object is nearest (score_mode max, the only one a nested
    kNN has), as {slot: boosted score}. The graph's nodes are objects; as Lucene's diversifying
    child search does, the beam keeps `num_candidates` distinct parents, so the search is widened
    until it holds that many (or every eligible object). Scores are always the float vectors'."""
    total = column.rows
    eligible = column.present[:total] & parents[column.parent[:total]] if total else np.zeros(0, bool)
    eligible_count = int(np.count_nonzero(eligible))
    if eligible_count == 0:
        return {}
    found = None
    if column.kind != "flat" and view.graph_of is not None:
        graph = view.graph_of(name)
        unit = query / np.linalg.norm(query) if column.similarity == "cosine" else query
        pool = num_candidates
        given = eligible if filtered else None
        while True:
            found = graph.search(unit, given, min(pool, eligible_count), filtered)
            if found is None or len(found[0]) == 0:
                break
            distinct = len(np.unique(column.parent[found[0]]))
            if distinct >= num_candidates or pool >= eligible_count:
                break
            pool *= 2
        if found is not None:
            found = (found[0], column.raw_similarity(query, total, found[0]))
    if found is None:  # flat, or Lucene's exact fallback
        rows = np.flatnonzero(eligible)
        found = rows, column.raw_similarity(query, total, rows)
    slots, raw = best_per_parent(column, *found)
    slots, raw = slots[:num_candidates], raw[:num_candidates]
    if floor is not None:
        kept = raw <= floor if column.similarity == "l2_norm" else raw >= floor
        slots, raw = slots[kept], raw[kept]
    slots, raw = slots[:count], raw[:count]
    scores = score_of(column.similarity, raw).astype(np.float32)
    return {int(s): float(v) * boost for s, v in zip(slots, scores)}


def object_scores(view: IndexView, clause: dict, slot: int) -> list[tuple[int, float]]:
    """A parent's objects scored against a nested kNN clause, best first (ties: array order),
    as inner hits show them: every object with a vector, exactly, above the `similarity` floor."""
    column = view.nested[clause["field"]]
    rows = column.rows_of.get(slot)
    if rows is None or not len(rows):
        return []
    query = np.asarray(clause["query_vector"], np.float32)
    raw = column.raw_similarity(query, column.rows, rows)
    floor = clause.get("similarity")
    if floor is not None:
        kept = raw <= float(floor) if column.similarity == "l2_norm" else raw >= float(floor)
        rows, raw = rows[kept], raw[kept]
    boost = 1.0 if clause.get("boost") is None else float(clause["boost"])
    scores = score_of(column.similarity, raw).astype(np.float32) * np.float32(boost)
    found = [(int(column.offset[r]), float(s)) for r, s in zip(rows, scores)]
    return sorted(found, key=lambda item: (-item[1], item[0]))
