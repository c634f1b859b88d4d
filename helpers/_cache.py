"""On-disk embedding cache keyed by (model id, image sha256, or picture and box for an object's
crop): re-runs embed nothing twice.

SQLite in WAL mode, so a crash never leaves a half-written vector and several processes
may read while one writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from helpers._offline.demo_model import DEMO_MODEL_ID, demo_model_version


def cache_model_key(model_id: str) -> str:
    """What the cache files a model's vectors under: its id, and for the demo model (whose id
    stays `clip/demo` when it is retrained) the weights' content hash too."""
    return f"{model_id}@{demo_model_version()}" if model_id == DEMO_MODEL_ID else model_id


class EmbeddingCache:
    def __init__(self, path: Path, model_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model_id = cache_model_key(model_id)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model TEXT NOT NULL, sha256 TEXT NOT NULL, vector BLOB NOT NULL,"
            " PRIMARY KEY (model, sha256)) WITHOUT ROWID"
        )
        self._db.commit()

    def get_many(self, sha256s: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(dict.fromkeys(sha256s))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT sha256, vector FROM embeddings WHERE model = ? AND sha256 IN ({','.join('?' * len(chunk))})",
                [self.model_id, *chunk],
            )
            found.update((sha, np.frombuffer(blob, dtype=np.float32)) for sha, blob in rows)
        return found

    def put_many(self, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [(self.model_id, sha, np.asarray(v, dtype=np.float32).tobytes()) for sha, v in vectors.items()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
