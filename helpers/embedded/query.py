"""The query DSL subset: which documents match, and with what score.

Leaf queries score a constant (1.0 times `boost`), as `terms`, `range`, `ids`, `exists` and
`match_all` do in Elasticsearch. `term` scores with BM25 there; here it scores 1.0 too, so
mixed text-and-vector scores can differ from a cluster's (kNN scores never do).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from helpers.embedded.errors import bad_request, unsupported

Result = tuple[np.ndarray, np.ndarray]  # (matches: bool per slot, scores: float32 per slot)
NUMERIC_TYPES = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
DATE_MATH = re.compile(r"^now(?:([+-]\d+)([yMwdhHms]))?(?:/([yMwdhHms]))?$")
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

    def __init__(self, ids: list[str], live: np.ndarray, sources: list[dict | None], mappings: dict) -> None:
        self.ids, self.live, self.sources = ids, live, sources
        self.properties = mappings.get("properties", {})

    def field_type(self, name: str) -> str | None:
        spec: dict = {"properties": self.properties}
        for part in name.split("."):
            spec = spec.get("properties", {}).get(part, {})
        return spec.get("type")

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
        return handler(spec or {})

    def q_match_all(self, spec: dict) -> Result:
        return self.live.copy(), np.where(self.live, np.float32(spec.get("boost", 1.0)), np.float32(0))

    def q_ids(self, spec: dict) -> Result:
        wanted = set(spec.get("values", []))
        return self.constant(lambda source, doc_id: doc_id in wanted, spec.get("boost", 1.0))

    def _field_spec(self, spec: dict, name: str) -> tuple[str, Any, float]:
        fields = {k: v for k, v in spec.items() if k not in ("boost", "_name")}
        if len(fields) != 1:
            raise bad_request(f"[{name}] query must name exactly one field")
        ((field, value),) = fields.items()
        boost = spec.get("boost", 1.0)
        if isinstance(value, dict):
            boost = value.get("boost", boost)
        return field, value, boost

    def q_term(self, spec: dict) -> Result:
        field, value, boost = self._field_spec(spec, "term")
        if isinstance(value, dict):
            value = value.get("value")
        kind = self.field_type(field)  # once per query, not once per document
        target = comparable(value, kind)
        return self.constant(lambda source, _: target in self.values(source, field, kind), boost)

    def q_terms(self, spec: dict) -> Result:
        field, values, boost = self._field_spec(spec, "terms")
        if not isinstance(values, list):
            raise bad_request("[terms] query takes a list of values")
        kind = self.field_type(field)
        targets = {comparable(v, kind) for v in values}
        return self.constant(lambda source, _: bool(targets.intersection(self.values(source, field, kind))), boost)

    def q_exists(self, spec: dict) -> Result:
        field = spec.get("field")
        return self.constant(lambda source, _: bool(field_values(source, field)), spec.get("boost", 1.0))

    def q_range(self, spec: dict) -> Result:
        field, bounds, boost = self._field_spec(spec, "range")
        kind = self.field_type(field)
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

        return self.constant(lambda source, _: any(within(v) for v in self.values(source, field, kind)), boost)

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
