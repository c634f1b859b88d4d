"""Scrolling: `scroll` on `_search`, `POST /_search/scroll` and `DELETE /_search/scroll`, what
`elasticsearch.helpers.scan` and `helpers.reindex` send.

A scroll is a snapshot, as on a cluster: the first request ranks every matching document and
renders the hits then, so later writes do not change what the following pages return. Each
request keeps the context alive for its `scroll` time; an expired or unknown id gets
Elasticsearch's 404 (`search_context_missing_exception`), a malformed one its 400."""

from __future__ import annotations

import re
import time
import weakref
from dataclasses import dataclass

from embedded_es.errors import EsError, bad_request, validation_failed
from embedded_es.request import is_opaque_id, opaque_id
from embedded_es.search import run_search, total_hits, whole_number
from embedded_es.store import IndexView, Store

PREFIX = b"embedded-scroll:"
UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Elasticsearch's `search.max_keep_alive` default.
MAX_KEEP_ALIVE = 86400.0


@dataclass
class Context:
    hits: list[dict]  # rendered when the scroll started, the pages not yet returned
    size: int
    total: dict | int | None
    shards: dict
    expires: float


_contexts: weakref.WeakKeyDictionary[Store, dict[str, Context]] = weakref.WeakKeyDictionary()


def keep_alive(value: object, name: str = "scroll") -> float:
    """A time value such as `1m`, `30s` or `500ms`, in seconds."""
    found = re.fullmatch(r"(\d+)(nanos|micros|ms|s|m|h|d)", str(value).strip().lower())
    if not found:
        raise EsError(
            400,
            "parse_exception",
            f"failed to parse setting [{name}] with value [{value}] as a time value: unit is missing or unrecognized",
        )
    seconds = int(found.group(1)) * UNITS[found.group(2)]
    if seconds > MAX_KEEP_ALIVE:
        raise bad_request(
            f"Keep alive for request ({value}) is too large. It must be less than (1d). "
            "This limit can be set by changing the [search.max_keep_alive] cluster level setting."
        )
    return seconds


def contexts(store: Store) -> dict[str, Context]:
    found = _contexts.setdefault(store, {})
    now = time.monotonic()
    for scroll_id in [i for i, c in found.items() if c.expires <= now]:
        del found[scroll_id]  # expired, as a cluster's reaper frees them
    return found


def start(store: Store, views: list[IndexView], body: dict, params: dict) -> dict:
    """The first page of a scrolled search, with its `_scroll_id`."""
    alive = keep_alive(params["scroll"])
    if whole_number(body, params, "from", 0) > 0:
        raise validation_failed("using [from] is not allowed in a scroll context")
    if body.get("track_total_hits", params.get("track_total_hits")) in (False, "false"):
        raise validation_failed("disabling [track_total_hits] is not allowed in a scroll context")
    size = whole_number(body, params, "size", 10)
    everything = sum(view.count for view in views)
    query = {**body, "size": everything, "from": 0, "track_total_hits": True}
    inner = {k: v for k, v in params.items() if k not in ("scroll", "size", "from", "track_total_hits")}
    inner.pop("rest_total_hits_as_int", None)
    response = run_search(store, views, query, inner)
    hits = response["hits"]["hits"]
    scroll_id = opaque_id(PREFIX)
    total = total_hits(len(hits), {}, {k: v for k, v in params.items() if k == "rest_total_hits_as_int"})
    context = Context(hits, size, total, response["_shards"], time.monotonic() + alive)
    contexts(store)[scroll_id] = context
    return page(scroll_id, context, response["took"], response["hits"].get("max_score"))


def page(scroll_id: str, context: Context, took: int, max_score: float | None) -> dict:
    hits, context.hits = context.hits[: context.size], context.hits[context.size :]
    found: dict = {"max_score": max_score, "hits": hits}
    return {
        "_scroll_id": scroll_id,
        "took": took,
        "timed_out": False,
        "_shards": context.shards,
        "hits": {"total": context.total, **found} if context.total is not None else found,
    }


def parse_id(scroll_id: object) -> str:
    if not isinstance(scroll_id, str):
        raise bad_request("Cannot parse scroll id")
    if not is_opaque_id(scroll_id, PREFIX):
        raise bad_request("Cannot parse scroll id")
    return scroll_id


def missing(scroll_id: str) -> EsError:
    """Elasticsearch's answer to an expired or unknown scroll: every shard failed, 404."""
    inner = {"type": "search_context_missing_exception", "reason": f"No search context found for id [{scroll_id}]"}
    error = EsError(
        404,
        "search_phase_execution_exception",
        "all shards failed",
        phase="query",
        grouped=True,
        failed_shards=[{"shard": -1, "index": None, "reason": inner}],
        caused_by=inner,
    )
    error.root = inner
    return error


def scroll(store: Store, body: dict, params: dict) -> dict:
    """`POST /_search/scroll`: the next page; the context lives on for `scroll` more."""
    for key in body:
        if key not in ("scroll_id", "scroll", "rest_total_hits_as_int"):
            raise unknown_key(key)
    scroll_id = parse_id(body.get("scroll_id", params.get("scroll_id")))
    context = contexts(store).get(scroll_id)
    if context is None:
        raise missing(scroll_id)
    alive = body.get("scroll", params.get("scroll"))
    if alive is not None:
        context.expires = time.monotonic() + keep_alive(alive)
    return page(scroll_id, context, 0, None)


def unknown_key(key: str) -> EsError:
    return EsError(
        400,
        "parsing_exception",
        f"Unknown parameter [{key}] in request body or parameter is of the wrong type[VALUE_STRING] ",
    )


def clear(store: Store, body: dict, path_ids: str | None) -> tuple[int, dict]:
    """`DELETE /_search/scroll`: free the named contexts, or `_all`. Named ids of which none was
    live get a 404, as on a cluster; `_all` succeeds even when nothing was left (elasticsearch-py's
    own tests clear `_all` after `scan` has cleared its scroll, and pass on a cluster)."""
    if set(body) - {"scroll_id"}:
        raise unknown_key(sorted(set(body) - {"scroll_id"})[0])
    ids = body.get("scroll_id", path_ids.split(",") if path_ids else None)
    ids = [ids] if isinstance(ids, str) else ids
    if ids is not None and not isinstance(ids, list):
        raise unknown_key("scroll_id")
    if not ids:
        raise validation_failed("no scroll ids specified")
    live = contexts(store)
    if ids == ["_all"]:
        freed = len(live)
        live.clear()
        return 200, {"succeeded": True, "num_freed": freed}
    freed = sum(live.pop(parse_id(i), None) is not None for i in ids)
    return (200 if freed else 404), {"succeeded": True, "num_freed": freed}
