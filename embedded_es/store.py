"""Durable storage for the embedded engine, and the in-memory view that search reads.

SQLite (WAL mode, `synchronous=FULL`) holds indices, documents and vectors; a request is
acknowledged only after its transaction commits, so a `kill -9` loses nothing that was
acknowledged and never leaves half a bulk request behind. Each process keeps every index's
vectors in one float32 matrix (rows normalised for cosine) for exact search, and drops that
view when `PRAGMA data_version` says another process committed, so it never serves stale or
torn data.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson

from embedded_es.ann import Graph
from embedded_es.errors import EsError, index_not_found

SCHEMA = """
CREATE TABLE IF NOT EXISTS indices (name TEXT PRIMARY KEY, uuid TEXT NOT NULL, mappings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    idx TEXT NOT NULL, id TEXT NOT NULL, source TEXT NOT NULL, version INTEGER NOT NULL,
    UNIQUE (idx, id));
CREATE TABLE IF NOT EXISTS index_settings (name TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cluster_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    idx TEXT NOT NULL, field TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (idx, id, field)) WITHOUT ROWID;
"""
# Added after the first release: a document's sequence number and routing, and each index's next
# sequence number (deletes take one too, so it cannot be read off the documents). `migrate` adds them.
SEQ_NO_COLUMNS = [
    ("docs", "seq_no", "INTEGER NOT NULL DEFAULT -1"),
    ("docs", "routing", "TEXT"),
    ("indices", "seq_no", "INTEGER NOT NULL DEFAULT 0"),
]
PRIMARY_TERM = 1  # one primary that never fails over


class DocMeta(NamedTuple):
    """A stored document's metadata, as GET shows it."""

    version: int
    seq_no: int
    routing: str | None


def table_columns(db: sqlite3.Connection) -> set[tuple[str, str]]:
    """(table, column) for the tables `migrate` extends."""
    return {(t, row[1]) for t in ("docs", "indices") for row in db.execute(f"PRAGMA table_info({t})")}


def migrate(db: sqlite3.Connection) -> None:
    """Bring a store written before sequence numbers up to date, in one transaction: its documents
    get sequence numbers in the order they were first written, and nothing else changes."""
    if all((table, column) in table_columns(db) for table, column, _ in SEQ_NO_COLUMNS):
        return
    with db:
        db.execute("BEGIN IMMEDIATE")
        present = table_columns(db)  # read again inside the transaction
        for table, column, declaration in SEQ_NO_COLUMNS:
            if (table, column) not in present:  # another process may have migrated meanwhile
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        db.execute(
            "UPDATE docs SET seq_no = ranked.n FROM (SELECT rowid AS r, "
            "ROW_NUMBER() OVER (PARTITION BY idx ORDER BY rowid) - 1 AS n FROM docs) AS ranked "
            "WHERE docs.rowid = ranked.r AND docs.seq_no < 0"
        )
        db.execute(
            "UPDATE indices SET seq_no = (SELECT COALESCE(MAX(seq_no) + 1, 0) FROM docs WHERE idx = indices.name) "
            "WHERE seq_no = 0"
        )


class NestedVectors(NamedTuple):
    """One document's vectors in one nested field: the offset of each object that has one (its
    position in the nested array) and the vectors, one row each."""

    offsets: np.ndarray  # int32
    rows: np.ndarray  # float32, (objects, dims)

    def encode(self) -> bytes:
        record = np.dtype([("offset", "<i4"), ("vector", "<f4", (self.rows.shape[1],))])
        packed = np.zeros(len(self.offsets), record)
        packed["offset"], packed["vector"] = self.offsets, self.rows
        return packed.tobytes()

    @classmethod
    def decode(cls, blob: bytes, dims: int) -> NestedVectors:
        packed = np.frombuffer(blob, np.dtype([("offset", "<i4"), ("vector", "<f4", (dims,))]))
        return cls(packed["offset"].astype(np.int32), np.array(packed["vector"], np.float32).reshape(-1, dims))


def encoded(vector: np.ndarray | NestedVectors) -> bytes:
    return vector.encode() if isinstance(vector, NestedVectors) else vector.astype(np.float32).tobytes()


