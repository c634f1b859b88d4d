"""The index: one mapping, created on purpose, re-created only when asked, and filled in bulk.

Every `dense_vector` option is spelled out, because the defaults moved between releases
(8.14 made int8_hnsw the default for new indices, 9.1 moved to bbq_hnsw for dims >= 384):
an index built here means the same thing on every cluster.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from elasticsearch import Elasticsearch
from tqdm.auto import tqdm

from helpers._bulk import existing_ids, send_chunk, unique_by_content
from helpers._errors import ActionableError
from helpers._pipeline import chunks, embed_file_stream, run_ahead
from helpers._scan import ImageRecord, Skipped, find_class_names, scan
from helpers.connect import server_version
from helpers.objects import OBJECT_COUNT, OBJECTS_FIELD, Crop, LabelledObject, crop_box, read_objects

if TYPE_CHECKING:
    from helpers.embedder import BatchEmbedder

VECTOR_FIELD = "image_vector"
INDEX_OPTIONS = ("hnsw", "int8_hnsw", "bbq_hnsw")
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 100
# 2: labels and filename also indexed as words (`.text`) for hybrid search; 3: `objects`
MAPPING_VERSION = 3
VERSION_ADDED = {2: "word fields for hybrid search", 3: "objects for object-level search"}
NESTED_KNN_SINCE = (8, 11)  # kNN on a dense_vector inside a nested field
EXISTS_CHUNK = 64  # images checked for existence in the index together
BULK_CHUNK = 64  # documents per bulk request (about 400 kB): sent while the model embeds the next
WORDS = {"text": {"type": "text", "analyzer": "simple"}}  # "red_circle.jpg" -> red, circle, jpg


class IndexMismatch(ActionableError):
    """An existing index cannot hold this model's vectors; the message says what to do."""


def index_mapping(dims: int, model_id: str, index_options: str = "hnsw") -> dict:
    """`dims` comes from the model (`Embedder.dim`), never from a constant. The model id
    goes in `_meta`: two CLIP models can share a dimension but never a vector space.
    `labels` and `filename` are keywords (exact filters) with a `.text` multi-field of words
    (full-text matching for hybrid search). `objects` is `nested`: one hidden document per
    labelled object, with the vector of its crop, so that kNN can rank pictures by their best
    object and say which one matched (`inner_hits`)."""
    if index_options not in INDEX_OPTIONS:
        raise ValueError(f"index_options must be one of {', '.join(INDEX_OPTIONS)}, not {index_options!r}")
    vector = {
        "type": "dense_vector",
        "dims": dims,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": index_options, "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
    }
    objects = {"vector": vector, "label": {"type": "keyword"}, "box": {"type": "integer"}}
    return {
        "_meta": {"model": model_id, "mapping_version": MAPPING_VERSION},
        "properties": {
            VECTOR_FIELD: vector,
            "filename": {"type": "keyword", "fields": WORDS},
            "labels": {"type": "keyword", "fields": WORDS},
            "uploaded_at": {"type": "date"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "sha256": {"type": "keyword"},
            OBJECTS_FIELD: {"type": "nested", "properties": objects},
            OBJECT_COUNT: {"type": "integer"},  # written with `objects`: says they were looked for
        },
    }


def field_summary(spec: dict | None) -> str:
    """One mapping field in a few words: "dense_vector 512 cosine int8_hnsw", "text + keyword"."""
    if spec is None:
        return "-"
    if spec.get("type") == "dense_vector":
        options = spec.get("index_options", {}).get("type", "")
        return f"dense_vector {spec.get('dims')} {spec.get('similarity', '')} {options}".strip()
    if spec.get("type") == "nested":
        return f"nested ({', '.join(spec.get('properties', {}))})"
    subfields = [sub["type"] for sub in spec.get("fields", {}).values()]
    return " + ".join([spec.get("type", "object"), *subfields])


def compare_mappings(guessed: dict, intended: dict) -> str:
    """Two mappings side by side, field by field, with the model each records: what
    Elasticsearch guesses from a first document against what notebook 01 asks for."""
    names = list(dict.fromkeys([*intended.get("properties", {}), *guessed.get("properties", {})]))
    rows = [("field", "guessed by Elasticsearch", "notebook 01's mapping")]
    rows.append(("_meta.model", *(m.get("_meta", {}).get("model", "-") for m in (guessed, intended))))
    for name in names:
        rows.append((name, *(field_summary(m.get("properties", {}).get(name)) for m in (guessed, intended))))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows)


