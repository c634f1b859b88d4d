"""Index a folder of images: embed what is new, send it in bulk, refresh once.

Documents are keyed by the image's sha256, so a re-run finds them already there and sends
nothing; the embedding cache means even a re-created index needs no model time.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import elastic_transport
import numpy as np
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import streaming_bulk
from tqdm import tqdm

from helpers.clip import ClipEmbedder
from helpers.dataset import ImageRecord, Skipped, scan
from helpers.mapping import VECTOR_FIELD, ensure_index

EMBED_CHUNK = 64  # images checked for existence, then embedded, together; 8 model batches
BULK_CHUNK = 500
TRANSIENT = {429, 502, 503, 504}
sleep = time.sleep  # the backoff's wait, replaceable in tests


@dataclass
class IndexReport:
    index: str
    indexed: int = 0  # images of the folder now in the index
    new: int = 0  # of which this run added
    skipped: list[Skipped] = field(default_factory=list)

    def as_json(self) -> dict:
        skipped = [{"path": str(s.path), "reason": s.reason} for s in self.skipped]
        return {"index": self.index, "indexed": self.indexed, "new": self.new, "skipped": skipped}


def document(record: ImageRecord, vector: np.ndarray, uploaded_at: str) -> dict:
    return {
        "filename": record.filename,
        "labels": list(record.labels),
        "uploaded_at": uploaded_at,
        "width": record.width,
        "height": record.height,
        "sha256": record.sha256,
        VECTOR_FIELD: vector.tolist(),
    }


def existing_ids(es: Elasticsearch, index: str, ids: list[str]) -> set[str]:
    response = es.search(index=index, query={"ids": {"values": ids}}, source=False, size=len(ids))
    return {hit["_id"] for hit in response["hits"]["hits"]}


def embed_or_report(embedder: ClipEmbedder, records: list[ImageRecord]) -> tuple[list, list[Skipped]]:
    """Embed a chunk; if a file fails to decode, embed one by one to report just that file."""
    try:
        return list(zip(records, embedder.embed_files([r.path for r in records], [r.sha256 for r in records]))), []
    except (OSError, ValueError, SyntaxError):
        pass
    embedded, failed = [], []
    for record in records:
        try:
            embedded.append((record, embedder.embed_files([record.path], [record.sha256])[0]))
        except (OSError, ValueError, SyntaxError) as error:
            failed.append(Skipped(record.path, f"could not decode the image ({error})"))
    return embedded, failed


def chunked(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


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


def index_folder(
    es: Elasticsearch,
    embedder: ClipEmbedder,
    root: Path,
    index: str,
    recreate: bool = False,
    progress: bool = True,
    index_options: str = "hnsw",
) -> IndexReport:
    records, skipped = unique_by_content(list(scan(root)))
    ensure_index(es, index, embedder.dim, embedder.model_id, index_options=index_options, recreate=recreate)
    report = IndexReport(index=index, skipped=skipped)
    by_id = {r.sha256: r for r in records}
    uploaded_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    bar = tqdm(total=len(records), unit="img", desc="indexing", disable=not progress, file=sys.stdout)

    def actions() -> Iterator[dict]:
        for start in range(0, len(records), EMBED_CHUNK):
            chunk = records[start : start + EMBED_CHUNK]
            present = existing_ids(es, index, [r.sha256 for r in chunk])
            report.indexed += len(present)
            bar.update(len(present))
            embedded, failed = embed_or_report(embedder, [r for r in chunk if r.sha256 not in present])
            report.skipped += failed
            bar.update(len(embedded) + len(failed))  # the slow part is done for this chunk
            for record, vector in embedded:
                source = document(record, vector, uploaded_at)
                yield {"_op_type": "create", "_index": index, "_id": record.sha256, "_source": source}

    for ok, item in (result for chunk in chunked(actions(), BULK_CHUNK) for result in send_chunk(es, chunk)):
        result = item["create"]
        if ok:
            report.indexed += 1
            report.new += 1
        elif result.get("status") == 409:  # another run indexed it meanwhile: same content, same id
            report.indexed += 1
        else:
            error = result.get("error", {})
            reason = f"rejected by Elasticsearch: {error.get('type')}: {error.get('reason')}"
            report.skipped.append(Skipped(by_id[result["_id"]].path, reason))
    bar.close()
    es.indices.refresh(index=index)
    return report
