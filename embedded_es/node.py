"""The official client's transport, pointed at the in-process engine instead of a socket.

`Elasticsearch("http://embedded", node_class=...)` then works exactly as against a cluster:
same API, same exceptions (the client builds them from the status and error body).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.exceptions import HTTP_EXCEPTIONS
from elasticsearch.serializer import OrjsonSerializer

from embedded_es.api import handle
from embedded_es.errors import EsError
from embedded_es.store import Store

RESPONSE_HEADERS = {
    "content-type": "application/vnd.elasticsearch+json;compatible-with=8",
    "x-elastic-product": "Elasticsearch",  # the client refuses responses without it
}
_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def store_for(path: Path) -> Store:
    """One store per data folder per process, shared by every client opened on it."""
    key = path.resolve()
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Store(key)
        return _stores[key]


def close_store(path: Path) -> None:
    """Close a data folder's store and free its in-memory vectors (reopened on next use)."""
    with _stores_lock:
        store = _stores.pop(path.resolve(), None)
    if store is not None:
        store.db.close()


class EmbeddedNode(BaseNode):
    data_path: Path  # set by `embedded_client` on a subclass

    def perform_request(self, method, target, body=None, headers=None, request_timeout=None) -> NodeApiResponse:
        started = time.perf_counter()
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            status, payload = handle(store_for(self.data_path), method, unquote(url.path), params, body)
        except EsError as error:
            status, payload = error.status, error.body()
        except orjson.JSONDecodeError as error:
            status, payload = 400, EsError(400, "parse_exception", f"request body is not valid JSON: {error}").body()
        data = b"" if method == "HEAD" else orjson.dumps(payload)
        meta = ApiResponseMeta(
            status=status,
            http_version="1.1",
            headers=HttpHeaders(RESPONSE_HEADERS),
            duration=time.perf_counter() - started,
            node=self.config,
        )
        if method == "HEAD" and status >= 400 and status != 404:
            # A HEAD answer carries no body, so the client could only say `BadRequestError(400,
            # 'None')`; in process the refusal reaches the caller whole, as the same class.
            raise HTTP_EXCEPTIONS.get(status, ApiError)(message=payload["error"]["type"], meta=meta, body=payload)
        return NodeApiResponse(meta, data)


def embedded_client(path: Path, **options: object) -> Elasticsearch:
    """An official client whose requests are answered by the engine storing data in `path`
    (`options` go to the client, e.g. a `transport_class`)."""
    node_class = type("EmbeddedNode", (EmbeddedNode,), {"data_path": Path(path)})
    return Elasticsearch("http://embedded:9200", node_class=node_class, serializer=OrjsonSerializer(), **options)