def nested_vector_fields(mappings: dict) -> dict[str, dict]:
    """`dense_vector` fields directly inside a (top-level) nested field, by dotted path."""
    found = {}
    for name, spec in mappings.get("properties", {}).items():
        if spec.get("type") == "nested":
            for leaf, inner in spec.get("properties", {}).items():
                if inner.get("type") == "dense_vector" and inner.get("dims") is not None:
                    found[f"{name}.{leaf}"] = inner
    return found


def nested_paths(mappings: dict) -> set[str]:
    return {name for name, spec in mappings.get("properties", {}).items() if spec.get("type") == "nested"}


def vector_fields(mappings: dict, prefix: str = "") -> dict[str, dict]:
    """`dense_vector` fields of a mapping whose dimension is known, by dotted path (objects walked)."""
    found = {}
    for name, spec in mappings.get("properties", {}).items():
        if spec.get("type") == "dense_vector" and spec.get("dims") is not None:
            found[f"{prefix}{name}"] = spec
        elif spec.get("type", "object") == "object":
            found |= vector_fields(spec, f"{prefix}{name}.")
    return found


def as_written(vector: np.ndarray) -> list[float]:
    """A stored float32 vector as JSON numbers in their shortest float32 form (0.1, not
    0.10000000149011612): what was sent comes back, as a cluster's `_source` gives it."""
    return orjson.loads(orjson.dumps(vector, option=orjson.OPT_SERIALIZE_NUMPY))  # orjson writes float32 shortest


def put_at(source: dict, path: str, value: object) -> None:
    """Put a value back at a dotted path, creating the objects on the way."""
    *parents, last = path.split(".")
    node = source
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def put_nested(source: dict, name: str, vectors: NestedVectors) -> None:
    """Put a nested field's vectors back into its objects, each at its offset."""
    path, leaf = name.rsplit(".", 1)
    objects = source.get(path)
    for offset, vector in zip(vectors.offsets, vectors.rows):
        obj = objects if isinstance(objects, dict) and offset == 0 else None
        if isinstance(objects, list) and offset < len(objects):
            obj = objects[offset]
        if isinstance(obj, dict):
            obj[leaf] = as_written(vector)


@dataclass
class VectorColumn:
    """One dense_vector field: a growable float32 matrix, one row per document slot."""

    dims: int
    similarity: str
    matrix: np.ndarray
    present: np.ndarray  # bool per slot: this document has a vector in this field
    indexed: bool = True  # `index: false`: stored and returned, not searchable by kNN
    spec: dict = field(default_factory=dict)  # the field's mapping (index_options)
    touched: set[int] = field(default_factory=set)  # slots written or removed since the graph last synced

    @classmethod
    def empty(cls, spec: dict) -> VectorColumn:
        dims = int(spec["dims"])
        indexed = spec.get("index", True) is not False
        similarity = spec.get("similarity", "cosine") if indexed else "l2_norm"  # l2_norm: rows kept as given
        return cls(dims, similarity, np.zeros((0, dims), np.float32), np.zeros(0, bool), indexed, spec)

    @property
    def kind(self) -> str:
        """The index_options type (`flat` for a field that is not indexed)."""
        return self.spec.get("index_options", {}).get("type", "hnsw") if self.indexed else "flat"

    def stored_form(self, vector: np.ndarray) -> np.ndarray:
        """Cosine compares directions only: rows are kept unit length so search is one product."""
        if self.similarity == "cosine":  # the same arithmetic as a whole matrix's rows on loading
            return vector / np.linalg.norm(vector[None, :], axis=1)[0]
        return vector

    def raw_similarity(self, query: np.ndarray, used: int, slots: np.ndarray | None = None) -> np.ndarray:
        """Raw similarity of every used slot (one pass over the matrix, no copy of it), or of
        the given slots only (a pre-filter that keeps few documents reads only their rows)."""
        rows = self.matrix[:used] if slots is None else self.matrix[slots]
        if self.similarity == "cosine":
            return rows @ (query / np.linalg.norm(query))
        if self.similarity == "l2_norm":
            return np.linalg.norm(rows - query, axis=1)
        return rows @ query  # dot_product, max_inner_product


