"""Bulk sending for `index_folder`: existence checks, and bulk requests that back off.

Documents are keyed by the image's sha256, so a repeated document is a harmless 409 and a
request can be retried safely.
"""

from __future__ import annotations

import itertools
import time

import elastic_transport
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import streaming_bulk

from helpers._scan import ImageRecord, Skipped

TRANSIENT = {429, 502, 503, 504}
sleep = time.sleep  # the backoff's wait, replaceable in tests


def existing_ids(
    es: Elasticsearch, index: str, ids: list[str], field: str | None = None
) -> tuple[set[str], dict[str, str]]:
    """Which of these ids the index holds, and which of those lack `field` (a document sent
    without it, by hand or by an older run), each with its `uploaded_at`: one `_mget`, with
    only those two fields sent back (none without `field`)."""
    if field is None:
        response = es.mget(index=index, ids=ids, source=False)
    else:
        response = es.mget(index=index, ids=ids, source_includes=[field, "uploaded_at"])
    found = [doc for doc in response["docs"] if doc.get("found")]
    lacking = {
        doc["_id"]: doc["_source"].get("uploaded_at")
        for doc in found
        if field is not None and field not in doc.get("_source", {})
    }
    return {doc["_id"] for doc in found}, lacking


def send_chunk(es: Elasticsearch, chunk: list[dict], attempts: int = 5) -> list[tuple[bool, dict]]:
    """One bulk request. A throttled or unavailable cluster (429, 502-504, a dropped
    connection) is retried after 1, 2, 4, 8 s: safe, because `create` with content-hash ids
    makes a repeated document a harmless 409. Per-document 429s are retried by streaming_bulk."""
    client = es.options(retry_on_status=())  # the transport would retry at once; back off instead
    for attempt in itertools.count():
        try:
            return list(streaming_bulk(client, chunk, chunk_size=len(chunk), max_retries=3, raise_on_error=False))
        except (ApiError, elastic_transport.TransportError) as error:
            dropped = isinstance(error, elastic_transport.ConnectionError)
            if not (dropped or getattr(error, "status_code", None) in TRANSIENT) or attempt >= attempts - 1:
                raise
            sleep(2**attempt)


def unique_by_content(results: list[ImageRecord | Skipped]) -> tuple[list[ImageRecord], list[Skipped]]:
    records, skipped, first = [], [], {}
    for result in results:
        if isinstance(result, Skipped):
            skipped.append(result)
        elif result.sha256 in first:
            skipped.append(Skipped(result.path, f"same content as {first[result.sha256]} (indexed once)"))
        else:
            first[result.sha256] = result.filename
            records.append(result)
    return records, skipped
