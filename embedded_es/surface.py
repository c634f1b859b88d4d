"""What the embedded engine supports and what it refuses by name, built from the engine's own
lists. Every refusal names one of these areas ("the embedded engine does not support <area>
[<item>]"); docs/engine.md's table is generated from here (`python -m embedded_es.surface`)
and a test checks that the two agree, so the table cannot drift from the code."""

from __future__ import annotations

from dataclasses import dataclass

from embedded_es.aliases import ADD_OPTIONS as ALIAS_ADD_OPTIONS
from embedded_es.aliases import ELASTICSEARCH_ADD_OPTIONS as ELASTICSEARCH_ALIAS_OPTIONS
from embedded_es.api import ENDPOINTS, HEALTH, HOUSEKEEPING, INDEX_READ, MSEARCH
from embedded_es.by_query import PARAMS as BY_QUERY_PARAMS
from embedded_es.documents import BULK_METADATA
from embedded_es.indices import ALLOWED_SETTINGS, CLUSTER_SETTINGS
from embedded_es.knn import SECTION_OPTIONS
from embedded_es.mapping import (
    INDEX_OPTIONS,
    KNOWN_INDEX_OPTIONS,
    KNOWN_ROOT_OPTIONS,
    KNOWN_TYPES,
    ROOT_OPTIONS,
    SUPPORTED_TYPES,
    TYPE_PARAMETERS,
)
from embedded_es.nested import INNER_HITS_OPTIONS, KNOWN_INNER_HITS_OPTIONS, NESTED_OPTIONS
from embedded_es.query import FIELD_OPTIONS, QUERY_OPTIONS, Matcher
from embedded_es.request import DOC_WRITE, PRESENTATION, READ, SEARCH, WAITS, WRITE
from embedded_es.retrievers import (
    ELASTICSEARCH_RETRIEVERS,
    KNN_OPTIONS,
    LINEAR_OPTIONS,
    RRF_OPTIONS,
    STANDARD_OPTIONS,
)
from embedded_es.search import ELASTICSEARCH_BODY_KEYS, KNOWN_BODY_KEYS
from embedded_es.text import ANALYZERS, KNOWN_ANALYZERS
from embedded_es.updates import UPDATE_KEYS

START, END = "<!-- engine-surface:start -->", "<!-- engine-surface:end -->"


@dataclass(frozen=True)
class Area:
    name: str  # as refusals name it
    supported: list[str]
    refused: list[str]  # notable ones; "any other" is refused too unless the row says otherwise


def names(values) -> list[str]:
    return sorted(str(v) for v in values)


QUERIES = names(name.removeprefix("q_") for name in dir(Matcher) if name.startswith("q_"))
QUERY_SETTINGS = {**QUERY_OPTIONS, **FIELD_OPTIONS, "bool": {"must", "filter", "should", "must_not"}}
QUERY_SETTINGS |= {
    "match": {"query", "operator"},
    "multi_match": {"query", "fields", "type", "operator", "tie_breaker"},
}
QUERY_SETTINGS |= {"range": {"gt", "gte", "lt", "lte"}}
QUERY_SETTINGS |= {"nested": NESTED_OPTIONS - {"boost"}}
PARAMETERS = READ | SEARCH | WRITE | DOC_WRITE | WAITS | INDEX_READ | HEALTH | PRESENTATION | {"op_type"}
PARAMETERS |= {"scroll", "scroll_id", "retry_on_conflict", "q (field:term only)", "terminate_after (_count)"}
PARAMETERS |= MSEARCH | {"keep_alive"} | (BY_QUERY_PARAMS - {"slices", "wait_for_completion", "q"})
PARAMETERS |= {"slices (1, auto)", "wait_for_completion (true)"}
PARAMETERS |= set().union(*HOUSEKEEPING.values())
PARAMETER_NAMES = names(PARAMETERS)

RETRIEVER_OPTIONS = {"standard": STANDARD_OPTIONS, "knn": KNN_OPTIONS, "rrf": RRF_OPTIONS, "linear": LINEAR_OPTIONS}

