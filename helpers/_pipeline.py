"""The embedding pipeline: any `BatchEmbedder` (in process or on a server) made streaming,
ordered and cached, with its batches embedded while the caller does its own work on earlier
results.

Kept apart from the embedders because a learner never needs it to understand the calls:
it is Inference's `embed_image`, made streaming, ordered and cached; each embedder runs its
batches in parallel its own way (`embed_batches`: one worker per core in process, several
requests in flight to a server).
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from helpers._fetch import fetched
from helpers.embedder import MAX_BATCH, BatchEmbedder, ImageInput
from helpers.objects import Crop, load_crops

CACHE_LOOKUP = 64  # files looked up in the embedding cache together
DECODE_ERRORS = (OSError, ValueError, SyntaxError)  # what PIL (and our size check) raise for a bad image
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


def embed_images(embedder: BatchEmbedder, images: Sequence[ImageInput]) -> np.ndarray:
    """One unit row per picture (a file, an http(s) URL or a PIL image), in batches of
    `MAX_BATCH`; a picture that cannot be decoded raises."""
    batches = chunks([fetched(image) for image in images], MAX_BATCH)
    vectors = [vector_or_raise(r) for results in embedder.embed_batches(batches) for r in results]
    return np.stack(vectors) if vectors else np.zeros((0, embedder.dim), dtype=np.float32)


def embed_files(embedder: BatchEmbedder, paths: Sequence[Path], sha256s: Sequence[str]) -> np.ndarray:
    """Like `embed_images`, but identical files (same hash) are embedded once, and a file
    whose hash is cached is not embedded again."""
    unique = ((path, sha) for sha, path in dict(zip(sha256s, paths)).items())
    vectors = {sha: vector_or_raise(result) for sha, result in embed_file_stream(embedder, unique)}
    return np.stack([vectors[sha] for sha in sha256s]) if sha256s else np.zeros((0, embedder.dim), dtype=np.float32)


def inputs_of(batch: list[tuple[Path | Crop, str]], known: dict) -> list[tuple[ImageInput, str]]:
    """What the model reads for each (source, key): a file as it is, an object's crop cut from
    its picture; a crop whose picture cannot be decoded goes to `known` as its error."""
    crops = [source for source, _ in batch if isinstance(source, Crop)]
    loaded = iter(load_crops(crops))
    inputs = []
    for source, key in batch:
        image = next(loaded) if isinstance(source, Crop) else source
        if isinstance(image, Exception):
            known[key] = image
        else:
            inputs.append((image, key))
    return inputs


def embed_file_stream(
    embedder: BatchEmbedder, files: Iterable[tuple[Path | Crop, str]]
) -> Iterator[tuple[str, np.ndarray | Exception]]:
    """(key, vector or decoding error) for each (path, key) with a unique key, in the
    order of `files`, as soon as it and those before it are known: cached vectors at once, the
    rest as their batch leaves the model (and goes into the cache). The order never depends on
    what the cache holds, so an index filled from a warm cache stores its documents in the
    same order as one filled from a cold one (equal scores rank alike). `files` is drawn
    lazily, 64 at a time for one cache look-up, so a caller's generator can do its own work
    for the next files while the model runs; a chunk found whole in the cache goes through
    as an empty batch, so that what is ready is handed on without reading further ahead.
    A source may also be an object's `Crop`, keyed by picture and box (`Crop.cache_key`):
    crops go through the same batches and cache as the pictures."""
    cache = embedder.cache
    order: deque[str] = deque()  # keys in the order of `files`, not yet handed on
    known: dict[str, np.ndarray | Exception] = {}
    batch_keys: deque[list[str]] = deque()

    def uncached_batches() -> Iterator[list[ImageInput]]:
        for chunk in chunks(files, CACHE_LOOKUP):
            order.extend(key for _, key in chunk)
            known.update(cache.get_many([key for _, key in chunk]) if cache else {})
            todo = [(source, key) for source, key in chunk if key not in known]
            for batch in chunks(todo, MAX_BATCH) if todo else [[]]:
                inputs = inputs_of(batch, known)
                batch_keys.append([key for _, key in inputs])
                yield [image for image, _ in inputs]

    def ready() -> Iterator[tuple[str, np.ndarray | Exception]]:
        while order and order[0] in known:
            key = order.popleft()
            yield key, known.pop(key)

    for results in embedder.embed_batches(uncached_batches()):
        fresh = dict(zip(batch_keys.popleft(), results))
        if cache:
            cache.put_many({key: v for key, v in fresh.items() if not isinstance(v, Exception)})
        known.update(fresh)
        yield from ready()
