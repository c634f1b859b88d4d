"""`connect()`: an official Elasticsearch client for a real cluster, or for the embedded engine.

A cluster comes from `ELASTICSEARCH_URL` (credentials in the URL, or an API key, or user and
password) or from `ELASTIC_CLOUD_ID` with an API key. TLS certificates are always verified.
With neither, the embedded engine answers in process and keeps its data in
`EMBEDDED_ES_PATH`.
"""

from __future__ import annotations

from elasticsearch import Elasticsearch

from helpers.config import PROJECT_ROOT, Settings, load_settings, redact_url
from helpers.embedded import embedded_client


def describe(settings: Settings) -> str:
    """Which backend the settings select, in words, with no secrets."""
    if settings.elasticsearch_url:
        return f"Elasticsearch cluster at {redact_url(settings.elasticsearch_url)}"
    if settings.elastic_cloud_id:
        return f"Elastic Cloud deployment {settings.elastic_cloud_id.split(':')[0]}"
    path = settings.embedded_es_path
    shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path.name
    return f"embedded engine (in-process stand-in for Elasticsearch, data in {shown})"


def cluster_client(settings: Settings) -> Elasticsearch:
    auth: dict = {}
    if settings.elastic_api_key:
        auth["api_key"] = settings.elastic_api_key.reveal()
    elif settings.elastic_username and settings.elastic_password:
        auth["basic_auth"] = (settings.elastic_username, settings.elastic_password.reveal())
    common = {"request_timeout": 30, "retry_on_timeout": True, "max_retries": 3, **auth}
    if settings.elasticsearch_url:
        return Elasticsearch(settings.elasticsearch_url, **common)
    return Elasticsearch(cloud_id=settings.elastic_cloud_id, **common)


def connect(settings: Settings | None = None, quiet: bool = False) -> Elasticsearch:
    """The client the notebooks and the CLI use; says which backend it is talking to."""
    settings = settings or load_settings()
    client = cluster_client(settings) if settings.uses_cluster else embedded_client(settings.embedded_es_path)
    if not quiet:
        print(f"Connected to the {describe(settings)}")
    return client
