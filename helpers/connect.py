"""`connect()`: an official Elasticsearch client for a real cluster, or for the embedded engine.

A cluster comes from `ELASTICSEARCH_URL` (credentials in the URL, or an API key, or user and
password) or from `ELASTIC_CLOUD_ID` with an API key. TLS certificates are verified (against
`ELASTIC_CA_CERTS` if given) unless `ELASTIC_VERIFY_CERTS=false`, which warns. With neither,
the embedded engine answers in process and keeps its data in `EMBEDDED_ES_PATH`.
"""

from __future__ import annotations

import warnings

import elastic_transport
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch, NotFoundError
from elasticsearch.serializer import OrjsonSerializer

from embedded_es import embedded_client
from embedded_es.node import EmbeddedNode, store_for
from embedded_es.store import Store
from helpers._errors import ActionableError
from helpers._settings import PROJECT_ROOT, Settings, load_settings, redact_url, scrub


class ClusterError(ActionableError):
    """Elasticsearch could not do what was asked; the message is one line saying what to do."""


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
    tls: dict = {"ca_certs": str(settings.ca_certs)} if settings.ca_certs else {}
    if not settings.verify_certs:
        warnings.warn(
            "TLS certificate verification is OFF (ELASTIC_VERIFY_CERTS=false): anyone on the network path "
            "can read and change this traffic. Prefer ELASTIC_CA_CERTS with the cluster's CA certificate.",
            stacklevel=3,
        )
        tls = {"verify_certs": False, "ssl_show_warn": False}
    common = {"request_timeout": 30, "retry_on_timeout": True, "max_retries": 3, "serializer": OrjsonSerializer()}
    common |= auth | tls
    if settings.elasticsearch_url:
        return Elasticsearch(settings.elasticsearch_url, **common)
    return Elasticsearch(cloud_id=settings.elastic_cloud_id, **common)


def explain(error: Exception, settings: Settings) -> str | None:
    """One line a person can act on for an error from Elasticsearch, or None if it is not one."""
    where = describe(settings)
    if isinstance(error, elastic_transport.TlsError):
        message = (
            f"TLS certificate verification failed for the {where}: set ELASTIC_CA_CERTS to the cluster's CA "
            "certificate (or, on a network you trust, ELASTIC_VERIFY_CERTS=false)"
        )
    elif isinstance(error, elastic_transport.ConnectionTimeout):
        message = f"the {where} did not answer in time: check that it is running and reachable"
    elif isinstance(error, elastic_transport.ConnectionError):
        message = f"cannot reach the {where}: is it running, and is ELASTICSEARCH_URL (or ELASTIC_CLOUD_ID) right?"
    elif isinstance(error, AuthenticationException):
        message = (
            f"the {where} rejected the credentials (401): check ELASTIC_API_KEY, "
            "or ELASTIC_USERNAME and ELASTIC_PASSWORD"
        )
    elif isinstance(error, AuthorizationException):
        message = f"the {where} refused the request (403): these credentials lack the privileges it needs"
    elif isinstance(error, NotFoundError) and error.error == "index_not_found_exception":
        index = (error.body or {}).get("error", {}).get("index", "?")
        message = f"index {index!r} does not exist: index some images first (python -m helpers index PATH)"
    elif isinstance(error, ApiError):

        def deepest(cause: object) -> str:
            """The most specific reason: down the `caused_by` chain, else the first root cause
            ("all shards failed" says less than the shard's own error)."""
            if not isinstance(cause, dict):
                return str(cause or "")
            if isinstance(cause.get("caused_by"), dict):
                return deepest(cause["caused_by"])
            roots = [r for r in cause.get("root_cause") or [] if isinstance(r, dict) and r.get("reason")]
            return str(roots[0]["reason"] if roots else cause.get("reason", ""))

        reason = deepest(error.body.get("error")) if isinstance(error.body, dict) else ""
        message = f"Elasticsearch refused the request ({error.meta.status} {error.error}): {reason}".rstrip(": ")
    else:
        return None
    return scrub(message, settings)


def connect(settings: Settings | None = None, quiet: bool = False) -> Elasticsearch:
    """The client the notebooks and the CLI use. A cluster is asked for its version first, so
    a wrong address, credentials or certificate fail here, as one readable ClusterError."""
    settings = settings or load_settings()
    if not settings.uses_cluster:
        client = embedded_client(settings.embedded_es_path)
        version = ""
    else:
        client = cluster_client(settings)
        try:
            version = f" {client.info()['version']['number']}"
        except (ApiError, elastic_transport.TransportError) as error:
            raise ClusterError(explain(error, settings)) from None
    if not quiet:
        print(f"Connected to the {describe(settings)}{version}")
    return client


def server_version(info: dict) -> tuple[int, int]:
    """(major, minor) of a `GET /` answer's version number ("8.19.3", "9.1.0-SNAPSHOT")."""
    major, minor = info["version"]["number"].split("-")[0].split(".")[:2]
    return int(major), int(minor)


def embedded_store(es: Elasticsearch) -> Store | None:
    """The embedded engine's store behind a client (for figures only it can measure, such as
    the bytes its vectors take), or None for a cluster."""
    for node in es.transport.node_pool.all():
        if isinstance(node, EmbeddedNode):
            return store_for(node.data_path)
    return None
