"""Sequence numbers and routing survive a reopen, and a store written before they existed opens
migrated: every document kept, numbered in the order it was first written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from embedded_es.api import handle
from embedded_es.store import Store

# The tables as the previous release wrote them (before sequence numbers and routing).
OLD_SCHEMA = """
CREATE TABLE indices (name TEXT PRIMARY KEY, uuid TEXT NOT NULL, mappings TEXT NOT NULL);
CREATE TABLE docs (
    idx TEXT NOT NULL, id TEXT NOT NULL, source TEXT NOT NULL, version INTEGER NOT NULL,
    UNIQUE (idx, id));
CREATE TABLE index_settings (name TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE cluster_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE vectors (
    idx TEXT NOT NULL, field TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (idx, id, field)) WITHOUT ROWID;
"""


def call(store: Store, method: str, path: str, body: dict | None = None, **params: str) -> dict:
    return handle(store, method, path, params, json.dumps(body).encode() if body is not None else None)[1]


def test_sequence_numbers_and_routing_survive_a_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path)
    call(store, "PUT", "/a/_doc/1", {"n": 1})
    call(store, "PUT", "/a/_doc/2", {"n": 2}, routing="r")
    call(store, "DELETE", "/a/_doc/1")
    store.db.close()
    reopened = Store(tmp_path)
    assert call(reopened, "GET", "/a/_doc/2")["_seq_no"] == 1
    assert call(reopened, "GET", "/a/_doc/2")["_routing"] == "r"
    assert call(reopened, "PUT", "/a/_doc/3", {"n": 3})["_seq_no"] == 3  # the delete took 2


def test_a_store_from_before_sequence_numbers_opens_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "engine.sqlite")
    db.executescript(OLD_SCHEMA)
    for index in ("a", "b"):
        db.execute("INSERT INTO indices VALUES (?, ?, ?)", (index, f"uuid-{index}", "{}"))
    rows = [("a", "x", 3), ("b", "y", 1), ("a", "y", 1), ("a", "z", 2)]
    db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", [(i, d, json.dumps({"d": d}), v) for i, d, v in rows])
    db.commit()
    db.close()
    store = Store(tmp_path)
    docs = call(store, "POST", "/_mget", {"docs": [{"_index": i, "_id": d} for i, d, _ in rows]})["docs"]
    assert [(d["_source"], d["_version"], d["_seq_no"]) for d in docs] == [
        ({"d": "x"}, 3, 0),
        ({"d": "y"}, 1, 0),
        ({"d": "y"}, 1, 1),
        ({"d": "z"}, 2, 2),
    ]
    assert call(store, "PUT", "/a/_doc/w", {"d": "w"})["_seq_no"] == 3
    assert call(store, "PUT", "/b/_doc/w", {"d": "w"})["_seq_no"] == 1
    assert "_routing" not in call(store, "GET", "/a/_doc/x")
    assert Store(tmp_path).db.execute("SELECT COUNT(*) FROM docs").fetchone()[0] == 6  # a second open changes nothing
