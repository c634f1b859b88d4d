"""The query DSL subset: which documents match, and with what score.

Leaf queries score a constant (1.0 times `boost`), as `terms`, `range`, `ids`, `prefix`, `exists` and
`match_all` do in Elasticsearch. `term` scores with BM25 there; here it scores 1.0 too.
`match` and `multi_match` score with BM25 (see `text.py`); `script_score` runs the scripts exact
kNN needs (see `scripts.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from embedded_es import scripts
from embedded_es.errors import EsError, bad_request, unsupported
from embedded_es.knn import nearest
from embedded_es.store import IndexView
from embedded_es.text import analyze, bm25

Result = tuple[np.ndarray, np.ndarray]  # (matches: bool per slot, scores: float32 per slot)
NUMERIC_TYPES = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
DATE_MATH = re.compile(r"^now(?:([+-]\d+)([yMwdhHms]))?(?:/([yMwdhHms]))?$")
# The options each query honours; any other is refused by name (field-keyed queries list
# the options of their per-field object).
QUERY_OPTIONS = {
    "match_all": {"boost"},
    "ids": {"values", "boost"},
    "exists": {"field", "boost"},
    "constant_score": {"filter", "boost"},
    "script_score": {"query", "script", "boost"},
    "dis_max": {"queries", "tie_breaker", "boost"},
    "function_score": {"query", "functions", "weight", "score_mode", "boost_mode", "max_boost", "min_score", "boost"},
}
FIELD_KEYED = {"term", "prefix", "range", "match"}
SCORE_MODES = {"multiply", "sum", "max", "min", "first"}
BOOST_MODES = {"multiply", "replace", "sum", "avg", "max", "min"}
FIELD_OPTIONS = {"term": {"value", "term", "boost"}, "prefix": {"value", "boost"}, "terms": set()}
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "H": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


def malformed(reason: str) -> EsError:
    return EsError(400, "parsing_exception", reason)


def number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise malformed(f"[{name}] must be a number, got [{value}]")
    try:
        return float(value)
    except ValueError:
        raise malformed(f"[{name}] must be a number, got [{value}]") from None


def named(kind: str, spec: Any) -> tuple[Any, str | None]:
    """A query's spec without its `_name` (at the top, or inside the field's object for
    field-keyed queries), and that name."""
    if not isinstance(spec, dict):
        return spec, None
    if "_name" in spec:
        return {k: v for k, v in spec.items() if k != "_name"}, str(spec["_name"])
    fields = [k for k in spec if k != "boost"]
    if kind in FIELD_KEYED and len(fields) == 1 and isinstance(spec[fields[0]], dict) and "_name" in spec[fields[0]]:
        inner = spec[fields[0]]
        return {**spec, fields[0]: {k: v for k, v in inner.items() if k != "_name"}}, str(inner["_name"])
    return spec, None


def combine_functions(mode: Any, weights: list[float], masks: list[np.ndarray], size: int) -> np.ndarray:
    if mode not in SCORE_MODES:
        if mode == "avg":
            raise unsupported("the query option", "score_mode: avg", "of [function_score]")
        raise malformed(f"[function_score] illegal score_mode [{mode}]")
    any_match = np.any(masks, axis=0) if masks else np.zeros(size, bool)
    if mode == "first":
        factor = np.ones(size)
        for weight, mask in reversed(list(zip(weights, masks))):
            factor = np.where(mask, weight, factor)
        return factor
    stacked = np.array([np.where(mask, weight, np.nan) for weight, mask in zip(weights, masks)]) if masks else None
    if stacked is None:
        return np.ones(size)
    with np.errstate(all="ignore"):
        reduce = {"multiply": np.nanprod, "sum": np.nansum, "max": np.nanmax, "min": np.nanmin}[mode]
        factor = reduce(stacked, axis=0)
    return np.where(any_match, factor, 1.0)  # no function matched: the factor is 1


def apply_boost_mode(mode: Any, query: np.ndarray, factor: np.ndarray) -> np.ndarray:
    if mode not in BOOST_MODES:
        raise malformed(f"[function_score] illegal boost_mode [{mode}]")
    return {
        "multiply": lambda: query * factor,
        "replace": lambda: factor.copy(),
        "sum": lambda: query + factor,
        "avg": lambda: (query + factor) / 2,
        "max": lambda: np.maximum(query, factor),
        "min": lambda: np.minimum(query, factor),
    }[mode]()


def should_minimum(value: Any, clauses: int) -> int:
    """`minimum_should_match` as a count of `should` clauses: 2, "2", "-1", "75%" or "-25%"."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    percent = text.endswith("%")
    digits = text.rstrip("%")
    if not digits.lstrip("-").isdigit():
        raise malformed(f"[minimum_should_match] must be a number or a percentage, got [{value}]")
    amount = int(digits)
    count = int(clauses * abs(amount) / 100) if percent else abs(amount)
    return max(0, clauses - count) if amount < 0 else count


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
        moment = datetime.now(UTC)
        if match.group(1):
            moment += timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])
        if match.group(3):  # rounding: to whole days is what filters use; finer units truncate
            unit = UNIT_SECONDS[match.group(3)]
            moment = datetime.fromtimestamp(moment.timestamp() // unit * unit, UTC)
        return moment.timestamp() * 1000
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"failed to parse date field [{text}] with format [strict_date_optional_time||epoch_millis]"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
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

    def __init__(self, view: IndexView, sources: list[dict | None], size: int = 10, scope: str = "") -> None:
        self.view, self.size = view, size  # size: the request's, the knn query's default k
        self.scope = scope  # the nested path whose objects this matcher sees ("": top-level documents)
        self.named: list[tuple[str, np.ndarray]] = []  # `_name`d queries and the documents each matched
        self.inner: list = []  # the InnerHits that nested queries (and nested kNN) asked for
        self.ids, self.live, self.columns, self.sources = view.ids, view.live, view.columns, sources
        self.properties = view.mappings.get("properties", {})

    def field(self, name: str) -> tuple[str, str | None, dict]:
        """(path in the source, mapping type, mapping) of a field; a multi-field such as
        `labels.text` reads its parent's value (`labels`) and analyses it its own way."""
        spec: dict = {"properties": self.properties}
        path = []
        parts = name.split(".")
        for i, part in enumerate(parts):
            if part in spec.get("properties", {}):
                spec = spec["properties"][part]
                path.append(part)
                if spec.get("type") == "nested" and i < len(parts) - 1 and ".".join(path) != self.scope:
                    return name, None, {}  # a nested object's field is seen only inside its nested query
            elif part in spec.get("fields", {}):
                spec = spec["fields"][part]
            else:
                return name, None, {}
        return ".".join(path), spec.get("type", "object"), spec

    def resolve(self, name: str) -> tuple[str, str | None]:
        path, kind, _ = self.field(name)
        return path, kind

    def indexed(self, source: dict | None, name: str, resolved: tuple | None = None) -> list[Any]:
        """A document's indexed terms for a field, as term-level queries see them: a text
        field's tokens, a keyword's values up to `ignore_above`, other values typed."""
        path, kind, spec = resolved or self.field(name)
        values = field_values(source, path)
        if kind == "text":
            return analyze(" ".join(map(str, values)), spec.get("analyzer", "standard"))
        if kind == "keyword" and "ignore_above" in spec:
            values = [v for v in values if len(str(v)) <= spec["ignore_above"]]
        return [comparable(v, kind) for v in values]

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
            raise unsupported("the query", kind)
        if not isinstance(spec, dict) and not (spec is None and kind == "match_all"):
            raise malformed(f"[{kind}] query malformed, no start_object after query name")
        spec, name = named(kind, spec)
        if isinstance(spec, dict) and "boost" in spec:
            number(spec["boost"], "boost")
        if kind in QUERY_OPTIONS and isinstance(spec, dict) and set(spec) - QUERY_OPTIONS[kind]:
            raise unsupported("the query option", sorted(set(spec) - QUERY_OPTIONS[kind])[0], f"of [{kind}]")
        result = handler(spec or {})
        if name is not None:
            self.named.append((name, result[0]))
        return result

    def q_dis_max(self, spec: dict) -> Result:
        """The best clause's score, plus `tie_breaker` times the others'."""
        queries = spec.get("queries")
        if not isinstance(queries, list) or not queries:
            raise malformed("[dis_max] requires [queries], a non-empty array of queries")
        tie = number(spec.get("tie_breaker", 0.0), "tie_breaker")
        results = [self.evaluate(q) for q in queries]
        matches = np.any([m for m, _ in results], axis=0)
        scores = np.array([s for _, s in results], np.float32)
        best = scores.max(axis=0)
        total = (best + tie * (scores.sum(axis=0) - best)) * np.float32(number(spec.get("boost", 1.0), "boost"))
        return matches, np.where(matches, total, 0).astype(np.float32)

    def q_function_score(self, spec: dict) -> Result:
        """`function_score` with `weight` functions, each behind an optional `filter`: the
        functions that match a document combine by `score_mode` (1 if none matches), then
        with the query's score by `boost_mode`."""
        matches, query_scores = self.evaluate(spec.get("query") or {"match_all": {}})
        functions = spec.get("functions", [{"weight": spec["weight"]}] if "weight" in spec else [])
        if not isinstance(functions, list) or not all(isinstance(f, dict) for f in functions):
            raise malformed("[function_score] [functions] must be an array of objects")
        weights, masks = [], []
        for function in functions:
            unknown = set(function) - {"filter", "weight"}
            if unknown:
                raise unsupported("the query option", sorted(unknown)[0], "of a [function_score] function")
            weights.append(number(function.get("weight", 1.0), "weight"))
            masks.append(self.evaluate(function["filter"])[0] if "filter" in function else self.live.copy())
        factor = combine_functions(spec.get("score_mode", "multiply"), weights, masks, len(self.live))
        if "max_boost" in spec:
            factor = np.minimum(factor, number(spec["max_boost"], "max_boost"))
        scores = apply_boost_mode(spec.get("boost_mode", "multiply"), query_scores.astype(np.float64), factor)
        scores *= number(spec.get("boost", 1.0), "boost")
        if "min_score" in spec:
            matches = matches & (scores >= number(spec["min_score"], "min_score"))
        return matches, np.where(matches, scores, 0).astype(np.float32)

    def q_match_all(self, spec: dict) -> Result:
        return self.live.copy(), np.where(self.live, np.float32(spec.get("boost", 1.0)), np.float32(0))

    def q_ids(self, spec: dict) -> Result:
        values = spec.get("values", [])
        if not isinstance(values, list) or any(isinstance(v, (dict, list)) or v is None for v in values):
            raise malformed("[ids] query takes [values], an array of document ids")
        wanted = {str(v) for v in values}
        return self.constant(lambda source, doc_id: doc_id in wanted, spec.get("boost", 1.0))

    def _field_spec(self, spec: dict, name: str) -> tuple[str, Any, float]:
        fields = {k: v for k, v in spec.items() if k != "boost"}
        if len(fields) != 1:
            raise bad_request(f"[{name}] query must name exactly one field")
        ((field, value),) = fields.items()
        boost = number(spec.get("boost", 1.0), "boost")
        if name == "range" and not isinstance(value, dict):
            raise malformed(f"[range] query malformed, after field [{field}] no start_object")
        if isinstance(value, (dict, list)) and name in ("term", "prefix", "match") and not isinstance(value, dict):
            raise malformed(f"[{name}] query does not support array of values for field [{field}]")
        if isinstance(value, dict):
            boost = number(value.get("boost", boost), "boost")
            allowed = FIELD_OPTIONS.get(name)
            if allowed is not None and set(value) - allowed:
                raise unsupported("the query option", sorted(set(value) - allowed)[0], f"of [{name}]")
        return field, value, boost

    def postings(self, name: str) -> dict[Any, np.ndarray]:
        """{indexed term: slots holding it} for a field, built in one pass and kept on the
        view until the next write: a term filter then costs a lookup, not a scan."""
        if name not in self.view.postings:
            resolved = self.field(name)
            found: dict[Any, list[int]] = {}
            for slot in np.flatnonzero(self.live):
                for term in set(self.indexed(self.sources[slot], name, resolved)):
                    found.setdefault(term, []).append(int(slot))
            self.view.postings[name] = {term: np.asarray(slots, np.int64) for term, slots in found.items()}
        return self.view.postings[name]

    def holding(self, name: str, targets: list[Any], boost: float) -> Result:
        """Documents holding any of the terms, scored `boost` (term-level queries score constant)."""
        postings = self.postings(name)
        matches = np.zeros(len(self.live), bool)
        for target in targets:
            slots = postings.get(target)
            if slots is not None:
                matches[slots] = True
        matches &= self.live
        return matches, np.where(matches, np.float32(boost), np.float32(0))

    def q_term(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "term")
        if isinstance(value, dict):
            value = value.get("value", value.get("term"))  # `term` is the older name of `value`
        _, kind = self.resolve(field)
        return self.holding(field, [comparable(value, kind)], boost)

    def q_terms(self, spec: dict) -> Result:
        field, values, boost = self._field_spec(spec, "terms")
        if not isinstance(values, list):
            raise bad_request("[terms] query takes a list of values")
        _, kind = self.resolve(field)
        return self.holding(field, [comparable(v, kind) for v in values], boost)

    def q_prefix(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "prefix")
        start = str(value.get("value", "") if isinstance(value, dict) else value)
        path, _ = self.resolve(field)
        return self.constant(lambda source, _: any(str(v).startswith(start) for v in field_values(source, path)), boost)

    def q_exists(self, spec: dict) -> Result:
        if not isinstance(spec.get("field"), str):
            raise malformed("[exists] must be provided with a [field]")
        path, _ = self.resolve(spec["field"])
        return self.constant(lambda source, _: bool(field_values(source, path)), spec.get("boost", 1.0))

    def q_range(self, spec: dict) -> Result:
        field, bounds, boost = self._field_spec(spec, "range")
        path, kind = self.resolve(field)
        known = {"gt", "gte", "lt", "lte", "boost"}
        if set(bounds) - known:
            raise unsupported("the query option", sorted(set(bounds) - known)[0], "of [range]")
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
        if "filter" not in spec:
            raise malformed("[constant_score] requires a 'filter' element")
        matches, _ = self.evaluate(spec["filter"])
        return matches, np.where(matches, np.float32(spec.get("boost", 1.0)), np.float32(0))

    def q_bool(self, spec: dict) -> Result:
        def clauses(key: str) -> list[dict]:
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]

        unknown = set(spec) - {"must", "filter", "should", "must_not", "minimum_should_match", "boost"}
        if unknown:
            raise unsupported("the query option", sorted(unknown)[0], "of [bool]")
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
            minimum = should_minimum(spec.get("minimum_should_match", default), len(should))
            matches &= hits >= minimum
            scores += np.sum([s for _, s in should], axis=0)
        scores *= np.float32(spec.get("boost", 1.0))
        return matches, np.where(matches, scores, np.float32(0))

    def text_match(self, field: str, query: str, require_all: bool, boost: float) -> Result:
        """BM25 of `query` against one `text` field (analysed) or `keyword` field (one term);
        on other types the query is one value matched exactly (score 1), as Elasticsearch's
        match turns into a term query there; on an unmapped field nothing matches."""
        path, kind, spec = self.field(field)
        if kind is None:
            return np.zeros(len(self.live), bool), np.zeros(len(self.live), np.float32)
        if kind not in ("text", "keyword"):
            target = comparable(query, kind)
            return self.constant(lambda source, _: target in self.indexed(source, field), boost)
        analyzer = spec.get("analyzer", "standard")
        prepare: Callable[[list], list[str]] = (
            (lambda values: analyze(" ".join(map(str, values)), analyzer))
            if kind == "text"
            else (lambda values: [v for v in values if len(v) <= spec.get("ignore_above", len(v))])
        )
        # None: a deleted slot, or a document without a value (it does not count in BM25's averages).
        documents = [
            (prepare([str(v) for v in field_values(self.sources[slot], path)]) or None) if self.live[slot] else None
            for slot in range(len(self.live))
        ]
        terms = analyze(query, spec.get("search_analyzer", analyzer)) if kind == "text" else [query]
        matches, scores = bm25(documents, terms, require_all, norms=kind == "text")
        return matches, scores * np.float32(boost)

    def q_match(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "match")
        options = value if isinstance(value, dict) else {"query": value}
        unknown = set(options) - {"query", "operator", "boost"}
        if unknown:
            raise unsupported("the query option", sorted(unknown)[0], "of [match]")
        require_all = str(options.get("operator", "or")).lower() == "and"
        return self.text_match(field, str(options.get("query", "")), require_all, boost)

    def q_multi_match(self, spec: dict) -> Result:
        """`best_fields` (the default: the best field's score, plus `tie_breaker` times the
        others') and `most_fields` (the sum)."""
        unknown = set(spec) - {"query", "fields", "type", "operator", "boost", "tie_breaker"}
        if unknown:
            raise unsupported("the query option", sorted(unknown)[0], "of [multi_match]")
        kind = spec.get("type", "best_fields")
        if kind not in ("best_fields", "most_fields"):
            raise unsupported("the query option", f"type: {kind}", "of [multi_match]")
        if not spec.get("fields"):
            raise unsupported("the query option", "fields: default", "of [multi_match]: name the fields")
        require_all = str(spec.get("operator", "or")).lower() == "and"
        per_field = []
        if not isinstance(spec["fields"], list) or not all(isinstance(f, str) for f in spec["fields"]):
            raise malformed("[multi_match] [fields] must be an array of field names")
        for entry in spec["fields"]:
            name, _, weight = entry.partition("^")
            matches, scores = self.text_match(name, str(spec.get("query", "")), require_all, float(weight or 1))
            per_field.append((matches, scores))
        matches = np.any([m for m, _ in per_field], axis=0)
        all_scores = np.array([s for _, s in per_field])
        best = all_scores.max(axis=0)
        tie = 1.0 if kind == "most_fields" else number(spec.get("tie_breaker", 0.0), "tie_breaker")
        scores = best + tie * (all_scores.sum(axis=0) - best)
        return matches, np.where(matches, scores * np.float32(spec.get("boost", 1.0)), 0).astype(np.float32)

    def q_nested(self, spec: dict) -> Result:
        from embedded_es.nested import nested_query  # nested builds matchers over objects

        return nested_query(self, spec)

    def q_knn(self, spec: dict) -> Result:
        """The guide's `query: {"knn": ...}`: the nearest documents (its `filter` a pre-filter),
        scored as the top-level section scores them; other clauses of a parent query filter after."""
        field = spec.get("field") if isinstance(spec, dict) else None
        if isinstance(field, str) and "." in field and (self.scope or field in self.view.nested):
            raise unsupported(
                "the query", "knn", f"on nested field [{field}] other than as the whole query of a [nested] query"
            )
        found = nearest(self.view, self, spec, self.size, query_form=True)
        matches = np.zeros(len(self.live), bool)
        scores = np.zeros(len(self.live), np.float32)
        if found:
            slots = np.fromiter(found, np.int64, len(found))
            matches[slots] = True
            scores[slots] = np.fromiter(found.values(), np.float32, len(found))
        return matches, scores

    def q_script_score(self, spec: dict) -> Result:
        """Exact kNN as Elasticsearch documents it: similarity to a query vector (plus a constant,
        usually 1, to keep scores non-negative, which Elasticsearch requires)."""
        matches, _ = self.evaluate(spec.get("query", {"match_all": {}}))
        script = spec.get("script", {})
        parsed = scripts.parse(script.get("source", "") if isinstance(script, dict) else "")
        if parsed is None:
            raise unsupported("the script", str(script.get("source", "") if isinstance(script, dict) else script))
        function, parameter, field = parsed.function, parsed.parameter, parsed.field
        column = self.columns.get(field)
        if column is None:
            raise bad_request(f"field [{field}] is not a dense_vector field")
        params = script.get("params", {})
        if not isinstance(params, dict):
            raise malformed("[script] [params] must be an object")
        try:
            query = np.asarray(params.get(parameter), np.float32)
        except (TypeError, ValueError):
            raise bad_request(f"[params.{parameter}] must be an array of numbers") from None
        if query.ndim != 1 or len(query) != column.dims:
            raise bad_request(f"the query vector has [{query.size}] dimensions, the field [{column.dims}]")
        used = len(self.ids)
        rows = column.matrix[:used]
        if function == "cosineSimilarity":
            raw = rows @ (query / np.linalg.norm(query))
            if column.similarity != "cosine":  # rows kept as given: divide by their lengths here
                norms = np.linalg.norm(rows, axis=1)
                raw = np.divide(raw, norms, out=np.zeros_like(raw), where=norms > 0)
        else:
            raw = rows @ query
        matches = matches & column.present  # same length as `live`: both grow together
        scores = np.zeros(len(self.live), np.float32)
        scores[:used] = parsed.score(raw) * spec.get("boost", 1.0)
        negative = np.flatnonzero(matches & ((scores < 0) | np.isnan(scores)))
        if len(negative):
            raise bad_request(
                f"script_score script returned an invalid score [{scores[negative[0]]}] for doc "
                f"[{negative[0]}]. Must be a non-negative score!"
            )
        return matches, np.where(matches, scores, np.float32(0))
