"""Mappings as Elasticsearch reads them: validation with its error types, the defaults that
GET _mapping reports, merging `PUT _mapping`, and dynamic mapping of a document's new fields
(strings to `text` + `keyword`, numbers, booleans, dates by detection, objects, arrays of
128 to 4096 floats to `dense_vector`; `dynamic: true | false | strict`)."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from embedded_es import join
from embedded_es.errors import EsError, bad_request, parsing_error, unsupported
from embedded_es.store import NestedVectors
from embedded_es.text import ANALYZERS, KNOWN_ANALYZERS

NUMERIC_TYPES = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
SUPPORTED_TYPES = NUMERIC_TYPES | {"keyword", "text", "date", "boolean", "dense_vector", "object", "join", "nested"}
# Types Elasticsearch knows that the engine refuses by name; any other type is Elasticsearch's own error.
KNOWN_TYPES = {
    "aggregate_metric_double", "alias", "annotated_text", "binary", "completion", "constant_keyword",
    "counted_keyword", "date_nanos", "date_range", "double_range", "flattened", "float_range", "geo_point",
    "geo_shape", "histogram", "integer_range", "ip", "ip_range", "long_range", "match_only_text",
    "murmur3", "passthrough", "percolator", "point", "rank_feature", "rank_features", "rank_vectors",
    "search_as_you_type", "semantic_text", "shape", "sparse_vector", "token_count", "unsigned_long",
    "version", "wildcard", "exponential_histogram",
}  # fmt: skip
SIMILARITIES = {"cosine", "dot_product", "l2_norm", "max_inner_product"}
# index_options types and the parameters each takes (Elasticsearch refuses any other).
# early_termination (HNSW graph search stopping early) is accepted; the graph search here always
# runs to the end of its beam.
INDEX_OPTIONS = {
    "hnsw": {"m", "ef_construction", "early_termination"},
    "int8_hnsw": {"m", "ef_construction", "confidence_interval", "rescore_vector", "early_termination"},
    "int4_hnsw": {"m", "ef_construction", "confidence_interval", "rescore_vector", "early_termination"},
    "bbq_hnsw": {"m", "ef_construction", "rescore_vector", "early_termination"},
    "flat": set(),
    "int8_flat": {"confidence_interval", "rescore_vector"},
    "int4_flat": {"confidence_interval", "rescore_vector"},
    "bbq_flat": {"rescore_vector"},
}
KNOWN_INDEX_OPTIONS = {"bbq_disk"}  # Elasticsearch's, refused by name
ROOT_OPTIONS = {"properties", "dynamic", "_meta", "date_detection", "numeric_detection"}
KNOWN_ROOT_OPTIONS = {"dynamic_templates", "runtime", "_source", "_routing", "subobjects", "dynamic_date_formats"}
KNOWN_ROOT_OPTIONS |= {"_field_names", "enabled", "_data_stream_timestamp", "_size"}
# Parameters each field type honours; "type" and "fields" (multi-fields) go with every type.
TYPE_PARAMETERS = {
    "keyword": {"ignore_above", "store"},
    "text": {"analyzer", "search_analyzer", "store"},
    "date": {"store"},
    "boolean": {"store"},
    "object": {"properties", "dynamic"},
    "nested": {"properties"},  # one level; include_in_parent, include_in_root and dynamic are refused by name
    "dense_vector": {"dims", "index", "similarity", "element_type", "index_options"},
    "scaled_float": {"scaling_factor", "store"},
    "join": join.PARAMETERS,
} | {kind: {"store"} for kind in NUMERIC_TYPES - {"scaled_float"}}
DEFAULT_INDEX_OPTIONS = {"type": "int8_hnsw", "m": 16, "ef_construction": 100}  # 8.14 to 9.0, under 384 dims
BBQ_OVERSAMPLE = 3.0
MAX_OVERSAMPLE = 10.0  # rescore_vector.oversample, as Elasticsearch bounds it
MAX_CONN, MAX_BEAM_WIDTH = 512, 3200  # Lucene's bounds on m and ef_construction
VECTOR_DIMS = (128, 4096)  # dynamic mapping: float arrays of this length become dense_vector
MAX_DIMS = 4096
DATE_DETECTION = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$")
INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
STRING_MAPPING = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def mapper_error(reason: str) -> EsError:
    return EsError(400, "mapper_parsing_exception", f"Failed to parse mapping: {reason}")


def check_mappings(mappings: Any) -> dict:
    """Validate a whole mapping as index creation and PUT _mapping receive it; return it with
    the defaults Elasticsearch fills in (dense_vector's index, similarity, index_options)."""
    if not isinstance(mappings, dict):
        raise mapper_error(f"Expected map for property [mappings] but got a {type(mappings).__name__}")
    for key in mappings:
        if key in KNOWN_ROOT_OPTIONS:
            raise unsupported("the mapping option", key)
        if key not in ROOT_OPTIONS:
            raise mapper_error(f"Root mapping definition has unsupported parameters:  [{key} : {mappings[key]}]")
    check_dynamic(mappings.get("dynamic", True), "_doc")
    result = copy.deepcopy(mappings)
    if "properties" in mappings:
        result["properties"] = check_properties(mappings["properties"], "")
    return result


def check_dynamic(value: Any, where: str) -> None:
    if value == "runtime":
        raise unsupported("the mapping option", "dynamic: runtime")
    if value not in (True, False, "true", "false", "strict"):
        raise mapper_error(f"Could not convert [dynamic] to boolean for [{where}], got [{value}]")


def check_properties(properties: Any, prefix: str, nested: str | None = None) -> dict:
    if not isinstance(properties, dict):
        raise mapper_error(f"Expected map for property [properties] on field [{prefix or '_doc'}]")
    return {name: check_field(name, spec, prefix, nested=nested) for name, spec in properties.items()}


def check_field(name: str, spec: Any, prefix: str, multi_field: bool = False, nested: str | None = None) -> dict:
    """One field's mapping; `nested`: the path of the nested field it is inside, if any."""
    path = f"{prefix}{name}"
    if not name.strip():
        raise bad_request("field name cannot be an empty string")
    if not isinstance(spec, dict):
        raise mapper_error(f"Expected map for property [fields] on field [{name}] but got a {type(spec).__name__}")
    kind = spec.get("type", "object" if not multi_field else None)
    if kind is None:
        raise mapper_error(f"No type specified for field [{name}]")
    if not isinstance(kind, str):
        raise mapper_error(f"type must be a string on field [{name}], got [{kind}]")
    if kind not in SUPPORTED_TYPES:
        if kind in KNOWN_TYPES:
            raise unsupported("the field type", kind, f"field [{path}]")
        raise mapper_error(
            f"The mapper type [{kind}] declared on field [{name}] does not exist. It might have been created "
            "within a future version or requires a plugin to be installed. Check the documentation."
        )
    unknown = set(spec) - TYPE_PARAMETERS[kind] - {"type", "fields"}
    if kind == "nested" and prefix and nested is None:
        raise unsupported("the field type", "nested", f"field [{path}] inside an object: top-level nested fields only")
    if nested is not None and kind == "nested":
        raise unsupported("the field type", "nested", f"field [{path}] inside nested [{nested}]: one level only")
    if nested is not None and kind == "dense_vector" and path.count(".") != nested.count(".") + 1:
        where = f"field [{path}] in an object inside nested [{nested}]: direct children only"
        raise unsupported("the field type", "dense_vector", where)
    if unknown:
        raise unsupported("the mapping parameter", sorted(unknown)[0], f"field [{path}] of type [{kind}]")
    result = dict(spec)
    if kind in ("object", "nested"):
        check_dynamic(spec.get("dynamic", True), path)
        inside = path if kind == "nested" else nested
        result["properties"] = check_properties(spec.get("properties", {}), f"{path}.", inside)
        if not result["properties"] and "properties" not in spec:
            del result["properties"]
    if kind == "text":
        for key in ("analyzer", "search_analyzer"):
            analyzer = spec.get(key, "standard")
            if analyzer not in ANALYZERS:
                if analyzer in KNOWN_ANALYZERS:
                    raise unsupported("the analyzer", analyzer, f"field [{path}]")
                raise mapper_error(f"analyzer [{analyzer}] has not been configured in mappings")
    if kind == "scaled_float" and not isinstance(spec.get("scaling_factor"), (int, float)):
        raise mapper_error(f"Field [scaling_factor] is required for field [{name}]")
    if kind == "keyword" and "ignore_above" in spec and not isinstance(spec["ignore_above"], int):
        raise mapper_error(f"[ignore_above] must be an integer on field [{name}]")
    if kind == "dense_vector":
        result = check_vector(name, spec)
    if kind == "join":
        join.check_mapping(path if not multi_field else f"{path}.", spec, mapper_error)
    if "fields" in spec:
        if not isinstance(spec["fields"], dict):
            raise mapper_error(f"Expected map for property [fields] on field [{name}]")
        result["fields"] = {
            sub: check_field(sub, sub_spec, f"{path}.", multi_field=True) for sub, sub_spec in spec["fields"].items()
        }
    return result


def check_vector(name: str, spec: dict) -> dict:
    """dense_vector as Elasticsearch validates it, with its defaults filled in."""
    element = spec.get("element_type", "float")
    if element in ("byte", "bit", "bfloat16"):
        raise unsupported("the dense_vector element_type", element, f"field [{name}]")
    if element != "float":
        raise mapper_error(f"invalid element_type [{element}]; available types are [float, byte, bit]")
    dims = spec.get("dims")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_DIMS):
        raise mapper_error(f"The number of dimensions should be in the range [1, {MAX_DIMS}] but was [{dims}]")
    indexed = spec.get("index", True)
    if indexed not in (True, False):
        raise mapper_error(f"Failed to parse value [{indexed}] as only [true] or [false] are allowed.")
    similarity = spec.get("similarity", "cosine")
    if similarity not in SIMILARITIES:
        raise mapper_error(
            f"Unknown value [{similarity}] for field [similarity] - accepted values are {sorted(SIMILARITIES)}"
        )
    if not indexed:  # stored and returned, read by scripts; kNN refuses it as a cluster does
        for key in ("similarity", "index_options"):
            if key in spec:
                raise mapper_error(
                    f"Field [{key}] can only be specified for a field of type [dense_vector] when it is indexed"
                )
        return {**spec, "index": False}
    options = spec.get("index_options", DEFAULT_INDEX_OPTIONS)
    if not isinstance(options, dict) or "type" not in options:
        raise mapper_error(f"[index_options] requires field [type] to be configured (field [{name}])")
    kind = options["type"]
    if kind in KNOWN_INDEX_OPTIONS:
        raise unsupported("the index_options type", kind, f"field [{name}]")
    if kind not in INDEX_OPTIONS:
        raise mapper_error(f"Unknown vector index options type [{kind}] for field [{name}]")
    unknown = set(options) - INDEX_OPTIONS[kind] - {"type"}
    if unknown:
        listed = ", ".join(f"{key} : {options[key]}" for key in sorted(unknown))
        raise mapper_error(f"Mapping definition for [{name}] has unsupported parameters:  [{listed}]")
    check_index_options(options)
    if dims is not None:
        check_dims_for_options(name, kind, dims)
    options = dict(options)
    if kind.startswith("bbq") and "rescore_vector" not in options:
        options["rescore_vector"] = {"oversample": BBQ_OVERSAMPLE}  # reported as 9.1 reports it
    return {**spec, "index": True, "similarity": similarity, "index_options": options}