@dataclass
class NestedColumn(VectorColumn):
    """A dense_vector field inside a nested field: one row per object (not per document),
    appended as documents are written; each row knows its parent's slot and its offset in the
    parent's array. `present` marks the live rows; a parent's update or delete kills its rows."""

    parent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    keys: list[str] = field(default_factory=list)  # "<parent id>#<offset>": what a graph node names
    key_row: dict[str, int] = field(default_factory=dict)
    rows_of: dict[int, np.ndarray] = field(default_factory=dict)  # parent slot -> its live rows

    @classmethod
    def empty(cls, spec: dict) -> NestedColumn:
        base = VectorColumn.empty(spec)
        return cls(base.dims, base.similarity, base.matrix, base.present, base.indexed, spec)

    @property
    def rows(self) -> int:
        return len(self.keys)

    def kill(self, slot: int) -> None:
        for row in self.rows_of.pop(slot, ()):
            self.present[row] = False
            self.touched.add(int(row))

    def append(self, slot: int, doc_id: str, vectors: NestedVectors) -> None:
        first, count = self.rows, len(vectors.offsets)
        if first + count > len(self.present):
            extra = max(first + count, 2 * len(self.present), 64) - len(self.present)
            self.matrix = np.concatenate([self.matrix, np.zeros((extra, self.dims), np.float32)])
            self.present = np.concatenate([self.present, np.zeros(extra, bool)])
            self.parent = np.concatenate([self.parent, np.zeros(extra, np.int64)])
            self.offset = np.concatenate([self.offset, np.zeros(extra, np.int32)])
        rows = np.arange(first, first + count)
        for row, offset, vector in zip(rows, vectors.offsets, vectors.rows):
            self.matrix[row] = self.stored_form(vector)
            key = f"{doc_id}#{int(offset)}"
            self.keys.append(key)
            self.key_row[key] = int(row)
        self.present[rows] = True
        self.parent[rows] = slot
        self.offset[rows] = vectors.offsets
        self.touched.update(int(r) for r in rows)
        self.rows_of[slot] = rows


@dataclass
class IndexView:
    """What search needs of one index, in memory: slots in insertion order."""

    name: str
    uuid: str
    mappings: dict
    ids: list[str] = field(default_factory=list)
    slot_of: dict[str, int] = field(default_factory=dict)
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    columns: dict[str, VectorColumn] = field(default_factory=dict)
    sources: list[dict | None] | None = None  # loaded on first need (filters, non-kNN queries)
    # Term-level lookups built from `sources` on first need: {field: {value: slots}}; any write clears them.
    postings: dict[str, dict] = field(default_factory=dict)
    knn_filters: dict[str, np.ndarray] = field(default_factory=dict)  # kNN pre-filter masks; any write clears them
    graph_of: Callable[[str], Graph] | None = None  # a field's ANN graph, refreshed (set by the store)
    nested: dict[str, NestedColumn] = field(default_factory=dict)  # vector fields inside nested fields
    children: dict[str, object] = field(default_factory=dict)  # nested objects as queries see them; any write clears

    def grow_to(self, size: int) -> None:
        capacity = len(self.live)
        if size <= capacity:
            return
        new_capacity = max(size, 2 * capacity, 64)
        self.live = np.concatenate([self.live, np.zeros(new_capacity - capacity, bool)])
        for column in self.columns.values():
            extra = new_capacity - capacity
            column.matrix = np.concatenate([column.matrix, np.zeros((extra, column.dims), np.float32)])
            column.present = np.concatenate([column.present, np.zeros(extra, bool)])
        if self.sources is not None:
            self.sources.extend([None] * (new_capacity - capacity))

    def put(self, doc_id: str, source: dict, vectors: dict[str, np.ndarray]) -> None:
        slot = self.slot_of.get(doc_id)
        if slot is None:
            slot = len(self.ids)
            self.grow_to(slot + 1)
            self.ids.append(doc_id)
            self.slot_of[doc_id] = slot
        self.live[slot] = True
        self.postings.clear()
        self.knn_filters.clear()
        self.children.clear()
        for name, nested in self.nested.items():
            nested.kill(slot)
            if isinstance(vectors.get(name), NestedVectors) and len(vectors[name].offsets):
                nested.append(slot, doc_id, vectors[name])
        for name, column in self.columns.items():
            if name in vectors or column.present[slot]:
                column.touched.add(slot)
            column.present[slot] = name in vectors
            if name in vectors:
                column.matrix[slot] = column.stored_form(vectors[name])
        if self.sources is not None:
            self.sources[slot] = source

    def remove(self, doc_id: str) -> None:
        slot = self.slot_of.pop(doc_id)
        self.live[slot] = False
        self.postings.clear()
        self.knn_filters.clear()
        self.children.clear()
        for nested in self.nested.values():
            nested.kill(slot)
        for column in self.columns.values():
            if column.present[slot]:
                column.touched.add(slot)
            column.present[slot] = False
        if self.sources is not None:
            self.sources[slot] = None

    def field_type(self, name: str) -> str | None:
        """The mapped type of a dotted field name (objects and multi-fields walked), or None."""
        spec: dict = self.mappings
        for part in name.split("."):
            spec = spec.get("properties", {}).get(part) or spec.get("fields", {}).get(part) or {}
            if not spec:
                return None
        return spec.get("type", "object")

    @property
    def count(self) -> int:
        return len(self.slot_of)