AREAS = [
    Area(
        "the endpoint",
        ENDPOINTS,
        [
            "`_reindex`",
            "`_knn_search`",
            "`_analyze`",
            "`_explain`",
            "`_cluster/stats`",
            "`_cat`",
            "`_license`",
            "`PUT _settings`",
            "`_async_search`",
            "`_sql`",
            "`_query` (ES|QL)",
            "`_inference`",
        ],
    ),
    Area(
        "the parameter",
        PARAMETER_NAMES,
        [
            "q (any other query-string syntax)",
            "filter_path",
            "stored_fields (outside search)",
            "terminate_after (on _search)",
            "version",
            "version_type",
            "pipeline",
            "require_alias",
            "flat_settings",
            "include_defaults",
            "error_trace",
        ],
    ),
    Area("the search option", names(KNOWN_BODY_KEYS | {"retriever", "pit"}), names(ELASTICSEARCH_BODY_KEYS)),
    Area(
        "the retriever",
        [
            *[
                f"{kind}: {', '.join(names(options - {'_name'}))}"
                for kind, options in sorted(RETRIEVER_OPTIONS.items())
            ],
            "linear child: retriever, weight, normalizer (none, minmax)",
        ],
        [*names(ELASTICSEARCH_RETRIEVERS), "other linear normalizers (l2_norm)"],
    ),
    Area(
        "the query",
        QUERIES,
        [
            "nested inside nested",
            "knn on a nested field outside a nested query",
            "query_string",
            "simple_query_string",
            "match_phrase",
            "wildcard",
            "regexp",
            "fuzzy",
            "more_like_this",
            "has_child",
            "has_parent",
            "parent_id",
            "vector_similarity",
            "sparse_vector",
            "semantic",
            "geo_*",
        ],
    ),
    Area(
        "the query option",
        [f"{kind}: {', '.join(names(options))}" for kind, options in sorted(QUERY_SETTINGS.items()) if options]
        + ["boost everywhere"],
        [
            "case_insensitive",
            "format and time_zone on range",
            "minimum_should_match on match",
            "multi_match types other than best_fields, most_fields",
        ],
    ),
    Area(
        "the knn option",
        [*names(SECTION_OPTIONS - {"inner_hits"}), "inner_hits (on a nested field)"],
        ["query_vector_builder", "visit_percentage"],
    ),
    Area("the inner_hits option", names(INNER_HITS_OPTIONS), names(KNOWN_INNER_HITS_OPTIONS)),
    Area(
        "the script",
        [
            "`cosineSimilarity(params.v, 'field')` or `dotProduct(...)`, plus an optional constant",
            "`double value = dotProduct(params.v, 'field'); return sigmoid(1, Math.E, -value);` "
            "(each sigmoid argument a number, `Math.E` or the variable, negated or not); "
            "`double value = dotProduct(params.v, 'field'); return value < 0 ? 1 / (1 + -1 * value) : value + 1;` "
            "(max_inner_product's kNN score)",
        ],
        ["any other Painless script"],
    ),
    Area("the sort option", ["order"], ["mode", "missing", "unmapped_type", "nested", "format", "numeric_type"]),
    Area("the fields option", ["field"], ["format", "include_unmapped"]),
    Area("the _source option", ["includes", "excludes"], []),
    Area(
        "the field type",
        names(SUPPORTED_TYPES),
        [*names(KNOWN_TYPES), "nested inside nested or inside an object", "dense_vector deeper inside a nested"],
    ),
    Area(
        "the mapping parameter",
        [f"{kind}: {', '.join(names(params))}" for kind, params in sorted(TYPE_PARAMETERS.items())]
        + ["fields (multi-fields) on every type"],
        [
            "copy_to",
            "doc_values",
            "enabled",
            "normalizer",
            "format",
            "null_value",
            "index (except on dense_vector)",
            "nested: include_in_parent, include_in_root, dynamic",
        ],
    ),
    Area("the mapping option", names(ROOT_OPTIONS), [*names(KNOWN_ROOT_OPTIONS), "dynamic: runtime"]),
    Area("the dense_vector element_type", ["float"], ["byte", "bit", "bfloat16"]),
    Area("the index_options type", names(INDEX_OPTIONS), names(KNOWN_INDEX_OPTIONS)),
    Area("the analyzer", names(ANALYZERS), [*names(KNOWN_ANALYZERS), "custom analyzers (settings.analysis)"]),
    Area(
        "the index setting",
        [*names(ALLOWED_SETTINGS), "soft_deletes.enabled (true only)"],
        ["analysis", "mode", "similarity", "sort.*", "query.*"],
    ),
    Area("the index creation option", ["mappings", "settings"], ["aliases"]),
    Area("the alias option", names(ALIAS_ADD_OPTIONS), names(ELASTICSEARCH_ALIAS_OPTIONS)),
    Area("the cluster setting", names(CLUSTER_SETTINGS), ["any other"]),
    Area("the bulk action", ["index", "create", "delete", "update"], ["any other"]),
    Area(
        "the update option",
        names(UPDATE_KEYS - {"script", "scripted_upsert", "_source"}),
        ["script", "scripted_upsert", "_source"],
    ),
    Area(
        "the bulk metadata",
        [*names(BULK_METADATA), "retry_on_conflict (update)"],
        ["pipeline", "require_alias", "version", "version_type", "dynamic_templates"],
    ),
    Area("the mget option", ["docs", "ids", "_index", "_id", "_source", "routing"], ["stored_fields"]),
]
AREA_NAMES = {area.name for area in AREAS}


def area_of(reason: str) -> str | None:
    """The area a refusal names, or None if it names none of the table's rows."""
    from embedded_es.errors import REFUSAL

    rest = reason.removeprefix(f"{REFUSAL} ")
    return next((name for name in sorted(AREA_NAMES, key=len, reverse=True) if rest.startswith(name)), None)


def table() -> str:
    """The table of docs/engine.md, between its markers."""
    rows = [
        START,
        "| Area | Supported | Refused by name (and anything else not listed as supported) |",
        "|---|---|---|",
    ]
    for area in AREAS:
        supported = "; ".join(area.supported) if area.supported else "none"
        refused = ", ".join(area.refused) if area.refused else "any other"
        cells = [area.name.removeprefix("the "), supported, refused]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    rows.append(END)
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
