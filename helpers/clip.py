"""CLIP embeddings through Roboflow Inference: images and texts in, unit-length float32 out.

`inference.models.Clip` is imported only when an embedder is built (the import takes
seconds), after its environment is set: a model cache under `data/` and, for the offline
demo model, offline mode with the committed ONNX pair installed into that cache.
"""

from __future__ import annotations

import filecmp
import itertools
import os
import shutil
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from helpers.config import DATA_DIR, PROJECT_ROOT, Settings
from helpers.embedding_cache import EmbeddingCache
from helpers.images import open_image, to_rgb

MAX_BATCH = 8  # Inference refuses longer lists in one embed_image call
CACHE_LOOKUP = 64  # files looked up in the embedding cache together
DECODE_ERRORS = (OSError, ValueError, SyntaxError)  # what PIL (and our size check) raise for a bad image
DEMO_MODEL_ID = "clip/demo"
DEMO_MODEL_FILES = PROJECT_ROOT / "data" / "demo_model"
DEFAULT_MODEL_CACHE = DATA_DIR / "model-cache"
ImageInput = Path | str | Image.Image
T = TypeVar("T")
R = TypeVar("R")
STAND_IN_NOTICE = (
    "NOTE: using the offline demo CLIP model (a stand-in trained on synthetic shapes, "
    "not OpenAI's CLIP): its results are only meaningful on the demo data set."
)


def model_id_for(name: str) -> str:
    """`demo` -> `clip/demo`, `ViT-B-32` -> `clip/ViT-B-32`; full ids pass unchanged."""
    return name if "/" in name else f"clip/{name}"


def is_stand_in(model_id: str) -> bool:
    return model_id == DEMO_MODEL_ID


def model_cache_dir() -> Path:
    """Where Inference looks for weights: its own setting if it is already imported."""
    env_module = sys.modules.get("inference.core.env")
    if env_module is not None:
        return Path(env_module.MODEL_CACHE_DIR)
    return Path(os.environ.setdefault("MODEL_CACHE_DIR", str(DEFAULT_MODEL_CACHE)))


def install_demo_model(cache_dir: Path) -> Path:
    """Copy the committed ONNX pair to `<cache>/clip/demo/`, where Inference opens it."""
    target = cache_dir / DEMO_MODEL_ID
    target.mkdir(parents=True, exist_ok=True)
    for name in ("visual.onnx", "textual.onnx"):
        source, dest = DEMO_MODEL_FILES / name, target / name
        # By content: a retrained model has the same architecture, hence the same file sizes.
        if not dest.is_file() or not filecmp.cmp(source, dest, shallow=False):
            shutil.copyfile(source, dest)
    return target


def prepare_inference(model_id: str) -> None:
    """Set Inference's environment before its first import: its model cache under data/ and,
    for the demo model, which needs no network, offline mode (no version check either)."""
    cache_dir = model_cache_dir()
    if is_stand_in(model_id):
        os.environ.setdefault("OFFLINE_MODE", "True")
        os.environ.setdefault("DISABLE_VERSION_CHECK", "True")
        install_demo_model(cache_dir)