def mapping_of(es: Elasticsearch, index: str) -> dict:
    """An existing index's mappings (through an alias too: the one index behind it)."""
    return next(iter(es.indices.get_mapping(index=index).body.values()))["mappings"]


def existing_model(es: Elasticsearch, index: str) -> tuple[int | None, str | None, int | None]:
    """(vector dimension, model id, mapping version) of an existing index; None where it does not say."""
    mappings = mapping_of(es, index)
    dims = mappings.get("properties", {}).get(VECTOR_FIELD, {}).get("dims")
    meta = mappings.get("_meta", {})
    return dims, meta.get("model"), meta.get("mapping_version")


REMEDY = "re-create it (notebook 01, or `python -m helpers index --recreate`) or set another INDEX_NAME"


def no_model_recorded(index: str) -> IndexMismatch:
    return IndexMismatch(
        f"index {index!r} was not created by this tutorial: its mapping records no CLIP model (documents sent "
        f"to a missing index make Elasticsearch guess one); {REMEDY}"
    )


def check_index(es: Elasticsearch, index: str, dims: int, model_id: str) -> None:
    """Raise `IndexMismatch` unless the existing `index` was made by `index_mapping` for this
    model: one line that says what is wrong and what to do."""
    found_dims, found_model, found_version = existing_model(es, index)
    if found_model is None:
        raise no_model_recorded(index)
    if (found_dims, found_model) != (dims, model_id):
        raise IndexMismatch(
            f"index {index!r} holds {found_dims}-dimensional vectors of model {found_model} but {model_id} "
            f"makes {dims}-dimensional ones: {REMEDY}"
        )
    if found_version != MAPPING_VERSION:
        missing = ", ".join(VERSION_ADDED[v] for v in VERSION_ADDED if v > (found_version or 1))
        raise IndexMismatch(
            f"index {index!r} was built with an older mapping (without {missing}): {REMEDY} "
            "(the embedding cache makes re-indexing quick)"
        )


def check_nested_knn(es: Elasticsearch) -> None:
    """The mapping's `objects` vectors need nested kNN: refuse an older cluster in one line."""
    info = es.info()
    if info["version"].get("build_flavor") != "embedded" and server_version(info) < NESTED_KNN_SINCE:
        raise IndexMismatch(
            f"Elasticsearch {info['version']['number']} cannot create this tutorial's index: kNN over its `objects` "
            "(a nested field) needs 8.11 or later; use a newer cluster, or the embedded engine (no ELASTICSEARCH_URL)"
        )


def ensure_index(
    es: Elasticsearch, index: str, dims: int, model_id: str, index_options: str = "hnsw", recreate: bool = False
) -> str:
    """Create the index, keep a compatible one, or (only with `recreate=True`) replace it.
    Returns what happened: "created", "kept" or "recreated"."""
    exists = bool(es.indices.exists(index=index))
    if not exists or recreate:  # before anything is deleted
        check_nested_knn(es)
    if exists and recreate:
        es.indices.delete(index=index)
    elif exists:
        check_index(es, index, dims, model_id)
        return "kept"
    es.indices.create(index=index, mappings=index_mapping(dims, model_id, index_options))
    return "recreated" if exists else "created"


