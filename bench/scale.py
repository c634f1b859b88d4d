"""Reported, not gated: the embedded engine at 10k, 100k and 1M vectors (load, memory,
query latency), text-query latency end to end, the CLI's cold time to a first result, and
the notebook suite's wall time."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.search_overhead import K, load
from embedded_es import embedded_client
from embedded_es.node import close_store, store_for
from helpers._settings import PROJECT_ROOT
from helpers.search import knn_clause, search_text


def engine_at(count: int, dims: int = 512, queries: int = 20) -> dict:
    """Fill a store, then open it afresh (as a new process would: SQLite rows into one float32
    matrix in `Store.view`), and time queries through the official client."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, count, 100_000):  # in slices, so the generator never holds 2 GB twice
            block = rng.normal(size=(min(100_000, count - start), dims)).astype(np.float32)
            load(Path(tmp), block, offset=start)
        close_store(Path(tmp))  # drop the writer's copy: measure a cold open, as a new process does
        es = embedded_client(Path(tmp))
        started = time.perf_counter()
        es.count(index="bench")  # the first request loads the index: SQLite rows into one matrix
        load_s = time.perf_counter() - started
        matrix_mb = sum(c.matrix.nbytes for c in store_for(Path(tmp)).view("bench").columns.values()) / 2**20
        times = []
        for q in rng.normal(size=(queries, dims)).astype(np.float32):
            started = time.perf_counter()
            es.search(index="bench", knn=knn_clause(q, k=K), size=K, source=False)
            times.append(time.perf_counter() - started)
        close_store(Path(tmp))
    return {"vectors": count, "load_s": load_s, "matrix_mb": matrix_mb, "query_ms": 1000 * float(np.median(times))}


def text_latency(es, embedder, index: str, queries: int = 60) -> tuple[float, float]:
    prompts = [f"a photo of {word}" for word in ("a cat", "coffee", "a rocket", "a person", "a dog", "pizza")]
    times = []
    for i in range(queries):
        started = time.perf_counter()
        search_text(es, embedder, index, prompts[i % len(prompts)], k=10)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.percentile(times, 50)), 1000 * float(np.percentile(times, 99))


def cold_cli_seconds(engine: Path, index: str, model_id: str, server: str | None = None) -> float:
    """A new process: imports, model load (or, with `server`, a request to that Inference
    server instead), embedding the prompt, the search, the printout."""
    env = {**os.environ, "EMBEDDED_ES_PATH": str(engine), "CLIP_MODEL": model_id, "ELASTICSEARCH_URL": ""}
    env["INFERENCE_SERVER_URL"] = server or ""
    started = time.perf_counter()
    command = [sys.executable, "-m", "helpers", "search", "--text", "coffee", "--k", "1", "--index", index]
    subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def notebook_suite() -> dict:
    """The notebooks' regression run as `make test` runs it: its wall time, and whether it passed
    (a failing notebook is a finding to report, not a reason to lose the other figures)."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "notebooks"]
    run = subprocess.run(command, cwd=PROJECT_ROOT, check=False, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    notebooks = len(list((PROJECT_ROOT / "notebooks").glob("*.ipynb")))
    summary = lines[-1].strip("= ") if lines else f"pytest exited with {run.returncode}"
    return {"seconds": seconds, "passed": run.returncode == 0, "summary": summary, "notebooks": notebooks}