def check_index_options(options: dict) -> None:
    """The graph and quantisation parameters, refused with Lucene's and Elasticsearch's words."""

    def number(key: str, integer: bool) -> float | None:
        value = options.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and int(value) != value):
            raise mapper_error(f"[{key}] must be {'an integer' if integer else 'a number'}, got [{value}]")
        return value

    m, beam = number("m", True), number("ef_construction", True)
    if m is not None and not 0 < m <= MAX_CONN:
        raise mapper_error(f"maxConn must be positive and less than or equal to {MAX_CONN}; maxConn={int(m)}")
    if beam is not None and not 0 < beam <= MAX_BEAM_WIDTH:
        raise mapper_error(
            f"beamWidth must be positive and less than or equal to {MAX_BEAM_WIDTH}; beamWidth={int(beam)}"
        )
    interval = number("confidence_interval", False)
    if interval is not None and interval != 0 and not 0.9 <= interval <= 1.0:
        raise mapper_error(f"confidenceInterval must be between 0.9 and 1.0 or 0; confidenceInterval={interval}")
    rescore = options.get("rescore_vector")
    if rescore is not None:
        oversample = rescore.get("oversample") if isinstance(rescore, dict) else None
        if isinstance(oversample, bool) or not isinstance(oversample, (int, float)):
            raise mapper_error(f"[rescore_vector] requires [oversample], got [{rescore}]")
        if not (oversample == 0 or 1 <= oversample <= MAX_OVERSAMPLE):
            raise mapper_error(
                f"[oversample] must be between [1.0] and [{MAX_OVERSAMPLE:.1f}], or [0] to disable rescoring, "
                f"got [{oversample}]"
            )