@dataclass
class IndexReport:
    index: str
    indexed: int = 0  # images of the folder now in the index
    new: int = 0  # of which this run added
    objects: int = 0  # labelled objects in the pictures this run indexed (new, or completed)
    skipped: list[Skipped] = field(default_factory=list)
    skipped_objects: list[Skipped] = field(default_factory=list)  # left out of pictures that were indexed

    def as_json(self) -> dict:
        def listed(items: list[Skipped]) -> list[dict]:
            return [{"path": str(s.path), "reason": s.reason} for s in items]

        return {
            "index": self.index,
            "indexed": self.indexed,
            "new": self.new,
            "objects": self.objects,
            "skipped": listed(self.skipped),
            "skipped_objects": listed(self.skipped_objects),
        }


def document(record: ImageRecord, vector: np.ndarray, uploaded_at: str, objects: list[dict] | None = None) -> dict:
    source = {
        "filename": record.filename,
        "labels": list(record.labels),
        "uploaded_at": uploaded_at,
        "width": record.width,
        "height": record.height,
        "sha256": record.sha256,
        VECTOR_FIELD: vector.tolist(),
    }
    return source if objects is None else source | {OBJECTS_FIELD: objects, OBJECT_COUNT: len(objects)}


def index_folder(
    es: Elasticsearch,
    embedder: BatchEmbedder,
    root: Path,
    index: str,
    recreate: bool = False,
    progress: bool = True,
    index_options: str = "hnsw",
    objects: bool = True,
) -> IndexReport:
    """Notebook 02's bulk upload for a whole folder, made resumable, parallel and cached: the
    same `create` actions with content-hash ids, after one `_mget` per 64 images to skip what
    the index holds, sent by `streaming_bulk` 64 at a time from a thread of its own while the
    model embeds the next images; one refresh at the end. With `objects`, each picture's
    labelled objects (its YOLO boxes) are cropped and embedded in the same batches, cached by
    picture and box, and stored in its `objects` field; a picture already indexed without them
    (sent by hand, as notebook 02 does first) is indexed again, whole, keeping its upload date.
    Files that cannot be read, and objects that cannot be used, are reported with a reason in
    the returned `IndexReport`, never dropped silently."""
    records, skipped = unique_by_content(list(scan(root)))
    ensure_index(es, index, embedder.dim, embedder.model_id, index_options=index_options, recreate=recreate)
    report = IndexReport(index=index, skipped=skipped)
    by_id = {r.sha256: r for r in records}
    class_names = find_class_names(root if root.is_dir() else root.parent) if objects else []
    labelled: dict[str, list[tuple[LabelledObject, str]]] = {}  # picture -> (object, crop key)
    incomplete: dict[str, str] = {}  # indexed without objects: id -> its upload date, kept
    uploaded_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    bar = tqdm(total=len(records), unit="img", desc="indexing", disable=not progress, file=sys.stdout)

    def sources(record: ImageRecord) -> Iterator[tuple[Path | Crop, str]]:
        """The picture, then the crop of each of its objects (one per distinct crop)."""
        yield record.path, record.sha256
        if not objects:
            return
        found, problems = read_objects(record, class_names)
        report.skipped_objects += problems
        labelled[record.sha256] = []
        crops: set[str] = set()
        for item in found:
            crop = Crop(record.path, crop_box(item.box, record.width, record.height))
            key = crop.cache_key(record.sha256)
            labelled[record.sha256].append((item, key))
            if key not in crops:  # two labels on one box share a crop
                crops.add(key)
                yield crop, key

    def new_files() -> Iterator[tuple[Path | Crop, str]]:
        """Files not in the index yet, checked 64 at a time, as the model asks for more."""
        for chunk in chunks(records, EXISTS_CHUNK):
            present, lacking = existing_ids(es, index, [r.sha256 for r in chunk], OBJECT_COUNT if objects else None)
            incomplete.update(lacking)
            complete = present - lacking.keys()
            report.indexed += len(complete)
            bar.update(len(complete))
            for record in chunk:
                if record.sha256 not in present or record.sha256 in lacking:
                    yield from sources(record)

    def action(sha: str, vector: np.ndarray | Exception, crops: dict[str, np.ndarray | Exception]) -> Iterator[dict]:
        """The picture's `create` action, or `index` to complete one indexed without objects
        (none when it could not be decoded)."""
        bar.update(1)
        record = by_id[sha]
        if isinstance(vector, Exception):
            report.skipped.append(Skipped(record.path, f"could not decode the image ({vector})"))
            return
        stored = None
        if objects:
            stored = []
            for item, key in labelled.pop(sha):
                crop = crops[key]
                if isinstance(crop, Exception):
                    report.skipped_objects.append(Skipped(record.path, f"{item.label} object skipped: {crop}"))
                else:
                    stored.append(item.as_source(crop.tolist()))
            report.objects += len(stored)
        source = document(record, vector, incomplete.get(sha) or uploaded_at, stored)
        operation = "index" if sha in incomplete else "create"  # `index` replaces the document lacking objects
        yield {"_op_type": operation, "_index": index, "_id": sha, "_source": source}

    def actions() -> Iterator[dict]:
        """One document per picture, once its vector and those of its crops (which follow it
        in the stream) are known."""
        picture: tuple[str, np.ndarray | Exception] | None = None
        crops: dict[str, np.ndarray | Exception] = {}
        for key, vector in embed_file_stream(embedder, new_files()):
            if key not in by_id:  # a crop of the picture before it
                crops[key] = vector
                continue
            if picture is not None:
                yield from action(*picture, crops)
            picture, crops = (key, vector), {}
        if picture is not None:
            yield from action(*picture, crops)

    # Bulk requests go from a thread of their own, one in flight, while the model embeds the
    # next images.
    with ThreadPoolExecutor(max_workers=1) as sender:
        sent = run_ahead(chunks(actions(), BULK_CHUNK), partial(send_chunk, es), sender, depth=1)
        for ok, item in itertools.chain.from_iterable(sent):
            operation, result = next(iter(item.items()))
            if ok:
                report.indexed += 1
                report.new += operation == "create"
            elif result.get("status") == 409:  # another run indexed it meanwhile: same content, same id
                report.indexed += 1
            else:
                error = result.get("error", {})
                reason = f"rejected by Elasticsearch: {error.get('type')}: {error.get('reason')}"
                report.skipped.append(Skipped(by_id[result["_id"]].path, reason))
    bar.close()
    es.indices.refresh(index=index)
    return report


