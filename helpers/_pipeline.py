"""The embedding pipeline behind `ClipEmbedder`: decode, preprocess and run the visual graph
in worker threads, one per core, while the caller does its own work on earlier results.

Kept apart from `helpers.clip` because a learner never needs it to understand the calls:
it is Inference's `embed_image`, made parallel, streaming and cached.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image

from helpers._images import load_rgb

if TYPE_CHECKING:
    from helpers.clip import ClipEmbedder

MAX_BATCH = 8  # Inference refuses longer lists in one embed_image call
CACHE_LOOKUP = 64  # files looked up in the embedding cache together
DECODE_ERRORS = (OSError, ValueError, SyntaxError)  # what PIL (and our size check) raise for a bad image
ImageInput = Path | str | Image.Image
T = TypeVar("T")
R = TypeVar("R")


def run_ahead(items: Iterable[T], work: Callable[[T], R], pool: ThreadPoolExecutor, depth: int = 2) -> Iterator[R]:
    """`work(item)` for each item, in the pool, results in order, at most `depth` items ahead
    of the caller: batches are embedded while the caller handles earlier ones (and bulk
    requests go out while the model embeds the next images), and memory stays bounded
    however many images there are. Items are drawn one by one, in the caller's thread, so a
    lazy `items` can do its own work meanwhile."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def vector_or_raise(result: np.ndarray | Exception) -> np.ndarray:
    if isinstance(result, Exception):
        raise result
    return result


def preprocess(model, batch: Sequence[ImageInput]) -> tuple[np.ndarray, list[Exception | None]]:
    """Decode and preprocess with Inference's own CLIP transform (`clip_preprocess`, what its
    `preproc_image` applies after converting the image to an array and back, a copy that an
    RGB image does not need) into one [n, 3, R, R] float32 tensor of the images that decoded,
    and each image's decoding error or None: one damaged file costs its own place in the
    batch, not the batch."""
    tensors, errors = [], []
    for image in batch:
        try:
            tensors.append(np.asarray(model.clip_preprocess(load_rgb(image))))
            errors.append(None)
        except DECODE_ERRORS as error:
            errors.append(error)
    return np.stack(tensors) if tensors else np.zeros((0, 3, 1, 1), np.float32), errors


def one_thread_session(model):
    """The visual graph reopened with one thread per run, for one run per core.

    Inference's session splits every operator of one run across all cores, and each core
    waits for the others at the end of every operator: the lowest latency for one image,
    but a core busy decoding stalls them all. Runs of one thread each, one per core, never
    wait on each other, so decoding in the same workers costs only its own CPU time, and
    the model alone is faster (bench/indexing.py, 2 cores: 5 to 10%). It replaces
    Inference's session, so the weights stay in memory once; the reopen takes about a
    second for ViT-B/32."""
    import onnxruntime  # loaded already, by Inference

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model.cache_file("visual.onnx"), options, providers=model.onnxruntime_execution_providers
    )


def embed_batch(embedder: ClipEmbedder, batch: Sequence[ImageInput]) -> list[np.ndarray | Exception]:
    """Each image's unit vector, or its decoding error."""
    tensor, errors = preprocess(embedder.model, batch)
    vectors = iter(normalise(embedder.run_visual(tensor)) if len(tensor) else ())
    return [next(vectors) if error is None else error for error in errors]


def embed_batches(
    embedder: ClipEmbedder, batches: Iterable[Sequence[ImageInput]]
) -> Iterator[list[np.ndarray | Exception]]:
    """`embed_batch` for each batch (at most 8 images), in order, one worker per core once a
    second batch shows a pipeline (a single query keeps Inference's session)."""
    batches = iter(batches)
    first = list(itertools.islice(batches, 2))
    if all(first) and len(first) > 1:  # two batches to embed (an empty one is a cached chunk)
        embedder.go_data_parallel()
    workers = usable_cores() if embedder.data_parallel else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        work = lambda batch: embed_batch(embedder, batch)  # noqa: E731
        yield from run_ahead(itertools.chain(first, batches), work, pool, depth=workers)


def embed_file_stream(
    embedder: ClipEmbedder, files: Iterable[tuple[Path, str]]
) -> Iterator[tuple[str, np.ndarray | Exception]]:
    """(sha256, vector or decoding error) for each (path, sha256) with a unique hash, in the
    order of `files`, as soon as it and those before it are known: cached vectors at once, the
    rest as their batch leaves the model (and goes into the cache). The order never depends on
    what the cache holds, so an index filled from a warm cache stores its documents in the
    same order as one filled from a cold one (equal scores rank alike). `files` is drawn
    lazily, 64 at a time for one cache look-up, so a caller's generator can do its own work
    for the next files while the model runs; a chunk found whole in the cache goes through
    as an empty batch, so that what is ready is handed on without reading further ahead."""
    cache = embedder.cache
    order: deque[str] = deque()  # hashes in the order of `files`, not yet handed on
    known: dict[str, np.ndarray | Exception] = {}
    batch_hashes: deque[list[str]] = deque()

    def uncached_batches() -> Iterator[list[Path]]:
        for chunk in chunks(files, CACHE_LOOKUP):
            order.extend(sha for _, sha in chunk)
            known.update(cache.get_many([sha for _, sha in chunk]) if cache else {})
            todo = [(path, sha) for path, sha in chunk if sha not in known]
            for batch in chunks(todo, MAX_BATCH) if todo else [[]]:
                batch_hashes.append([sha for _, sha in batch])
                yield [path for path, _ in batch]

    def ready() -> Iterator[tuple[str, np.ndarray | Exception]]:
        while order and order[0] in known:
            sha = order.popleft()
            yield sha, known.pop(sha)

    for results in embedder.embed_batches(uncached_batches()):
        fresh = dict(zip(batch_hashes.popleft(), results))
        if cache:
            cache.put_many({sha: v for sha, v in fresh.items() if not isinstance(v, Exception)})
        known.update(fresh)
        yield from ready()
