"""A pytest plugin that runs elasticsearch-py's own server tests (`test_helpers.py` and
`test_vectorstore/`, elasticsearch-py 8.19.3, read in place from ../shared/es-py-tests) against
one backend, chosen by ES_PY_BACKEND:

- `embedded`: the in-process engine, in a fresh folder (ES_PY_ENGINE_PATH);
- `cluster`: the cluster the project's settings name (ELASTICSEARCH_URL and its credentials);
- a URL (noida-db): the server there.

It is loaded with `--noconftest -p embedded_es.tests.es_py_plugin` (see `embedded_es/tests/test_es_py_suite.py`), so
the suite's own conftest files, which wipe snapshots, data streams and templates, are not
used: this plugin gives the same fixtures (`sync_client`, `sync_client_request_saving`, ...)
and wipes the cluster index by index, as Elasticsearch refuses wildcard deletes. Tests that
need what the engine does not offer are skipped here by name, each with its reason."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, NotFoundError

BACKEND = os.environ.get("ES_PY_BACKEND", "embedded")
ML_MODEL = "needs an ML model deployed on the cluster"
PIPELINES = "needs ingest pipelines"
TEMPLATES_STREAMS = "needs index templates and data streams"
SIMILARITY = "needs custom similarity and analysis settings"
# The client computes maximal marginal relevance itself, with an optional package.
MMR_PACKAGE = "needs the simsimd package (pip install elasticsearch[vectorstore_mmr]), absent here"
# Tests that need what the engine does not offer: (file, test name without parameters) -> reason.
# They are skipped on every backend so all backends run the same set.
NEEDS = {
    ("test_helpers.py", "test_reindex_index_datastream"): TEMPLATES_STREAMS,
    ("test_helpers.py", "test_reindex_index_datastream_op_type_index"): TEMPLATES_STREAMS,
    ("test_embedding_service.py", "test_elasticsearch_embedding_documents"): ML_MODEL,
    ("test_embedding_service.py", "test_elasticsearch_embedding_query"): ML_MODEL,
    ("test_embedding_service.py", "test_user_agent_default"): ML_MODEL,
}
NEEDS_IN_CLASS = {
    "test_search_with_knn_infer_instack": ML_MODEL,
    "test_search_with_sparse_infer_instack": ML_MODEL,
    "test_deployed_model_check_fails_semantic": ML_MODEL,
    # BM25Strategy creates its index with a custom BM25 similarity (k1, b) in the index settings.
    "test_search_bm25": SIMILARITY,
    "test_search_bm25_with_filter": SIMILARITY,
    "test_user_agent_default": SIMILARITY,
    "test_user_agent_custom": SIMILARITY,
    "test_bulk_args": SIMILARITY,
    "test_custom_index_settings": SIMILARITY,
    # The VectorStore's test creates its index with `index.default_pipeline`.
    "test_indexing_exception_error": PIPELINES,
}


def mmr_dependency_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("simsimd") is None


def make_client(transport_class: type | None = None) -> Elasticsearch:
    extra = {"transport_class": transport_class} if transport_class else {}
    if BACKEND == "embedded":
        from embedded_es import embedded_client

        return embedded_client(Path(os.environ["ES_PY_ENGINE_PATH"]), **extra)
    if BACKEND == "cluster":
        from helpers._settings import load_settings

        settings = load_settings()
        auth: dict = {"request_timeout": 60}
        if settings.elastic_api_key:
            auth["api_key"] = settings.elastic_api_key.reveal()
        elif settings.elastic_username and settings.elastic_password:
            auth["basic_auth"] = (settings.elastic_username, settings.elastic_password.reveal())
        if settings.ca_certs:
            auth["ca_certs"] = str(settings.ca_certs)
        return Elasticsearch(settings.elasticsearch_url, **auth, **extra)
    return Elasticsearch(BACKEND, request_timeout=60, **extra)


def wipe(client: Elasticsearch) -> None:
    """Delete every index one by one (Elasticsearch refuses `DELETE *` by default), and reset
    the cluster settings a test may have changed."""
    for name in client.indices.get(index="*", expand_wildcards="all"):
        if name.startswith("."):
            continue  # a cluster's system indices
        with contextlib.suppress(NotFoundError):  # gone meanwhile
            client.indices.delete(index=name)


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    return {"embedded": "http://embedded:9200", "cluster": os.environ.get("ELASTICSEARCH_URL", "")}.get(
        BACKEND, BACKEND
    )


@pytest.fixture(scope="session")
def ca_certs() -> None:
    return None


@pytest.fixture(scope="session")
def sync_client_factory() -> Iterator[Elasticsearch]:
    client = make_client()
    wipe(client)
    yield client
    client.close()


@pytest.fixture
def sync_client(sync_client_factory: Elasticsearch) -> Iterator[Elasticsearch]:
    try:
        yield sync_client_factory
    finally:
        wipe(sync_client_factory)


@pytest.fixture
def index() -> str:
    return f"test_{uuid.uuid4().hex}"


@pytest.fixture
def sync_client_request_saving_factory() -> Iterator[Elasticsearch]:
    from test_elasticsearch.test_server.test_vectorstore import RequestSavingTransport

    client = make_client(RequestSavingTransport)
    wipe(client)
    yield client
    client.close()


@pytest.fixture
def sync_client_request_saving(sync_client_request_saving_factory: Elasticsearch) -> Iterator[Elasticsearch]:
    try:
        yield sync_client_request_saving_factory
    finally:
        wipe(sync_client_request_saving_factory)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = item.originalname if isinstance(item, pytest.Function) else item.name
        reason = NEEDS.get((Path(str(item.fspath)).name, name))
        if reason is None and item.cls is not None:
            reason = NEEDS_IN_CLASS.get(name)
        if name == "test_max_marginal_relevance_search" and mmr_dependency_missing():
            reason = MMR_PACKAGE
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
