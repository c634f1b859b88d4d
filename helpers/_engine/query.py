"""The query DSL subset: which documents match, and with what score.

Leaf queries score a constant (1.0 times `boost`), as `terms`, `range`, `ids`, `prefix`, `exists` and
`match_all` do in Elasticsearch. `term` scores with BM25 there; here it scores 1.0 too.
`match` and `multi_match` score with BM25 (see `text.py`); `script_score` runs the one script
exact kNN needs, `cosineSimilarity(params.<name>, '<field>') + 1.0` (or `dotProduct`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from helpers._engine.errors import bad_request, unsupported
from helpers._engine.knn import nearest
from helpers._engine.store import IndexView
from helpers._engine.text import analyze, bm25

Result = tuple[np.ndarray, np.ndarray]  # (matches: bool per slot, scores: float32 per slot)
NUMERIC_TYPES = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
DATE_MATH = re.compile(r"^now(?:([+-]\d+)([yMwdhHms]))?(?:/([yMwdhHms]))?$")
SIMILARITY_SCRIPT = re.compile(
    r"""^\s*(cosineSimilarity|dotProduct)\(\s*params\.(\w+)\s*,\s*['"]([\w.]+)['"]\s*\)\s*\+\s*1(?:\.0)?\s*$"""
)
# The options each query honours; any other is refused by name (field-keyed queries list
# the options of their per-field object).
QUERY_OPTIONS = {
    "match_all": {"boost"},
    "ids": {"values", "boost"},
    "exists": {"field", "boost"},
    "constant_score": {"filter", "boost"},
    "script_score": {"query", "script", "boost"},
}
FIELD_OPTIONS = {"term": {"value", "boost"}, "prefix": {"value", "boost"}, "terms": set()}
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "H": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


def field_values(source: dict | None, path: str) -> list[Any]:
    """All values at a dotted path, arrays flattened: how Elasticsearch sees a field."""
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    if value is None:
        return []
    return [v for v in (value if isinstance(value, list) else [value]) if v is not None]


def to_millis(value: Any) -> float:
    """Dates as epoch milliseconds: ISO 8601 strings, epoch-millis numbers, or `now-7d`."""
    if isinstance(value, bool):
        raise bad_request(f"failed to parse date field [{value}]")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    match = DATE_MATH.match(text)
    if match:
        moment = datetime.now(timezone.utc)
        if match.group(1):
            moment += timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])
        if match.group(3):  # rounding: to whole days is what filters use; finer units truncate
            unit = UNIT_SECONDS[match.group(3)]
            moment = datetime.fromtimestamp(moment.timestamp() // unit * unit, timezone.utc)
        return moment.timestamp() * 1000
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"failed to parse date field [{text}] with format [strict_date_optional_time||epoch_millis]"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp() * 1000


def comparable(value: Any, field_type: str | None) -> Any:
    if field_type == "date":
        return to_millis(value)
    if field_type in NUMERIC_TYPES:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"failed to parse [{value}] as a number") from None
    if field_type == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value if isinstance(value, str) else str(value) if not isinstance(value, bool) else str(value).lower()


