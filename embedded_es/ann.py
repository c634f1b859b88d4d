"""Approximate kNN for the embedded engine, the way Lucene does it, on faiss.

One faiss index per index and indexed `dense_vector` field, built from the mapping's
`index_options`: `hnsw` is an HNSW graph over float32 vectors, `int8_hnsw` / `int4_hnsw` an
HNSW graph over scalar-quantised codes (one range for all dimensions, cut at Lucene's
confidence interval), `bbq_hnsw` an HNSW graph over one-bit RaBitQ codes (an int4 query
scored against the bits with per-vector corrective terms, as Elasticsearch's BBQ does), and
`int8_flat` / `int4_flat` / `bbq_flat` the same codes searched exhaustively. faiss builds a
one-bit graph with L2 only, which ranks unit vectors (cosine, dot_product) as they rank; for
`bbq_hnsw` with `max_inner_product` the graph is built over the float vectors with inner
product and its candidates are scored with the one-bit codes, held beside it. `num_candidates`
is the search beam (efSearch); a filter and deleted documents are an ID selector, so the
search still walks through nodes that do not match, as Lucene's does.

Graph nodes are numbered in insertion order and name a document by id; an update or a
delete tombstones its node at once and the new vector joins as a new node at the next
refresh (`_refresh` or `_flush`, a write's `refresh=true`, or any kNN search, which refreshes
first: the engine's writes are visible at once, as they always were). Past a share of
tombstones, or when the index has outgrown the sample its quantiser was trained on, the graph
is rebuilt from the stored float vectors. Vectors are added one at a time on one thread, so
the graph depends only on the order of the writes (and on where refreshes fell between an
update and its document's first indexing), never on how writes were batched nor on the
machine's cores. The graph is saved beside the store (written aside, then renamed); on
opening, a missing, damaged or foreign file is rebuilt and a stale one is brought up to date,
checked node by node against the stored vectors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

HNSW_KINDS = {"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"}
CODE_KINDS = {"int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat"}
FORMAT = 1
TRAIN_SAMPLE = 20_000  # vectors a quantiser is trained on (the first ones, in slot order)
RETRAIN_GROWTH = 4  # retrain (rebuild) once the field holds this many times the trained-on count
TOMBSTONE_SHARE = 0.3  # rebuild once this share of the nodes are deleted or replaced
SAVE_SMALL = 50_000  # below this many nodes a changed graph is saved at every refresh
BBQ_QUERY_BITS = 4  # BBQ scores an int4-quantised query against the one-bit codes


def default_confidence_interval(dims: int) -> float:
    """Lucene's default for int8: `max(0.9, 1 - 1 / (dims + 1))`."""
    return max(0.9, 1 - 1 / (dims + 1))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """faiss builds in parallel with OpenMP; one thread makes the graph reproducible."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def checksums(rows: np.ndarray) -> np.ndarray:
    """One 64-bit digest per row: what a saved node is checked against on opening."""
    return np.frombuffer(b"".join(hashlib.blake2b(r.tobytes(), digest_size=8).digest() for r in rows), np.uint64)


def one_bit_codes(dims: int, metric: int) -> faiss.IndexRaBitQ:
    index = faiss.IndexRaBitQ(dims, metric)
    index.qb = BBQ_QUERY_BITS
    return index


def code_scores(codes: faiss.IndexRaBitQ, query: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The one-bit codes' estimate of each node's similarity to the query."""
    computer = codes.get_distance_computer()
    computer.set_query(faiss.swig_ptr(query))  # `query` outlives the computer: it is read below only
    return np.array([computer(int(node)) for node in nodes], np.float32)