def check_dims_for_options(name: str, kind: str, dims: int) -> None:
    if kind.startswith("bbq") and dims < 64:
        raise mapper_error(f"The number of dimensions should be at least [64] for [{kind}] but was [{dims}]")
    if kind.startswith("int4") and dims % 2:
        raise mapper_error(f"only even dimensions are supported for [{kind}], got [{dims}] (field [{name}])")


# --- Documents --------------------------------------------------------------------------


class DocumentMapper:
    """Reads one document against an index's mapping: its source without vectors, its
    vectors by dotted path, and the mapping grown by any new fields (None if unchanged)."""

    def __init__(self, mappings: dict, doc_id: str, routing: str | None = None) -> None:
        self.mappings, self.doc_id, self.routing = mappings, doc_id, routing
        self.updated: dict | None = None
        self.vectors: dict[str, np.ndarray] = {}

    def read(self, source: Any) -> tuple[dict, dict[str, np.ndarray], dict | None]:
        if not isinstance(source, dict):
            raise parsing_error("Malformed content, must start with an object")
        rest = self.walk(source, self.mappings.get("properties", {}), "", dynamic_of(self.mappings, True))
        return rest, self.vectors, self.updated

    def grow(self, path: str, spec: dict) -> dict:
        """Add a field to the (copied) mapping and return its spec there."""
        if self.updated is None:
            self.updated = copy.deepcopy(self.mappings)
        node = self.updated
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault("properties", {}).setdefault(part, {"type": "object"})
        node.setdefault("properties", {})[parts[-1]] = spec
        return spec

    def current(self, path: str) -> dict | None:
        node: dict | None = self.updated if self.updated is not None else self.mappings
        for part in path.split("."):
            node = (node or {}).get("properties", {}).get(part)
        return node

    def walk(self, obj: dict, properties: dict, prefix: str, dynamic: Any) -> dict:
        rest = {}
        for key, value in obj.items():
            if not key.strip():
                raise parsing_error("field name cannot be an empty string")
            path = f"{prefix}{key}"
            spec = self.current(path) or properties.get(key)
            if spec is None:
                spec = self.new_field(path, value, dynamic)
                if spec is None:
                    rest[key] = value
                    continue
            kind = spec.get("type", "object")
            if kind == "dense_vector":
                self.vectors[path] = self.vector(path, spec, value)
                continue
            if kind == "object":
                rest[key] = self.walk_object(path, value, spec, dynamic)
                continue
            if kind == "nested":
                rest[key] = self.walk_nested(path, value, spec, dynamic)
                continue
            if kind == "join":
                join.check_document(path, spec, value, self.routing)
                rest[key] = value
                continue
            self.check_values(path, kind, value)
            rest[key] = value
        return rest

    def walk_object(self, path: str, value: Any, spec: dict, dynamic: Any) -> Any:
        inner = dynamic_of(spec, dynamic)
        if isinstance(value, dict):
            return self.walk(value, spec.get("properties", {}), f"{path}.", inner)
        if isinstance(value, list) and all(isinstance(v, dict) for v in value if v is not None):
            return [self.walk(v, spec.get("properties", {}), f"{path}.", inner) if v else v for v in value]
        if value is None:
            return None
        raise parsing_error(
            f"object mapping for [{path}] tried to parse field [{path.rsplit('.', 1)[-1]}] as object, "
            "but found a concrete value"
        )

    def walk_nested(self, path: str, value: Any, spec: dict, dynamic: Any) -> Any:
        """A nested field's objects (one object, or an array of them), each read as an object;
        the vectors inside go to `vectors` as one NestedVectors per field, by object offset."""
        objects = value if isinstance(value, list) else [value]
        if value is None:
            return None
        found: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        outer = self.vectors
        kept = []
        for offset, obj in enumerate(objects):
            if obj is None:
                kept.append(None)
                continue
            if not isinstance(obj, dict):
                raise parsing_error(
                    f"object mapping for [{path}] tried to parse field [{path.rsplit('.', 1)[-1]}] as object, "
                    "but found a concrete value"
                )
            self.vectors = {}
            kept.append(self.walk(obj, spec.get("properties", {}), f"{path}.", dynamic))
            for name, vector in self.vectors.items():
                offsets, rows = found.setdefault(name, ([], []))
                offsets.append(offset)
                rows.append(vector)
            self.vectors = outer
        for name, (offsets, rows) in found.items():
            self.vectors[name] = NestedVectors(np.asarray(offsets, np.int32), np.asarray(rows, np.float32))
        return kept if isinstance(value, list) else kept[0]

    def new_field(self, path: str, value: Any, dynamic: Any) -> dict | None:
        if dynamic in (False, "false"):
            return None
        if dynamic == "strict":
            parent = path.rsplit(".", 1)[0] if "." in path else "_doc"
            raise EsError(
                400,
                "strict_dynamic_mapping_exception",
                f"[{parent}] mapping set to strict, dynamic introduction of [{path.rsplit('.', 1)[-1]}] within "
                f"[{parent}] is not allowed",
            )
        spec = self.infer(value)
        return self.grow(path, spec) if spec is not None else None

    def infer(self, value: Any) -> dict | None:
        """Elasticsearch's dynamic field mapping for one value (None: not mapped yet)."""
        if value is None:
            return None
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "long"}
        if isinstance(value, float):
            return {"type": "float"}
        if isinstance(value, str):
            if self.mappings.get("date_detection", True) not in (False, "false") and DATE_DETECTION.match(value):
                return {"type": "date"}
            if self.mappings.get("numeric_detection", False) in (True, "true"):
                if INTEGER_TEXT.match(value):
                    return {"type": "long"}
                if FLOAT_TEXT.match(value):
                    return {"type": "float"}
            return copy.deepcopy(STRING_MAPPING)
        if isinstance(value, dict):
            return {"type": "object"}
        if isinstance(value, list):
            present = [v for v in value if v is not None]
            if not present:
                return None
            first = present[0]
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
            if isinstance(first, float) and numbers and VECTOR_DIMS[0] <= len(value) <= VECTOR_DIMS[1]:
                return {"type": "dense_vector", "dims": len(value), "index": True, "similarity": "cosine"} | {
                    "index_options": dict(DEFAULT_INDEX_OPTIONS)
                }
            return self.infer(first)
        return None

    def vector(self, path: str, spec: dict, value: Any) -> np.ndarray:
        try:
            vector = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise parsing_error(
                f"failed to parse field [{path}] of type [dense_vector] in document with id '{self.doc_id}'"
            ) from None
        if vector.ndim != 1:
            raise parsing_error(f"failed to parse field [{path}] of type [dense_vector]: expected an array of numbers")
        dims = spec.get("dims")
        if dims is None:  # the first document sets the dimension
            kind = spec.get("index_options", {}).get("type", "hnsw")
            try:
                check_dims_for_options(path, kind, len(vector))
            except EsError as error:
                raise parsing_error(error.reason) from None
            grown = copy.deepcopy(spec) | {"dims": len(vector)}
            self.grow(path, grown)
            dims = len(vector)
        where = f"The [dense_vector] field [{path}] in doc [document with id '{self.doc_id}']"
        if len(vector) > dims:
            raise parsing_error(f"{where} has more dimensions than defined in the mapping [{dims}]")
        if len(vector) != dims:
            raise parsing_error(
                f"{where} has a different number of dimensions [{len(vector)}] than defined in the mapping [{dims}]"
            )
        if not np.all(np.isfinite(vector)):
            raise parsing_error(f"The [dense_vector] field [{path}] must contain only finite numbers")
        if spec.get("similarity", "cosine") == "cosine" and not np.any(vector):
            raise parsing_error("The [cosine] similarity does not support vectors with zero magnitude.")
        return vector

    def check_values(self, path: str, kind: str, value: Any) -> None:
        from embedded_es.query import comparable  # values are read as queries compare them

        values = value if isinstance(value, list) else [value]
        if kind not in NUMERIC_TYPES | {"date", "boolean"}:
            if any(isinstance(v, dict) for v in values):
                raise parsing_error(
                    f"failed to parse field [{path}] of type [{kind}] in document with id '{self.doc_id}'. "
                    "Preview of field's value: an object"
                )
            return
        for v in values:
            if v is None:
                continue
            if kind == "boolean" and not (isinstance(v, bool) or v in ("true", "false", "")):
                raise parsing_error(
                    f"failed to parse field [{path}] of type [boolean] in document with id '{self.doc_id}'"
                )
            try:
                comparable(v, kind)
            except EsError:
                raise parsing_error(
                    f"failed to parse field [{path}] of type [{kind}] in document with id '{self.doc_id}'. "
                    f"Preview of field's value: '{v}'"
                ) from None