class Matcher:
    """Evaluates queries against one index's live documents."""

    def __init__(self, view: IndexView, sources: list[dict | None], size: int = 10) -> None:
        self.view, self.size = view, size  # size: the request's, the knn query's default k
        self.ids, self.live, self.columns, self.sources = view.ids, view.live, view.columns, sources
        self.properties = view.mappings.get("properties", {})

    def resolve(self, name: str) -> tuple[str, str | None]:
        """(path in the source, mapping type) of a field; a multi-field such as `labels.text`
        reads its parent's value (`labels`) and analyses it its own way."""
        spec: dict = {"properties": self.properties}
        path = []
        for part in name.split("."):
            if part in spec.get("properties", {}):
                spec = spec["properties"][part]
                path.append(part)
            elif part in spec.get("fields", {}):
                spec = spec["fields"][part]
            else:
                return name, None
        return ".".join(path), spec.get("type")

    def constant(self, predicate, boost: float = 1.0) -> Result:
        matches = np.zeros(len(self.live), bool)
        for slot in np.flatnonzero(self.live):
            matches[slot] = predicate(self.sources[slot], self.ids[slot])
        return matches, np.where(matches, np.float32(boost), np.float32(0))

    @staticmethod
    def values(source: dict | None, name: str, kind: str | None) -> list[Any]:
        """A document's values of a field, comparable as the mapping types them."""
        return [comparable(v, kind) for v in field_values(source, name)]

    def evaluate(self, query: dict) -> Result:
        if not isinstance(query, dict) or len(query) != 1:
            raise bad_request(f"a query must be an object with one query type, got {query!r}")
        ((kind, spec),) = query.items()
        handler = getattr(self, f"q_{kind}", None)
        if handler is None:
            raise unsupported(f"the [{kind}] query")
        if kind in QUERY_OPTIONS and isinstance(spec, dict) and set(spec) - QUERY_OPTIONS[kind]:
            raise unsupported(f"{kind} options {sorted(set(spec) - QUERY_OPTIONS[kind])}")
        return handler(spec or {})

    def q_match_all(self, spec: dict) -> Result:
        return self.live.copy(), np.where(self.live, np.float32(spec.get("boost", 1.0)), np.float32(0))

    def q_ids(self, spec: dict) -> Result:
        wanted = set(spec.get("values", []))
        return self.constant(lambda source, doc_id: doc_id in wanted, spec.get("boost", 1.0))

    def _field_spec(self, spec: dict, name: str) -> tuple[str, Any, float]:
        fields = {k: v for k, v in spec.items() if k != "boost"}
        if len(fields) != 1:
            raise bad_request(f"[{name}] query must name exactly one field")
        ((field, value),) = fields.items()
        boost = spec.get("boost", 1.0)
        if isinstance(value, dict):
            boost = value.get("boost", boost)
            allowed = FIELD_OPTIONS.get(name)
            if allowed is not None and set(value) - allowed:
                raise unsupported(f"{name} options {sorted(set(value) - allowed)}")
        return field, value, boost

    def q_term(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "term")
        if isinstance(value, dict):
            value = value.get("value")
        path, kind = self.resolve(field)  # once per query, not once per document
        target = comparable(value, kind)
        return self.constant(lambda source, _: target in self.values(source, path, kind), boost)

    def q_terms(self, spec: dict) -> Result:
        field, values, boost = self._field_spec(spec, "terms")
        if not isinstance(values, list):
            raise bad_request("[terms] query takes a list of values")
        path, kind = self.resolve(field)
        targets = {comparable(v, kind) for v in values}
        return self.constant(lambda source, _: bool(targets.intersection(self.values(source, path, kind))), boost)

    def q_prefix(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "prefix")
        start = str(value.get("value", "") if isinstance(value, dict) else value)
        path, _ = self.resolve(field)
        return self.constant(lambda source, _: any(str(v).startswith(start) for v in field_values(source, path)), boost)

    def q_exists(self, spec: dict) -> Result:
        path, _ = self.resolve(spec.get("field", ""))
        return self.constant(lambda source, _: bool(field_values(source, path)), spec.get("boost", 1.0))

    def q_range(self, spec: dict) -> Result:
        field, bounds, boost = self._field_spec(spec, "range")
        path, kind = self.resolve(field)
        known = {"gt", "gte", "lt", "lte", "boost", "format", "time_zone"}
        if set(bounds) - known:
            raise unsupported(f"range options {sorted(set(bounds) - known)}")
        limits = {op: comparable(bounds[op], kind) for op in ("gt", "gte", "lt", "lte") if op in bounds}

        def within(value: Any) -> bool:
            return (
                ("gt" not in limits or value > limits["gt"])
                and ("gte" not in limits or value >= limits["gte"])
                and ("lt" not in limits or value < limits["lt"])
                and ("lte" not in limits or value <= limits["lte"])
            )

        return self.constant(lambda source, _: any(within(v) for v in self.values(source, path, kind)), boost)

    def q_constant_score(self, spec: dict) -> Result:
        matches, _ = self.evaluate(spec["filter"])
        return matches, np.where(matches, np.float32(spec.get("boost", 1.0)), np.float32(0))

    def q_bool(self, spec: dict) -> Result:
        def clauses(key: str) -> list[dict]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        unknown = set(spec) - {"must", "filter", "should", "must_not", "minimum_should_match", "boost"}
        if unknown:
            raise unsupported(f"bool options {sorted(unknown)}")
        matches = self.live.copy()
        scores = np.zeros(len(self.live), np.float32)
        for clause in clauses("must"):
            m, s = self.evaluate(clause)
            matches &= m
            scores += s
        for clause in clauses("filter"):
            matches &= self.evaluate(clause)[0]
        for clause in clauses("must_not"):
            matches &= ~self.evaluate(clause)[0]
        should = [self.evaluate(c) for c in clauses("should")]
        if should:
            hits = np.sum([m for m, _ in should], axis=0)
            default = 0 if (clauses("must") or clauses("filter")) else 1
            minimum = int(spec.get("minimum_should_match", default))
            matches &= hits >= minimum
            scores += np.sum([s for _, s in should], axis=0)
        scores *= np.float32(spec.get("boost", 1.0))
        return matches, np.where(matches, scores, np.float32(0))

    def text_match(self, field: str, query: str, require_all: bool, boost: float) -> Result:
        """BM25 of `query` against one `text` field (analysed) or `keyword` field (one term)."""
        path, kind = self.resolve(field)
        if kind not in ("text", "keyword"):
            raise unsupported(f"[match] on field [{field}] of type [{kind}] (only text and keyword)")
        prepare: Callable[[list], list[str]] = (
            (lambda values: analyze(" ".join(map(str, values)))) if kind == "text" else (lambda values: values)
        )
        # None: a deleted slot, or a document without a value (it does not count in BM25's averages).
        documents = [
            (prepare([str(v) for v in field_values(self.sources[slot], path)]) or None) if self.live[slot] else None
            for slot in range(len(self.live))
        ]
        terms = analyze(query) if kind == "text" else [query]
        matches, scores = bm25(documents, terms, require_all, norms=kind == "text")
        return matches, scores * np.float32(boost)

    def q_match(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "match")
        options = value if isinstance(value, dict) else {"query": value}
        unknown = set(options) - {"query", "operator", "boost"}
        if unknown:
            raise unsupported(f"match options {sorted(unknown)}")
        require_all = str(options.get("operator", "or")).lower() == "and"
        return self.text_match(field, str(options.get("query", "")), require_all, boost)

    def q_multi_match(self, spec: dict) -> Result:
        """`best_fields` (the default: the best field's score, plus `tie_breaker` times the
        others') and `most_fields` (the sum)."""
        unknown = set(spec) - {"query", "fields", "type", "operator", "boost", "tie_breaker"}
        if unknown:
            raise unsupported(f"multi_match options {sorted(unknown)}")
        kind = spec.get("type", "best_fields")
        if kind not in ("best_fields", "most_fields"):
            raise unsupported(f"multi_match of type [{kind}]")
        if not spec.get("fields"):
            raise unsupported("multi_match without [fields]")
        require_all = str(spec.get("operator", "or")).lower() == "and"
        per_field = []
        for entry in spec["fields"]:
            name, _, weight = entry.partition("^")
            matches, scores = self.text_match(name, str(spec.get("query", "")), require_all, float(weight or 1))
            per_field.append((matches, scores))
        matches = np.any([m for m, _ in per_field], axis=0)
        all_scores = np.array([s for _, s in per_field])
        best = all_scores.max(axis=0)
        tie = 1.0 if kind == "most_fields" else float(spec.get("tie_breaker", 0.0))
        scores = best + tie * (all_scores.sum(axis=0) - best)
        return matches, np.where(matches, scores * np.float32(spec.get("boost", 1.0)), 0).astype(np.float32)

    def q_knn(self, spec: dict) -> Result:
        """The guide's `query: {"knn": ...}`: the nearest documents (its `filter` a pre-filter),
        scored as the top-level section scores them; other clauses of a parent query filter after."""
        found = nearest(self.view, self, spec, self.size, query_form=True)
        matches = np.zeros(len(self.live), bool)
        scores = np.zeros(len(self.live), np.float32)
        if found:
            slots = np.fromiter(found, np.int64, len(found))
            matches[slots] = True
            scores[slots] = np.fromiter(found.values(), np.float32, len(found))
        return matches, scores

    def q_script_score(self, spec: dict) -> Result:
        """Exact kNN as Elasticsearch documents it: similarity to a query vector, plus 1."""
        matches, _ = self.evaluate(spec.get("query", {"match_all": {}}))
        script = spec.get("script", {})
        parsed = SIMILARITY_SCRIPT.match(script.get("source", "") if isinstance(script, dict) else "")
        if parsed is None:
            raise unsupported("scripts other than `cosineSimilarity(params.<vector>, '<field>') + 1.0` (or dotProduct)")
        function, parameter, field = parsed.groups()
        column = self.columns.get(field)
        if column is None:
            raise bad_request(f"field [{field}] is not a dense_vector field")
        query = np.asarray(script.get("params", {}).get(parameter), np.float32)
        if query.ndim != 1 or len(query) != column.dims:
            raise bad_request(f"the query vector has [{query.size}] dimensions, the field [{column.dims}]")
        used = len(self.ids)
        rows = column.matrix[:used]
        raw = rows @ (query / np.linalg.norm(query)) if function == "cosineSimilarity" else rows @ query
        matches = matches & column.present  # same length as `live`: both grow together
        scores = np.zeros(len(self.live), np.float32)
        scores[:used] = (raw + 1) * spec.get("boost", 1.0)
        return matches, np.where(matches, scores, np.float32(0))