class Graph:
    """The ANN index of one field, with the bookkeeping that maps its nodes to documents."""

    def __init__(self, spec: dict, dims: int, similarity: str) -> None:
        options = spec.get("index_options", {})
        self.kind: str = options.get("type", "hnsw")
        self.m = int(options.get("m", 16))
        self.ef_construction = int(options.get("ef_construction", 100))
        interval = options.get("confidence_interval")
        self.confidence_interval = float(interval) if interval is not None else default_confidence_interval(dims)
        self.dims, self.similarity = dims, similarity
        # faiss builds a RaBitQ graph with L2 only: unit vectors (cosine, dot_product) rank the same;
        # with max_inner_product the graph is over floats and the codes (`self.codes`) score it
        self.l2_index = similarity == "l2_norm" or (self.kind.startswith("bbq") and similarity != "max_inner_product")
        self.float_graph = self.kind == "bbq_hnsw" and similarity == "max_inner_product"
        self.reset()
        self.view_key: object = None  # the view whose slots node_slot refers to
        self.dirty = False
        self.changed_since_save = 0

    @property
    def signature(self) -> dict:
        return {
            "format": FORMAT,
            "kind": self.kind,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "confidence_interval": self.confidence_interval,
            "dims": self.dims,
            "similarity": self.similarity,
        }

    def reset(self) -> None:
        self.index: faiss.Index | None = None
        self.codes: faiss.IndexRaBitQ | None = None  # only for a float graph of a bbq field
        self.node_ids: list[str] = []
        self.node_sums = np.zeros(0, np.uint64)
        self.node_slot = np.zeros(0, np.int64)  # -1: tombstone
        self.slot_node: dict[int, int] = {}
        self.trained_on = 0
        self.version = getattr(self, "version", 0) + 1  # any change of nodes: cached selections are stale
        self.selected: tuple | None = None  # (version, mask, count, selector) last built
        self.slot_order: tuple[int, bool] | None = None

    # --- building ------------------------------------------------------------------------

    def new_index(self, sample: np.ndarray) -> faiss.Index:
        metric = faiss.METRIC_L2 if self.l2_index else faiss.METRIC_INNER_PRODUCT
        d, kind = self.dims, self.kind
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.m, metric)
        elif kind in ("int8_hnsw", "int4_hnsw", "int8_flat", "int4_flat"):
            qtype = faiss.ScalarQuantizer.QT_8bit_uniform if "int8" in kind else faiss.ScalarQuantizer.QT_4bit_uniform
            if kind.endswith("hnsw"):
                index = faiss.IndexHNSWSQ(d, qtype, self.m, metric)
                quantizer = faiss.downcast_index(index.storage).sq
            else:
                index = faiss.IndexScalarQuantizer(d, qtype, metric)
                quantizer = index.sq
            # Lucene's quantiles: the range keeps `confidence_interval` of all values.
            quantizer.rangestat = faiss.ScalarQuantizer.RS_quantiles
            quantizer.rangestat_arg = (1 - self.confidence_interval) / 2
        elif self.float_graph:
            index = faiss.IndexHNSWFlat(d, self.m, metric)
            self.codes = one_bit_codes(d, metric)
            self.codes.train(np.ascontiguousarray(sample))
        elif kind == "bbq_hnsw":
            index = faiss.IndexHNSWRaBitQ(d, self.m, 1, faiss.METRIC_L2)
            faiss.downcast_index(index.storage).qb = BBQ_QUERY_BITS
        else:  # bbq_flat
            index = one_bit_codes(d, metric)
        if kind in HNSW_KINDS:
            index.hnsw.efConstruction = self.ef_construction
        if kind in CODE_KINDS and not self.float_graph:
            index.train(np.ascontiguousarray(sample))
        self.trained_on = len(sample)
        return index

    def add(self, ids: list[str], slots: np.ndarray, rows: np.ndarray) -> None:
        """New nodes, one vector at a time so that batching never changes the graph."""
        if self.index is None:
            self.index = self.new_index(rows[:TRAIN_SAMPLE])
        first = len(self.node_ids)
        with one_thread():
            for row in rows:
                self.index.add(row[None, :])
            if self.codes is not None:
                self.codes.add(np.ascontiguousarray(rows))
        self.node_ids.extend(ids)
        self.node_sums = np.concatenate([self.node_sums, checksums(rows)])
        self.node_slot = np.concatenate([self.node_slot, slots.astype(np.int64)])
        self.slot_node.update((int(s), first + i) for i, s in enumerate(slots))
        self.dirty, self.changed_since_save = True, self.changed_since_save + len(ids)
        self.version += 1

    def tombstone(self, slot: int) -> None:
        node = self.slot_node.pop(slot, None)
        if node is not None:
            self.node_slot[node] = -1
            self.dirty, self.changed_since_save = True, self.changed_since_save + 1
            self.version += 1

    def sync(self, view_key: object, ids: list[str], slot_of: dict[str, int], wanted: np.ndarray,
             matrix: np.ndarray, touched: set[int]) -> None:  # fmt: skip
        """Bring the graph up to date with a view: tombstone what changed, add what is new,
        rebuild when tombstones or growth past the trained-on sample call for it."""
        if view_key is not self.view_key:
            self.attach(slot_of, wanted, matrix)
            self.view_key = view_key
        else:
            for slot in touched:
                self.tombstone(slot)
        touched.clear()
        live_nodes = len(self.slot_node)
        wanted_count = int(np.count_nonzero(wanted))
        dead = len(self.node_ids) - live_nodes
        grown = self.kind in CODE_KINDS and self.trained_on < TRAIN_SAMPLE
        grown = grown and wanted_count > RETRAIN_GROWTH * max(self.trained_on, 1)
        if (dead and dead > TOMBSTONE_SHARE * max(wanted_count, 1)) or grown:
            self.reset()  # compact (or retrain on a sample that now represents the field)
            live_nodes, self.dirty = 0, True
        if live_nodes == wanted_count:  # every node maps to a wanted slot: nothing is missing
            return
        missing = np.flatnonzero(wanted)
        if self.slot_node:
            covered = np.fromiter(self.slot_node, np.int64, len(self.slot_node))
            missing = np.setdiff1d(missing, covered, assume_unique=True)
        self.add([ids[s] for s in missing], missing, matrix[missing])

    def attach(self, slot_of: dict[str, int], wanted: np.ndarray, matrix: np.ndarray) -> None:
        """Map the nodes onto a (new) view's slots; a node whose document is gone or whose
        stored vector differs from the one it was built from becomes a tombstone."""
        self.slot_node = {}
        self.node_slot = np.full(len(self.node_ids), -1, np.int64)
        self.version += 1
        slots = np.array([slot_of.get(doc_id, -1) for doc_id in self.node_ids], np.int64)
        candidates = np.flatnonzero(slots >= 0)
        candidates = candidates[wanted[slots[candidates]]]
        same = checksums(matrix[slots[candidates]]) == self.node_sums[candidates]
        for node in candidates[same]:
            slot = int(slots[node])
            if slot in self.slot_node:  # the same document twice: keep the newest node
                self.node_slot[self.slot_node[slot]] = -1
            self.slot_node[slot] = int(node)
            self.node_slot[node] = slot

    # --- searching -----------------------------------------------------------------------

    def selection(self, eligible: np.ndarray | None) -> tuple[int, faiss.IDSelector | None]:
        """(how many nodes a search may return, a selector of them; None: every node). Kept
        until the graph or the filter's mask changes: a repeated filter costs nothing, and a
        new one a slice (nodes in slot order, the usual case) or one gather."""
        if self.selected is not None and self.selected[0] == self.version and self.selected[1] is eligible:
            return self.selected[2], self.selected[3]
        if eligible is None:
            ok = self.node_slot >= 0
        elif self.in_slot_order():
            ok = eligible[: len(self.node_slot)]
        else:  # a tombstone (-1) reads the False appended after the last slot
            ok = np.append(eligible, False)[self.node_slot]
        count = int(np.count_nonzero(ok))
        selector = None
        if count < len(self.node_slot):
            bits = np.packbits(ok, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(ok), faiss.swig_ptr(bits))
            selector.bits_owner = bits  # faiss keeps a raw pointer: the array lives as long as the selector
        self.selected = (self.version, eligible, count, selector)
        return count, selector

    def in_slot_order(self) -> bool:
        """Node i is slot i for every node (no tombstone, nothing reordered)."""
        if self.slot_order is None or self.slot_order[0] != self.version:
            ordered = bool(np.array_equal(self.node_slot, np.arange(len(self.node_slot))))
            self.slot_order = (self.version, ordered)
        return self.slot_order[1]

    def raw_of(self, distances: np.ndarray, query: np.ndarray) -> np.ndarray:
        """faiss's distances as the field's raw similarity (cosine, dot, or L2 distance)."""
        if not self.l2_index:
            return distances
        if self.similarity == "l2_norm":
            return np.sqrt(np.maximum(distances, 0))
        # unit-length document vectors: |q - x|^2 = |q|^2 + 1 - 2 q.x
        return (float(query @ query) + 1 - distances) / 2

    def search(self, query: np.ndarray, eligible: np.ndarray | None, pool: int, filtered: bool
               ) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
        """Up to `pool` candidates (slots, raw similarity), best first; None when Lucene would
        search exactly over float vectors (only asked of the float `hnsw` type)."""
        if self.index is None or self.index.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        count, selector = self.selection(eligible)
        if count == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        total = len(self.slot_node)
        exact = self.kind not in HNSW_KINDS
        # Lucene's exact fallback for a restrictive filter: it lets through no more documents
        # than the beam, or fewer than the nodes a graph search is expected to visit.
        if filtered and (count <= pool or math.log(max(total, 2)) * pool >= count):
            exact = True
        q = np.ascontiguousarray(query[None, :], dtype=np.float32)
        if not exact:
            params = faiss.SearchParametersHNSW()
            params.efSearch = pool
            if selector is not None:
                params.sel = selector
            distances, nodes = self.index.search(q, pool, params=params)
            found = nodes[0] >= 0
            if int(found.sum()) == pool:
                nodes, distances = nodes[0][found], distances[0][found]
                if self.codes is not None:
                    distances = code_scores(self.codes, q[0], nodes)
                return self.node_slot[nodes], self.raw_of(distances, query).astype(np.float32)
            exact = True  # the graph search came back short: search exactly, as Lucene does
        if self.kind == "hnsw":
            return None
        storage = self.storage()
        if isinstance(storage, faiss.IndexRaBitQ):
            params = faiss.RaBitQSearchParameters()
            params.qb = BBQ_QUERY_BITS
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        distances, nodes = storage.search(q, min(pool, count), params=params)
        found = nodes[0] >= 0
        nodes, distances = nodes[0][found], distances[0][found]
        return self.node_slot[nodes], self.raw_of(distances, query).astype(np.float32)

    # --- memory and persistence ----------------------------------------------------------

    def code_bytes(self) -> int:
        """Bytes per vector of what the search reads: the codes (or floats), graph excluded."""
        if self.index is None:
            return 0
        floats = 4 * self.dims if self.codes is not None else 0  # the float graph's own copy
        return floats + int(self.storage().sa_code_size())

    def storage(self) -> faiss.Index:
        """What scores a node: the codes (or floats) under the graph, or the flat index itself."""
        if self.codes is not None:
            return self.codes
        return self.index if self.kind not in HNSW_KINDS else faiss.downcast_index(self.index.storage)

    def graph_bytes(self) -> int:
        """Bytes of the HNSW links (neighbour lists, levels and offsets)."""
        if self.index is None or self.kind not in HNSW_KINDS:
            return 0
        hnsw = self.index.hnsw
        return 4 * (hnsw.neighbors.size() + hnsw.levels.size()) + 8 * hnsw.offsets.size()

    def save(self, path: Path) -> None:
        """Write the graph aside, sync it, then rename it over the old one (whichever process
        renames last wins: every saved graph is whole, and checked against the store on opening)."""
        if self.index is None:
            path.unlink(missing_ok=True)
            self.dirty = False
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.signature, "trained_on": self.trained_on}
        aside = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # processes may save at once
        try:
            with open(aside, "wb") as out:
                np.savez(
                    out,
                    index=faiss.serialize_index(self.index),
                    codes=faiss.serialize_index(self.codes) if self.codes is not None else np.zeros(0, np.uint8),
                    ids=np.frombuffer(json.dumps(self.node_ids).encode(), np.uint8),
                    sums=self.node_sums,
                    meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(aside, path)
        finally:
            aside.unlink(missing_ok=True)
        self.dirty, self.changed_since_save = False, 0

    def load(self, path: Path) -> bool:
        """Read a saved graph; False (and nothing loaded) when missing, damaged or not this field's."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                meta = json.loads(saved["meta"].tobytes())
                if {k: meta.get(k) for k in self.signature} != self.signature:
                    return False
                index = faiss.deserialize_index(saved["index"])
                codes = faiss.deserialize_index(saved["codes"]) if self.float_graph else None
                ids = json.loads(saved["ids"].tobytes())
                sums = np.array(saved["sums"], np.uint64)
        except Exception:  # any unreadable file is rebuilt from the stored vectors
            return False
        if index.ntotal != len(ids) or len(sums) != len(ids) or index.d != self.dims:
            return False
        if codes is not None and codes.ntotal != len(ids):
            return False
        if self.kind == "bbq_hnsw" and self.l2_index:
            faiss.downcast_index(index.storage).qb = BBQ_QUERY_BITS
        self.reset()
        self.index, self.node_ids, self.node_sums = index, ids, sums
        if codes is not None:
            self.codes = codes  # read back as an IndexRaBitQ
            self.codes.qb = BBQ_QUERY_BITS
        self.trained_on = int(meta.get("trained_on", 0))
        self.view_key = None
        return True

    def wants_saving(self) -> bool:
        nodes = len(self.node_ids)
        return self.dirty and (nodes < SAVE_SMALL or self.changed_since_save * 10 >= nodes)
