"""Real processes, really killed: an indexing run stopped by `kill -9` leaves a store that
opens and keeps what it acknowledged, the next run completes it with every image exactly
once, and a process searching meanwhile never sees a broken store."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import NotFoundError

from embedded_es import embedded_client
from helpers._offline.demo_data import write_demo_dataset
from helpers._settings import PROJECT_ROOT

IMAGES = 1200  # nineteen bulk requests of up to 64: room to kill between them


@pytest.fixture(scope="module")
def big_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_dataset(tmp_path_factory.mktemp("big"), count=IMAGES, seed=31)


def start_indexing(folder: Path, engine: Path, cache: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "CLIP_MODEL": "demo",
        "ELASTICSEARCH_URL": "",
        "EMBEDDED_ES_PATH": str(engine),
        "EMBEDDING_CACHE_PATH": str(cache),
    }
    command = [sys.executable, "-m", "helpers", "index", str(folder), "--index", "crash", "--json"]
    return subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def count_or_none(engine: Path) -> int | None:
    try:
        return embedded_client(engine).count(index="crash")["count"]
    except NotFoundError:  # before the first run created the index
        return None


def test_kill_9_mid_index_then_rerun_indexes_every_image_once(big_set: Path, tmp_path: Path) -> None:
    engine, cache = tmp_path / "engine", tmp_path / "cache.sqlite"
    run = start_indexing(big_set, engine, cache)
    deadline, seen = time.monotonic() + 120, None
    while time.monotonic() < deadline and run.poll() is None:
        seen = count_or_none(engine)
        if seen:  # the first bulk request is committed: kill it in the middle of the rest
            os.kill(run.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    run.wait()
    assert run.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 0 < seen < IMAGES

    with sqlite3.connect(engine / "engine.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = count_or_none(engine)
    assert kept >= seen  # nothing acknowledged was lost

    rerun = start_indexing(big_set, engine, cache)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["indexed"] == IMAGES and report["new"] == IMAGES - kept
    assert count_or_none(engine) == IMAGES  # each image exactly once: ids are content hashes


def test_searching_while_another_process_indexes(big_set: Path, tmp_path: Path) -> None:
    engine = tmp_path / "engine"
    run = start_indexing(big_set, engine, tmp_path / "cache.sqlite")
    query = np.random.default_rng(0).normal(size=512).tolist()
    counts, searches = [], 0
    while run.poll() is None:
        count = count_or_none(engine)
        if count is None:
            time.sleep(0.05)
            continue
        hits = embedded_client(engine).search(
            index="crash", knn={"field": "image_vector", "query_vector": query, "k": 5, "num_candidates": 50}
        )["hits"]["hits"]
        assert min(5, count) <= len(hits) <= 5 and all(0.0 <= h["_score"] <= 1.0 for h in hits)
        counts.append(count)
        searches += 1
    assert run.returncode == 0, run.stderr.read()[-2000:]
    assert counts == sorted(counts), "a search saw documents disappear"
    assert searches >= 3 and any(0 < c < IMAGES for c in counts)
    assert count_or_none(engine) == IMAGES
