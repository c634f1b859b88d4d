"""Point in time: `POST /{index}/_pit`, searches with a `pit` section (and `search_after`), and
`DELETE /_pit`, the way Elasticsearch now recommends paging through everything.

A point in time is a snapshot: opening one copies each index's in-memory view and every
document's source, so searches through it see the indices as they were, whatever is written
afterwards (this costs memory in proportion to the indices, as a cluster's kept segments do).
Each search keeps it alive for its `keep_alive`; an expired or unknown id gets Elasticsearch's
404 (`search_context_missing_exception`). Sorted searches get Elasticsearch's implicit
tiebreaker, `_shard_doc`, so `search_after` pages never skip or repeat a hit."""

from __future__ import annotations

import copy
import time
import weakref
from dataclasses import dataclass

from embedded_es.errors import EsError, bad_request, validation_failed
from embedded_es.request import is_opaque_id, opaque_id, resolve
from embedded_es.scroll import keep_alive, missing
from embedded_es.search import run_search, shards_header, sort_spec
from embedded_es.store import DocMeta, IndexView, Store

PREFIX = b"embedded-pit:"
PIT_KEYS = {"id", "keep_alive"}


class Snapshot:
    """What a search reads of the store (`sources`, `fetch`), frozen when the PIT opened."""

    def __init__(self, store: Store, names: list[str]) -> None:
        self.views: list[IndexView] = []
        self.documents: dict[str, dict[str, tuple[dict, int]]] = {}
        self.metas: dict[str, dict[str, DocMeta]] = {}
        for name in names:
            live = store.view(name)
            store.sources(live)  # loaded into the view, so the copy carries them
            self.views.append(copy.deepcopy(live))
            self.documents[name] = store.fetch(name, list(live.slot_of), with_vectors=True)
            self.metas[name] = store.meta(name, list(live.slot_of))

    def sources(self, view: IndexView) -> list[dict | None]:
        return view.sources or []

    def meta(self, index: str, ids: list[str]) -> dict[str, DocMeta]:
        return {doc_id: self.metas[index][doc_id] for doc_id in ids}

    def fetch(self, index: str, ids: list[str], with_vectors: bool) -> dict[str, tuple[dict, int]]:
        view = next(v for v in self.views if v.name == index)
        found = {}
        for doc_id in ids:
            whole, version = self.documents[index][doc_id]
            found[doc_id] = (whole if with_vectors else view.sources[view.slot_of[doc_id]], version)
        return found


@dataclass
class PointInTime:
    snapshot: Snapshot
    expires: float


_open: weakref.WeakKeyDictionary[Store, dict[str, PointInTime]] = weakref.WeakKeyDictionary()


def live(store: Store) -> dict[str, PointInTime]:
    found = _open.setdefault(store, {})
    now = time.monotonic()
    for pit_id in [i for i, p in found.items() if p.expires <= now]:
        del found[pit_id]
    return found


def open_pit(store: Store, expression: str, params: dict) -> dict:
    if "keep_alive" not in params:
        raise validation_failed("[keep_alive] is required")
    alive = keep_alive(params["keep_alive"], "keep_alive")
    names = resolve(store.names(), expression, params)
    pit_id = opaque_id(PREFIX)
    live(store)[pit_id] = PointInTime(Snapshot(store, names), time.monotonic() + alive)
    return {"id": pit_id, "_shards": shards_header(len(names))}


def known(store: Store, pit_id: object) -> tuple[str, PointInTime | None]:
    if not isinstance(pit_id, str):
        raise bad_request("[pit] [id] must be a string")
    if not is_opaque_id(pit_id, PREFIX):
        raise bad_request(f"invalid id: [{pit_id}]")
    return pit_id, live(store).get(pit_id)


def close_pit(store: Store, body: dict) -> tuple[int, dict]:
    """`DELETE /_pit`: 404 when the id was not open (expired or closed), as on a cluster."""
    if set(body) != {"id"}:
        raise validation_failed("point in time id is missing")
    pit_id, point = known(store, body["id"])
    if point is None:
        return 404, {"succeeded": True, "num_freed": 0}
    del live(store)[pit_id]
    return 200, {"succeeded": True, "num_freed": 1}


def search(store: Store, target: str, body: dict, params: dict) -> dict:
    """A search through a point in time: no index in the path, the PIT's snapshot searched."""
    if target:
        raise validation_failed(
            "[indices] cannot be used with point in time. Do not specify any index with point in time."
        )
    spec = body["pit"]
    if not isinstance(spec, dict) or "id" not in spec or set(spec) - PIT_KEYS:
        raise EsError(400, "parsing_exception", "[pit] must be an object with [id] and optionally [keep_alive]")
    pit_id, point = known(store, spec["id"])
    if point is None:
        raise missing(pit_id)
    if "keep_alive" in spec:
        point.expires = time.monotonic() + keep_alive(spec["keep_alive"], "keep_alive")
    query = {k: v for k, v in body.items() if k != "pit"}
    if "sort" in query and all(name != "_shard_doc" for name, _ in sort_spec(query["sort"])):
        query["sort"] = [*(query["sort"] if isinstance(query["sort"], list) else [query["sort"]]), "_shard_doc"]
    answer = run_search(point.snapshot, point.snapshot.views, query, params)  # type: ignore[arg-type]
    return {"pit_id": pit_id, **answer}