def dynamic_of(spec: dict, inherited: Any) -> Any:
    return spec.get("dynamic", inherited)


# --- PUT _mapping ---------------------------------------------------------------------------


def merge(current: dict, update: dict) -> dict:
    """`PUT _mapping`: new fields are added, a dense_vector without dims may get them, and
    anything else that changes an existing field is Elasticsearch's conflict error."""
    checked = check_mappings(update)
    merged = copy.deepcopy(current)
    for key in ("dynamic", "_meta", "date_detection", "numeric_detection"):
        if key in checked:
            merged[key] = checked[key]
    merged["properties"] = merge_properties(current.get("properties", {}), checked.get("properties", {}), "")
    if not merged["properties"] and "properties" not in current and "properties" not in update:
        del merged["properties"]
    return merged


def merge_properties(current: dict, update: dict, prefix: str) -> dict:
    merged = dict(current)
    for name, spec in update.items():
        path = f"{prefix}{name}"
        old = current.get(name)
        if old is None:
            merged[name] = spec
            continue
        old_kind, new_kind = old.get("type", "object"), spec.get("type", "object")
        if old_kind != new_kind:
            raise bad_request(f"mapper [{path}] cannot be changed from type [{old_kind}] to [{new_kind}]")
        if old_kind in ("object", "nested"):
            merged[name] = {**old, **{k: v for k, v in spec.items() if k != "properties"}}
            merged[name]["properties"] = merge_properties(
                old.get("properties", {}), spec.get("properties", {}), f"{path}."
            )
            continue
        if old_kind == "dense_vector":
            if old.get("dims") is None and spec.get("dims") is not None:
                old = {**old, "dims": spec["dims"]}
            # index_options may change (the field's graph is rebuilt for the new type on next use)
            old = {**old, "index_options": spec.get("index_options", old.get("index_options"))}
        for key in set(old) | set(spec):
            if key == "fields":
                continue
            if old.get(key) != spec.get(key):
                raise bad_request(
                    f"Mapper for [{path}] conflicts with existing mapper:\n\tCannot update parameter [{key}] "
                    f"from [{old.get(key)}] to [{spec.get(key)}]"
                )
        merged[name] = {**old, "fields": {**old.get("fields", {}), **spec.get("fields", {})}}
        if not merged[name]["fields"]:
            del merged[name]["fields"]
    return merged