def model_index_name(name: str, model_id: str) -> str:
    """The concrete index that holds `model_id`'s vectors behind the alias `name`."""
    slug = "".join(c if c.isalnum() else "-" for c in model_id.lower()).strip("-")
    return f"{name}-{slug}"


def index_for_model(es: Elasticsearch, embedder: BatchEmbedder, root: Path, name: str, **options) -> IndexReport:
    """Index `root` with `embedder`'s model under `name`, never leaving `name` without an index.

    When `name` already holds another model's vectors (as an index or an alias), the images go
    into a new index for this model, `{name}-{model}`; once it is full, one `_aliases` request
    points the alias `name` at it and removes the old index (`remove_index`), so searches see
    the old index until the new one is complete, then the new one, never neither. With no index
    yet, or one for this model, this is `index_folder` on `name`."""
    if not es.indices.exists(index=name):
        return index_folder(es, embedder, root, name, **options)
    dims, model, version = existing_model(es, name)
    if (dims, model, version) == (embedder.dim, embedder.model_id, MAPPING_VERSION):
        return index_folder(es, embedder, root, name, **options)
    target = model_index_name(name, embedder.model_id)
    report = index_folder(es, embedder, root, target, **options)
    if es.indices.exists_alias(name=name):
        old = [index for index in es.indices.get_alias(name=name).body if index != target]
    else:
        old = [name]  # an index of that name: removed in the same request that makes the name an alias
    actions: list[dict] = [{"remove_index": {"index": index}} for index in old]
    es.indices.update_aliases(actions=[*actions, {"add": {"index": target, "alias": name}}])
    return report
