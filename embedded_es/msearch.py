"""`_msearch`: several searches in one NDJSON request, a header line and a body line each.
Every search is answered on its own, with its `status`; one that fails carries its error and
does not fail the others, as on a cluster."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from embedded_es.errors import EsError, bad_request, unsupported, validation_failed
from embedded_es.request import INDEX_OPTIONS

# Header keys: where and how one search runs.
HEADER_KEYS = INDEX_OPTIONS | {"index", "search_type", "preference", "request_cache", "allow_partial_search_results"}
HEADER_KEYS |= {"ccs_minimize_roundtrips", "max_concurrent_shard_requests", "pre_filter_shard_size"}
# Elasticsearch knows these header keys; the engine refuses them by name.
ELASTICSEARCH_HEADER_KEYS = {"routing"}


def parse(body: bytes) -> list[tuple[dict, dict]]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise validation_failed("no requests added")
    searches = []
    for i in range(0, len(lines), 2):
        try:
            header = orjson.loads(lines[i])
            search = orjson.loads(lines[i + 1]) if i + 1 < len(lines) else {}
        except orjson.JSONDecodeError as error:
            raise EsError(
                400, "parse_exception", f"line [{i + 1}] of the msearch body is not valid JSON: {error}"
            ) from None
        if not isinstance(header, dict) or not isinstance(search, dict):
            raise bad_request(f"[msearch] line [{i + 1}]: a header and a body must be JSON objects")
        searches.append((header, search))
    return searches


def msearch(
    body: bytes, default_index: str, params: dict, search: Callable[[str, dict, dict], dict]
) -> tuple[int, dict]:
    """`search(index expression, body, params)` answers one search, raising EsError when it fails."""
    started = time.perf_counter()
    responses = []
    for header, request in parse(body):
        try:
            for key in header:
                if key in ELASTICSEARCH_HEADER_KEYS:
                    raise unsupported("the parameter", key, "in an msearch header")
                if key not in HEADER_KEYS:
                    raise bad_request(f"key [{key}] is not supported in the metadata section")
            index = header.get("index", default_index)
            index = ",".join(index) if isinstance(index, list) else str(index or "")
            options = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in header.items() if k != "index"}
            inherited = {k: v for k, v in params.items() if k in ("rest_total_hits_as_int", "typed_keys")}
            responses.append({**search(index, request, inherited | options), "status": 200})
        except EsError as error:
            responses.append({"error": error.body()["error"], "status": error.status})
    return 200, {"took": int((time.perf_counter() - started) * 1000), "responses": responses}
