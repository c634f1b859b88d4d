"""Index a folder of images: embed what is new, send it in bulk, refresh once.

Documents are keyed by the image's sha256, so a re-run finds them already there and sends
nothing; the embedding cache means even a re-created index needs no model time.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import elastic_transport
import numpy as np
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import streaming_bulk
from tqdm import tqdm

from helpers.clip import ClipEmbedder, chunks, run_ahead
from helpers.dataset import ImageRecord, Skipped, scan
from helpers.mapping import VECTOR_FIELD, ensure_index

EXISTS_CHUNK = 64  # images checked for existence in the index together
BULK_CHUNK = 64  # documents per bulk request (about 400 kB): sent while the model embeds the next
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

    def new_files() -> Iterator[tuple[Path, str]]:
        """Files not in the index yet, checked 64 at a time, as the model asks for more."""
        for chunk in chunks(records, EXISTS_CHUNK):
            present = existing_ids(es, index, [r.sha256 for r in chunk])
            report.indexed += len(present)
            bar.update(len(present))
            yield from ((r.path, r.sha256) for r in chunk if r.sha256 not in present)

    def actions() -> Iterator[dict]:
        for sha, vector in embedder.embed_file_stream(new_files()):
            bar.update(1)
            if isinstance(vector, Exception):
                report.skipped.append(Skipped(by_id[sha].path, f"could not decode the image ({vector})"))
                continue
            source = document(by_id[sha], vector, uploaded_at)
            yield {"_op_type": "create", "_index": index, "_id": sha, "_source": source}

    # Bulk requests go from a thread of their own, one in flight, while the model embeds the
    # next images.
    with ThreadPoolExecutor(max_workers=1) as sender:
        sent = run_ahead(chunks(actions(), BULK_CHUNK), partial(send_chunk, es), sender, depth=1)
        for ok, item in itertools.chain.from_iterable(sent):
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
