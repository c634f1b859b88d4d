"""Hybrid search: the query's words matched in labels and file names, fused with kNN.

Two ways to fuse, chosen by what the cluster allows:

- **Reciprocal rank fusion** (`rrf` retriever; Elasticsearch 8.16+ with an Enterprise or trial
  licence, and the embedded engine): each document scores Σ 1 / (60 + its rank) over the two
  result lists. No weights to tune, because scores of different kinds are never added. This is
  the form Elasticsearch's documentation teaches now.
- **Linear combination** (any licence): one request with a `query`
  and a `knn` section; a document found by either scores
  `word_weight × BM25 + (1 − word_weight) × kNN score`. The kNN score lies in [0, 1] while BM25
  is unbounded (about 2 to 6 for a label match on a small index), so the default word weight
  is small: words re-rank images that kNN already finds close, and bring in exact label
  matches it missed.
"""

from __future__ import annotations

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from helpers.connect import server_version
from helpers.embedder import Embedder
from helpers.search import RETURNED_FIELDS, Hit, depth, hits_of, knn_clause

TEXT_FIELDS = ["labels.text", "filename.text"]
RRF_LICENCES = {"enterprise", "trial"}
RRF_SINCE = (8, 16)
RANK_CONSTANT = 60
DEFAULT_WORD_WEIGHT = 0.1
FUSIONS = ("auto", "rrf", "linear")


def rrf_available(es: Elasticsearch) -> bool:
    """Whether this backend runs the `rrf` retriever: version and licence, asked, not assumed.
    The embedded engine answers retrievers itself, with no licence; another backend without a
    licence API (some compatible servers) gets False."""
    try:
        info = es.info()
        if info["version"].get("build_flavor") == "embedded":
            return True
        licence = es.license.get()["license"]["type"]
    except (ApiError, TransportError, KeyError):
        return False
    return server_version(info) >= RRF_SINCE and licence in RRF_LICENCES


def words_query(text: str, filters: list[dict]) -> dict:
    """Any of the words, in labels or file names; the same filters as the kNN side."""
    return {"bool": {"must": [{"multi_match": {"query": text, "fields": TEXT_FIELDS}}], "filter": filters}}


def rrf_body(clause: dict, text: str) -> dict:
    window = clause["k"]  # page × k: the fused list must reach the end of the page
    retrievers = [{"standard": {"query": words_query(text, clause.get("filter", []))}}, {"knn": clause}]
    return {
        "retriever": {"rrf": {"retrievers": retrievers, "rank_window_size": window, "rank_constant": RANK_CONSTANT}}
    }


def linear_body(clause: dict, text: str, word_weight: float) -> dict:
    query = words_query(text, clause.get("filter", []))
    query["bool"]["boost"] = word_weight
    return {"query": query, "knn": {**clause, "boost": 1 - word_weight}}


def hybrid_search(
    es: Elasticsearch,
    embedder: Embedder,
    index: str,
    text: str,
    k: int = 10,
    page: int = 1,
    fusion: str = "auto",
    word_weight: float = DEFAULT_WORD_WEIGHT,
    **options,
) -> tuple[list[Hit], str]:
    """Hits for `text` by meaning (CLIP) and by words (BM25), and the fusion used."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}")
    if not 0 <= word_weight <= 1:
        raise ValueError(f"word_weight must be between 0 and 1, got {word_weight}")
    needed = depth(k, page)
    if fusion == "auto":
        fusion = "rrf" if rrf_available(es) else "linear"
    clause = knn_clause(embedder.embed_texts([text])[0], k=needed, **options)
    body = rrf_body(clause, text) if fusion == "rrf" else linear_body(clause, text, word_weight)
    response = es.search(index=index, **body, from_=(page - 1) * k, size=k, source=RETURNED_FIELDS)
    return hits_of(response), fusion
