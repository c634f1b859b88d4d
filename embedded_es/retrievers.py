"""Retrievers, the form Elasticsearch 8.16+ and 9.x documentation writes search in:
`standard` (a query), `knn`, and the compound `rrf` (reciprocal rank fusion, `rank_constant`,
`rank_window_size`) and `linear` (weighted sum, optionally `minmax`-normalised), nested in each
other, each with its own `filter`.

A leaf retriever runs as an ordinary search (`search.py`); a compound one takes the first
`rank_window_size` hits of each child and fuses them. A compound retriever's `filter` applies
to every leaf under it, as on a cluster. `hits.total` counts every document some leaf matched,
which is what a cluster reports for a compound retriever. The older `rank` / `sub_searches`
body keys stay refused by name (`search.py`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from embedded_es.errors import EsError, bad_request, unsupported, validation_failed
from embedded_es.search import render_hits, run_search, search_response, total_hits, whole_number
from embedded_es.store import IndexView, Store

SUPPORTED = {"standard", "knn", "rrf", "linear"}
# Retrievers Elasticsearch has that the engine refuses by name.
ELASTICSEARCH_RETRIEVERS = {"text_similarity_reranker", "rule", "rescorer", "pinned"}
# Body keys a search with a retriever may also carry: what shapes the page of hits.
WITH_RETRIEVER = {"retriever", "size", "from", "_source", "fields", "track_total_hits", "timeout"}
WITH_RETRIEVER |= {"docvalue_fields", "stored_fields"}
STANDARD_OPTIONS = {"query", "filter", "min_score", "sort", "search_after", "_name"}
KNN_OPTIONS = {"field", "query_vector", "k", "num_candidates", "filter", "similarity", "_name"}
RRF_OPTIONS = {"retrievers", "rank_window_size", "rank_constant", "filter", "_name"}
LINEAR_OPTIONS = {"retrievers", "rank_window_size", "filter", "normalizer", "_name"}
LINEAR_CHILD_OPTIONS = {"retriever", "weight", "normalizer"}
NORMALIZERS = {"none", "minmax"}
DEFAULT_RANK_WINDOW_SIZE = 10
DEFAULT_RANK_CONSTANT = 60

Key = tuple[int, int]  # (position of the index in the request, slot)


@dataclass
class Ranked:
    """A retriever's answer: its hits in order with their scores, and every document it matched."""

    hits: list[tuple[Key, float]]
    matched: set[Key] = field(default_factory=set)


def parse_error(reason: str) -> EsError:
    return EsError(400, "x_content_parse_exception", reason)


def one_retriever(spec: Any, where: str) -> tuple[str, dict]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise parse_error(f"[{where}] must be an object with exactly one retriever")
    ((name, options),) = spec.items()
    if name in ELASTICSEARCH_RETRIEVERS:
        raise unsupported("the retriever", name)
    if name not in SUPPORTED:
        raise parse_error(f"[1:{len(where) + 3}] unknown retriever [{name}]")
    if not isinstance(options, dict):
        raise parse_error(f"[{name}] retriever must be an object")
    allowed = {"standard": STANDARD_OPTIONS, "knn": KNN_OPTIONS, "rrf": RRF_OPTIONS, "linear": LINEAR_OPTIONS}[name]
    for key in options:
        if key not in allowed:
            raise parse_error(f"[{name}] unknown field [{key}]")
    return name, options


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def keys_of(views: list[IndexView], hits: list[dict]) -> list[tuple[Key, float]]:
    position = {view.name: i for i, view in enumerate(views)}
    found = []
    for hit in hits:
        p = position[hit["_index"]]
        score = hit["_score"]
        found.append(((p, views[p].slot_of[hit["_id"]]), float(score) if score is not None else 0.0))
    return found