class Store:
    """One data folder. Thread-safe within a process; safe across processes through SQLite."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path / "engine.sqlite", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.executescript(SCHEMA)
        migrate(self.db)
        self.lock = threading.RLock()
        self.path = path
        self.views: dict[str, IndexView] = {}
        self.graphs: dict[tuple[str, str], Graph] = {}  # (index uuid, field) -> its ANN graph
        self.written: set[str] = set()  # indices written by the request being answered
        self.data_version = self._data_version()

    def _data_version(self) -> int:
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def sync(self) -> None:
        """Forget in-memory views if another process committed since we last looked."""
        version = self._data_version()
        if version != self.data_version:
            self.views.clear()
            self.data_version = version

    # --- indices -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM indices ORDER BY name")]

    def exists(self, index: str) -> bool:
        return self.db.execute("SELECT 1 FROM indices WHERE name = ?", (index,)).fetchone() is not None

    def create_index(self, index: str, mappings: dict, settings: dict | None = None) -> str:
        index_uuid = uuid.uuid4().hex[:22]
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT INTO indices (name, uuid, mappings) VALUES (?, ?, ?)",
                    (index, index_uuid, json.dumps(mappings)),
                )
                self.db.execute(
                    "INSERT OR REPLACE INTO index_settings VALUES (?, ?)", (index, json.dumps(settings or {}))
                )
        except sqlite3.IntegrityError:
            existing = self.view(index).uuid
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{index}/{existing}] already exists",
                index_uuid=existing,
                index=index,
            ) from None
        return index_uuid

    def cluster_settings(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, value FROM cluster_settings"))

    def put_cluster_settings(self, changes: dict[str, str | None]) -> None:
        """Set (or, with None, reset) cluster settings, in one transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for name, value in changes.items():
                if value is None:
                    self.db.execute("DELETE FROM cluster_settings WHERE name = ?", (name,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO cluster_settings VALUES (?, ?)", (name, value))

    def settings(self, index: str) -> dict:
        """The settings an index was created with (folders from before settings were kept: none)."""
        row = self.db.execute("SELECT settings FROM index_settings WHERE name = ?", (index,)).fetchone()
        return json.loads(row[0]) if row else {}

    def put_mappings(self, index: str, mappings: dict) -> None:
        """Replace an index's mapping (grown by PUT _mapping or dynamic mapping); the view is
        reloaded on next use, so new vector fields get their columns."""
        self.view(index)  # 404 if missing
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE indices SET mappings = ? WHERE name = ?", (json.dumps(mappings), index))
        self.views.pop(index, None)

    def graph_path(self, index_uuid: str, name: str) -> Path:
        return self.path / "graphs" / index_uuid / f"{name}.npz"

    def graph(self, view: IndexView, name: str) -> Graph:
        """A field's ANN graph, refreshed: loaded from its file (or rebuilt from the stored
        vectors) on first use, then brought up to date with every write since."""
        column = view.nested.get(name) or view.columns[name]
        key = (view.uuid, name)
        graph = self.graphs.get(key)
        fresh = Graph(column.spec, column.dims, column.similarity)
        if graph is None or graph.signature != fresh.signature:
            graph = self.graphs[key] = fresh
            graph.load(self.graph_path(view.uuid, name))
        if isinstance(column, NestedColumn):  # the graph's nodes are objects, named "<parent id>#<offset>"
            rows = column.rows
            graph.sync(view, column.keys, column.key_row, column.present[:rows], column.matrix[:rows], column.touched)
        else:
            used = len(view.ids)
            wanted = view.live[:used] & column.present[:used]
            graph.sync(view, view.ids, view.slot_of, wanted, column.matrix[:used], column.touched)
        if graph.wants_saving():
            self.save_graph(graph, view.uuid, name)
        return graph

    def save_graph(self, graph: Graph, index_uuid: str, name: str) -> None:
        """A graph that cannot be saved (a full or read-only disk) is rebuilt on the next open."""
        with contextlib.suppress(OSError):
            graph.save(self.graph_path(index_uuid, name))

    def refresh(self, index: str) -> None:
        """`_refresh`: every graph of the index takes in the writes since, and is saved."""
        view = self.view(index)
        for name, column in [*view.columns.items(), *view.nested.items()]:
            if column.indexed and column.kind != "flat":
                graph = self.graph(view, name)
                if graph.dirty:
                    self.save_graph(graph, view.uuid, name)

    def delete_index(self, index: str) -> None:
        doomed = self.view(index)  # 404 if missing
        for name in [*doomed.columns, *doomed.nested]:
            self.graphs.pop((doomed.uuid, name), None)
            self.graph_path(doomed.uuid, name).unlink(missing_ok=True)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("indices", "index_settings", "docs", "vectors"):
                column = "name" if table in ("indices", "index_settings") else "idx"
                self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (index,))
        self.views.pop(index, None)

    def view(self, index: str) -> IndexView:
        """The in-memory view of an index, loading it from SQLite on first use."""
        if index in self.views:
            return self.views[index]
        row = self.db.execute("SELECT uuid, mappings FROM indices WHERE name = ?", (index,)).fetchone()
        if row is None:
            raise index_not_found(index)
        view = IndexView(index, row[0], json.loads(row[1]))
        view.graph_of = lambda name: self.graph(view, name)
        view.columns = {name: VectorColumn.empty(spec) for name, spec in vector_fields(view.mappings).items()}
        ids = [r[0] for r in self.db.execute("SELECT id FROM docs WHERE idx = ? ORDER BY rowid", (index,))]
        view.ids, view.slot_of = ids, {doc_id: i for i, doc_id in enumerate(ids)}
        view.grow_to(len(ids))
        view.live[: len(ids)] = True
        for name, column in view.columns.items():
            rows = self.db.execute("SELECT id, data FROM vectors WHERE idx = ? AND field = ?", (index, name))
            for doc_id, blob in rows:
                slot = view.slot_of.get(doc_id)
                if slot is not None:
                    column.matrix[slot] = np.frombuffer(blob, np.float32)
                    column.present[slot] = True
            if column.similarity == "cosine":
                norms = np.linalg.norm(column.matrix, axis=1, keepdims=True)
                np.divide(column.matrix, norms, out=column.matrix, where=norms > 0)
        view.nested = {name: NestedColumn.empty(spec) for name, spec in nested_vector_fields(view.mappings).items()}
        for name, nested in view.nested.items():
            rows = self.db.execute("SELECT id, data FROM vectors WHERE idx = ? AND field = ?", (index, name))
            by_slot = sorted((view.slot_of[doc_id], doc_id, blob) for doc_id, blob in rows if doc_id in view.slot_of)
            for slot, doc_id, blob in by_slot:  # objects in document order: the same rows in every process
                nested.append(slot, doc_id, NestedVectors.decode(blob, nested.dims))
            nested.touched.clear()
        self.views[index] = view
        return view

    def sources(self, view: IndexView) -> list[dict | None]:
        """Every live document's source (vectors left out), by slot; loaded once per view."""
        if view.sources is None:
            sources: list[dict | None] = [None] * len(view.live)
            rows = self.db.execute("SELECT id, source FROM docs WHERE idx = ?", (view.name,))
            for doc_id, text in rows:
                slot = view.slot_of.get(doc_id)
                if slot is not None:
                    sources[slot] = json.loads(text)
            view.sources = sources
        return view.sources

    # --- documents -----------------------------------------------------------------------

    def fetch(self, index: str, ids: list[str], with_vectors: bool) -> dict[str, tuple[dict, int]]:
        """Stored sources (with vectors put back when asked) and versions, by id."""
        found: dict[str, tuple[dict, int]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT id, source, version FROM docs WHERE idx = ? AND id IN ({marks})", [index, *chunk]
            )
            found.update((doc_id, (json.loads(text), version)) for doc_id, text, version in rows)
            if with_vectors:
                rows = self.db.execute(
                    f"SELECT id, field, data FROM vectors WHERE idx = ? AND id IN ({marks})", [index, *chunk]
                )
                nested = nested_vector_fields(self.view(index).mappings)
                for doc_id, name, blob in rows:
                    if name in nested:
                        put_nested(found[doc_id][0], name, NestedVectors.decode(blob, int(nested[name]["dims"])))
                    else:
                        put_at(found[doc_id][0], name, as_written(np.frombuffer(blob, np.float32)))
        return found

    def meta(self, index: str, ids: list[str]) -> dict[str, DocMeta]:
        """Version, sequence number and routing of the stored documents among `ids`."""
        found: dict[str, DocMeta] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                f"SELECT id, version, seq_no, routing FROM docs WHERE idx = ? AND id IN ({','.join('?' * len(chunk))})",
                [index, *chunk],
            )
            found.update((doc_id, DocMeta(version, seq_no, routing)) for doc_id, version, seq_no, routing in rows)
        return found

    def next_seq_no(self, index: str) -> int:
        """The sequence number the index's next write (put or delete) takes."""
        row = self.db.execute("SELECT seq_no FROM indices WHERE name = ?", (index,)).fetchone()
        if row is None:
            raise index_not_found(index)
        return row[0]

    def write(
        self,
        index: str,
        ops: list[tuple[str, dict | None, dict[str, np.ndarray] | None]],
        routings: list[str | None] | None = None,
        seq_nos: list[int] | None = None,
    ) -> dict[str, int]:
        """Apply (id, source without vectors, vectors) puts, and (id, None, None) deletions (of a
        missing id too: like Elasticsearch's, it takes a sequence number), in order and in one
        transaction, each put with its routing. Returns each touched id's new version (0: deleted);
        `seq_nos`, when given, receives each op's sequence number."""
        view = self.view(index)
        self.written.add(index)
        versions: dict[str, int] = {}
        routings = routings or [None] * len(ops)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            seq_no = self.next_seq_no(index)
            taken = []
            for (doc_id, source, vectors), routing in zip(ops, routings, strict=True):
                taken.append(seq_no)
                seq_no += 1
                self.db.execute("DELETE FROM vectors WHERE idx = ? AND id = ?", (index, doc_id))
                if source is None:
                    self.db.execute("DELETE FROM docs WHERE idx = ? AND id = ?", (index, doc_id))
                    versions[doc_id] = 0
                    continue
                self.db.execute(
                    "INSERT INTO docs (idx, id, source, version, seq_no, routing) VALUES (?, ?, ?, 1, ?, ?) "
                    "ON CONFLICT (idx, id) DO UPDATE SET source = excluded.source, version = version + 1, "
                    "seq_no = excluded.seq_no, routing = excluded.routing",
                    (index, doc_id, json.dumps(source), taken[-1], routing),
                )
                self.db.executemany(
                    "INSERT INTO vectors VALUES (?, ?, ?, ?)",
                    [(index, name, doc_id, encoded(v)) for name, v in (vectors or {}).items()],
                )
                row = self.db.execute("SELECT version FROM docs WHERE idx = ? AND id = ?", (index, doc_id)).fetchone()
                versions[doc_id] = row[0]
            self.db.execute("UPDATE indices SET seq_no = ? WHERE name = ?", (seq_no, index))
        if seq_nos is not None:
            seq_nos[:] = taken
        # Committed: only now may searches in this process see it.
        for doc_id, source, vectors in ops:
            if source is not None:
                view.put(doc_id, source, vectors or {})
            elif doc_id in view.slot_of:
                view.remove(doc_id)
        return versions