def load_rgb(image: Path | str | Image.Image) -> Image.Image:
    """A PIL RGB image (see `helpers.images`). Inference reads numpy arrays as BGR, so images
    go in as PIL, never as arrays."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    with open_image(image) as opened:
        return to_rgb(opened)


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


def vector_or_raise(result: np.ndarray | Exception) -> np.ndarray:
    if isinstance(result, Exception):
        raise result
    return result


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def embedder_for(settings: Settings, model: str | None = None) -> ClipEmbedder:
    """The embedder for `model` (default: the configured CLIP_MODEL), with the Roboflow key."""
    key = settings.roboflow_api_key.reveal() if settings.roboflow_api_key else None
    return ClipEmbedder(model or settings.clip_model, cache_path=settings.embedding_cache_path, api_key=key)


class ClipEmbedder:
    """One loaded CLIP model (two ONNX sessions) and its embedding cache."""

    def __init__(self, model_id: str, cache_path: Path | None, api_key: str | None = None) -> None:
        self.model_id = model_id_for(model_id)
        prepare_inference(self.model_id)
        # Inference's import warns about its optional extras, and onnxruntime about every GPU
        # provider a CPU lacks: noise for a learner, so silenced here and only here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from inference.models import Clip

            # Inference reads ROBOFLOW_API_KEY from the environment only; a key that came from
            # .env or Colab secrets is passed on explicitly.
            self.model = Clip(model_id=self.model_id, api_key=api_key)
        self.cache = EmbeddingCache(cache_path, self.model_id) if cache_path else None
        self.data_parallel = False  # see `go_data_parallel`
        self.dim = int(self.embed_texts(["a photo"]).shape[1])  # measured, never assumed
        if self.is_stand_in:
            print(STAND_IN_NOTICE)

    @property
    def is_stand_in(self) -> bool:
        return is_stand_in(self.model_id)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self.model.embed_text(list(texts)))

    def preprocess(self, batch: Sequence[ImageInput]) -> tuple[np.ndarray, list[Exception | None]]:
        """Decode and preprocess with Inference's own CLIP transform (`clip_preprocess`, what
        its `preproc_image` applies after converting the image to an array and back, a copy
        that an RGB image does not need) into one [n, 3, R, R] float32 tensor of the images
        that decoded, and each image's decoding error or None: one damaged file costs its own
        place in the batch, not the batch."""
        tensors, errors = [], []
        for image in batch:
            try:
                tensors.append(np.asarray(self.model.clip_preprocess(load_rgb(image))))
                errors.append(None)
            except DECODE_ERRORS as error:
                errors.append(error)
        return np.stack(tensors) if tensors else np.zeros((0, 3, 1, 1), np.float32), errors

    def go_data_parallel(self) -> None:
        """Reopen the visual graph with one thread per run, for one run per core.

        Inference's session splits every operator of one run across all cores, and each core
        waits for the others at the end of every operator: the lowest latency for one image,
        but a core busy decoding stalls them all. Runs of one thread each, one per core, never
        wait on each other, so decoding in the same workers costs only its own CPU time, and
        the model alone is faster (bench/indexing.py, 2 cores: 5 to 10%). Done once, when a
        second batch shows a pipeline, not a query; it replaces Inference's session, so the
        weights stay in memory once. The reopen takes about a second for ViT-B/32; single
        images embedded afterwards run on one core."""
        if self.data_parallel:
            return
        import onnxruntime  # loaded already, by Inference

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.model.visual_onnx_session = onnxruntime.InferenceSession(
            self.model.cache_file("visual.onnx"), options, providers=self.model.onnxruntime_execution_providers
        )
        self.data_parallel = True

    def run_visual(self, tensor: np.ndarray) -> np.ndarray:
        """The visual graph on a preprocessed batch. ONNX Runtime sessions take concurrent
        runs; Inference's `predict` would hold a lock around each, one run at a time."""
        session = self.model.visual_onnx_session
        return session.run(None, {session.get_inputs()[0].name: tensor})[0]

    def embed_batch(self, batch: Sequence[ImageInput]) -> list[np.ndarray | Exception]:
        """Each image's unit vector, or its decoding error."""
        tensor, errors = self.preprocess(batch)
        vectors = iter(normalise(self.run_visual(tensor)) if len(tensor) else ())
        return [next(vectors) if error is None else error for error in errors]

    def embed_batches(self, batches: Iterable[Sequence[ImageInput]]) -> Iterator[list[np.ndarray | Exception]]:
        """`embed_batch` for each batch (at most 8 images), in order. This is Inference's
        `embed_image` with each batch in a worker thread that decodes it, preprocesses it
        and runs the model on it, one worker per core, so that decoding overlaps inference."""
        batches = iter(batches)
        first = list(itertools.islice(batches, 2))
        if len(first) > 1:  # a pipeline, not a query
            self.go_data_parallel()
        workers = usable_cores() if self.data_parallel else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from run_ahead(itertools.chain(first, batches), self.embed_batch, pool, depth=workers)

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Unit vectors, one row per image; an image that cannot be decoded raises its error."""
        vectors = [vector_or_raise(r) for results in self.embed_batches(chunks(images, MAX_BATCH)) for r in results]
        return np.stack(vectors) if vectors else np.zeros((0, self.dim), dtype=np.float32)

    def embed_file_stream(self, files: Iterable[tuple[Path, str]]) -> Iterator[tuple[str, np.ndarray | Exception]]:
        """(sha256, vector or decoding error) for each (path, sha256) with a unique hash, as
        soon as it is known: cached vectors at once, the rest as their batch leaves the model
        (and goes into the cache). `files` is drawn lazily, 64 at a time for one cache look-up,
        so a caller's generator can do its own work for the next files while the model runs."""
        cached: deque[tuple[str, np.ndarray]] = deque()
        batch_hashes: deque[list[str]] = deque()

        def uncached_batches() -> Iterator[list[Path]]:
            for chunk in chunks(files, CACHE_LOOKUP):
                found = self.cache.get_many([sha for _, sha in chunk]) if self.cache else {}
                cached.extend(found.items())
                todo = [(path, sha) for path, sha in chunk if sha not in found]
                for batch in chunks(todo, MAX_BATCH):
                    batch_hashes.append([sha for _, sha in batch])
                    yield [path for path, _ in batch]

        for results in self.embed_batches(uncached_batches()):
            while cached:
                yield cached.popleft()
            fresh = dict(zip(batch_hashes.popleft(), results))
            if self.cache:
                self.cache.put_many({sha: v for sha, v in fresh.items() if not isinstance(v, Exception)})
            yield from fresh.items()
        yield from cached

    def embed_files(self, paths: Sequence[Path], sha256s: Sequence[str]) -> np.ndarray:
        """Like `embed_images`, but identical files (same hash) are embedded once, and a file
        whose hash is cached is not embedded again."""
        unique = ((path, sha) for sha, path in dict(zip(sha256s, paths)).items())
        vectors = {sha: vector_or_raise(result) for sha, result in self.embed_file_stream(unique)}
        return np.stack([vectors[sha] for sha in sha256s]) if sha256s else np.zeros((0, self.dim), dtype=np.float32)