class Retrieval:
    def __init__(self, store: Store, views: list[IndexView], params: dict) -> None:
        self.store, self.views = store, views
        self.params = {k: v for k, v in params.items() if k in ("search_type", "preference")}
        self.everything = sum(view.count for view in views)

    def search(self, body: dict) -> list[tuple[Key, float]]:
        body = {**body, "_source": False, "track_total_hits": False}
        return keys_of(self.views, run_search(self.store, self.views, body, self.params)["hits"]["hits"])

    def run(self, spec: Any, filters: list, where: str = "retriever") -> Ranked:
        name, options = one_retriever(spec, where)
        if name == "standard":
            return self.standard(options, filters)
        if name == "knn":
            return self.knn(options, filters)
        return self.compound(name, options, filters)

    def standard(self, options: dict, filters: list) -> Ranked:
        query = options.get("query", {"match_all": {}})
        own = as_list(options.get("filter")) + filters
        body: dict = {"query": {"bool": {"must": [query], "filter": own}} if own else query}
        body["size"] = self.everything
        for key in ("min_score", "sort", "search_after"):
            if key in options:
                body[key] = options[key]
        hits = self.search(body)
        return Ranked(hits, {key for key, _ in hits})

    def knn(self, options: dict, filters: list) -> Ranked:
        missing = [key for key in ("field", "k", "num_candidates") if key not in options]
        if "query_vector" not in options:
            missing.insert(1, "query_vector")
        if missing:
            raise parse_error(f"[knn] retriever requires [{missing[0]}]")
        clause = {key: value for key, value in options.items() if key != "_name"}
        own = as_list(options.get("filter")) + filters
        if own:
            clause["filter"] = own
        else:
            clause.pop("filter", None)
        hits = self.search({"knn": clause, "size": whole_number(options, {}, "k", 10)})
        return Ranked(hits, {key for key, _ in hits})

    def compound(self, name: str, options: dict, filters: list) -> Ranked:
        window = whole_number(options, {}, "rank_window_size", DEFAULT_RANK_WINDOW_SIZE)
        children = options.get("retrievers")
        if not isinstance(children, list) or not children:
            raise parse_error(f"[{name}] [retrievers] must be a non-empty array of retrievers")
        own = as_list(options.get("filter")) + filters
        fused: dict[Key, float] = {}
        matched: set[Key] = set()
        if name == "rrf":
            constant = whole_number(options, {}, "rank_constant", DEFAULT_RANK_CONSTANT)
            if constant < 1:
                raise bad_request(f"[rank_constant] must be greater or equal to [1] for [{name}]")
            for child in children:
                ranked = self.run(child, own, f"{name}.retrievers")
                matched |= ranked.matched
                for rank, (key, _) in enumerate(ranked.hits[:window], 1):
                    fused[key] = fused.get(key, 0.0) + 1.0 / (constant + rank)
        else:
            default_normalizer = options.get("normalizer", "none")
            for child in children:
                if not isinstance(child, dict) or "retriever" not in child or set(child) - LINEAR_CHILD_OPTIONS:
                    raise parse_error("[linear] each of [retrievers] must be {retriever, weight, normalizer}")
                weight = child.get("weight", 1.0)
                if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                    raise bad_request(f"[linear] retriever weight must be a non-negative number, got [{weight}]")
                normalizer = child.get("normalizer", default_normalizer)
                if not isinstance(normalizer, str):
                    raise parse_error(f"[linear] [normalizer] must be a name, got [{normalizer}]")
                if normalizer not in NORMALIZERS:
                    raise unsupported("the retriever", f"linear normalizer {normalizer}")
                ranked = self.run(child["retriever"], own, "linear.retrievers")
                matched |= ranked.matched
                top = ranked.hits[:window]
                for key, score in normalized(top, normalizer):
                    fused[key] = fused.get(key, 0.0) + float(weight) * score
        ordered = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:window]
        return Ranked(ordered, matched)


def normalized(hits: list[tuple[Key, float]], normalizer: str) -> list[tuple[Key, float]]:
    """`minmax` as Elasticsearch computes it: (score - min) / (max - min) over the child's
    window; all scores equal (within 1e-6) leaves each at that score."""
    if normalizer == "none" or not hits:
        return hits
    scores = [score for _, score in hits]
    low, high = min(scores), max(scores)
    if abs(high - low) < 1e-6:
        return [(key, low) for key, _ in hits]
    return [(key, (score - low) / (high - low)) for key, score in hits]


def run_retriever(store: Store, views: list[IndexView], body: dict, params: dict) -> dict:
    """A search whose body has a `retriever`: the retriever ranks, the body shapes the page."""
    started = time.perf_counter()
    for key in body:
        if key not in WITH_RETRIEVER:
            raise bad_request(f"cannot specify [retriever] and [{key}]")
    size = whole_number(body, params, "size", 10)
    offset = whole_number(body, params, "from", 0)
    name, options = one_retriever(body["retriever"], "retriever")
    if name in ("rrf", "linear"):
        window = whole_number(options, {}, "rank_window_size", DEFAULT_RANK_WINDOW_SIZE)
        if size > window:
            raise validation_failed(
                f"[{name}] requires [rank_window_size: {window}] be greater than or equal to [size: {size}]"
            )
    ranked = Retrieval(store, views, params).run(body["retriever"], [])
    page = [(p, slot, score) for (p, slot), score in ranked.hits[offset : offset + size]]
    page_body = {k: v for k, v in body.items() if k != "retriever"}
    hits = render_hits(store, views, page, page_body, params)
    found: dict[str, Any] = {"max_score": max((s for _, s in ranked.hits), default=None), "hits": hits}
    return search_response(started, len(views), found, total_hits(len(ranked.matched), body, params))
