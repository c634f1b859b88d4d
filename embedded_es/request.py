"""Request parsing and validation: which query-string parameters an endpoint honours (any
other is refused by name, never ignored), and index expressions (`a,b`, `logs-*`, `_all`,
`-excluded`) resolved to concrete indices with Elasticsearch's `ignore_unavailable`,
`allow_no_indices` and `expand_wildcards`."""

from __future__ import annotations

import base64
import fnmatch
import uuid
from collections.abc import Iterable

from embedded_es.errors import EsError, bad_request, index_not_found, unsupported

# Parameters that change only how a response is printed, never what it says.
PRESENTATION = {"pretty", "human"}
INDEX_OPTIONS = {"ignore_unavailable", "allow_no_indices", "expand_wildcards"}
# Waiting for shards or the master: one in-process node answers before any timeout.
WAITS = {"timeout", "master_timeout", "wait_for_active_shards"}
# `refresh` on writes: every acknowledged write is searchable at once here, so each value holds.
WRITE = WAITS | {"refresh"}
SOURCE = {"_source", "_source_includes", "_source_excludes"}
# Reads are always real-time and there is one copy of each shard, so these cannot change an answer;
# `routing` picks a shard, and there is one (a document's own routing is stored and shown).
READ = SOURCE | {"realtime", "refresh", "preference", "routing"}
# A single-document write: its routing, stored with it, and optimistic concurrency control.
DOC_WRITE = WRITE | {"routing", "if_seq_no", "if_primary_term"}
SEARCH = INDEX_OPTIONS | SOURCE | {"size", "from", "track_total_hits", "rest_total_hits_as_int", "timeout"}
SEARCH |= {"docvalue_fields", "stored_fields", "seq_no_primary_term"}
# One shard: search type, caches, batching and partial results cannot change what is found.
SEARCH |= {"search_type", "typed_keys", "request_cache", "preference", "allow_partial_search_results"}
SEARCH |= {"ccs_minimize_roundtrips", "batched_reduce_size", "max_concurrent_shard_requests", "pre_filter_shard_size"}
EXPAND_VALUES = {"open", "closed", "hidden", "none", "all"}


def check_params(params: dict[str, str], allowed: Iterable[str], endpoint: str) -> None:
    unknown = sorted(set(params) - set(allowed) - PRESENTATION)
    if unknown:
        raise unsupported("the parameter", unknown[0], f"on [{endpoint}]")


def flag(params: dict[str, str], name: str, default: bool) -> bool:
    """A boolean query-string parameter; an empty value means true, as on a cluster."""
    value = params.get(name)
    if value is None:
        return default
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise bad_request(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def is_pattern(expression: str) -> bool:
    return expression in ("_all", "") or any(c in expression for c in "*?")


def resolve(
    names: list[str],
    expression: str,
    params: dict[str, str],
    *,
    ignore_unavailable: bool = False,
    allow_no_indices: bool = True,
    forbid_wildcards: bool = False,
) -> list[str]:
    """Concrete index names for an expression, in the order the expression names them.
    `names` are the existing indices; the keyword defaults are the endpoint's own."""
    ignore_unavailable = flag(params, "ignore_unavailable", ignore_unavailable)
    allow_no_indices = flag(params, "allow_no_indices", allow_no_indices)
    expand = set(params.get("expand_wildcards", "open").split(","))
    if expand - EXPAND_VALUES:
        raise bad_request(f"No valid expand wildcard value [{','.join(sorted(expand - EXPAND_VALUES))}]")
    expand_all = bool(expand & {"open", "all"})  # no index here is closed; hidden ones start with "."
    with_hidden = bool(expand & {"hidden", "all"})
    parts = [p for p in expression.split(",") if p] or ["_all"]
    if forbid_wildcards and any(is_pattern(p) or p.startswith("-") for p in parts):
        raise bad_request("Wildcard expressions or all indices are not allowed")
    chosen: list[str] = []
    wildcard_seen = False
    for part in parts:
        if part.startswith("-") and wildcard_seen:
            excluded = part[1:]
            chosen = [n for n in chosen if not fnmatch.fnmatchcase(n, excluded)]
            continue
        if is_pattern(part) and (expand_all or part in ("_all", "")):
            wildcard_seen = True
            if not expand_all:
                continue
            pattern = "*" if part in ("_all", "") else part
            hidden_ok = with_hidden or pattern.startswith(".")
            chosen += [
                n
                for n in sorted(names)
                if fnmatch.fnmatchcase(n, pattern) and (hidden_ok or not n.startswith(".")) and n not in chosen
            ]
        elif part in names:  # also a pattern taken literally under expand_wildcards=none
            if part not in chosen:
                chosen.append(part)
        elif not ignore_unavailable:
            raise index_not_found(part)
    if not chosen and not allow_no_indices:
        raise index_not_found(expression or "_all")
    return chosen


def json_object(payload: object, what: str) -> dict:
    if not isinstance(payload, dict):
        raise EsError(400, "parse_exception", f"request body of {what} must be a JSON object")
    return payload


def opaque_id(prefix: bytes) -> str:
    """A new scroll or point-in-time id: the kind's prefix and a random part, URL-safe base64."""
    return base64.urlsafe_b64encode(prefix + uuid.uuid4().hex.encode()).decode()


def is_opaque_id(value: str, prefix: bytes) -> bool:
    """Whether `value` is an id `opaque_id(prefix)` could have made."""
    try:
        return base64.urlsafe_b64decode(value.encode()).startswith(prefix)
    except ValueError:
        return False
