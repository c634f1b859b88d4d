"""CLIP embeddings through Roboflow Inference: images and texts in, unit-length float32 out.

`inference.models.Clip` is imported only when an embedder is built (the import takes
seconds), after its environment is set: a model cache under `data/` and, for the offline
demo model, offline mode with the committed ONNX pair installed into that cache.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.config import DATA_DIR, PROJECT_ROOT, Settings
from helpers.embedding_cache import EmbeddingCache
from helpers.images import open_image, to_rgb

MAX_BATCH = 8  # Inference refuses longer lists in one embed_image call
DEMO_MODEL_ID = "clip/demo"
DEMO_MODEL_FILES = PROJECT_ROOT / "data" / "demo_model"
DEFAULT_MODEL_CACHE = DATA_DIR / "model-cache"
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


def prepared_ahead(
    batches: Sequence[Sequence[Path | str | Image.Image]], prepare: Callable, pool: ThreadPoolExecutor, depth: int = 2
) -> Iterator[np.ndarray]:
    """`prepare(batch)` for each batch, in order, at most `depth` batches ahead: decoding and
    preprocessing run in the pool while the model works on the current batch, and memory
    stays bounded however many images there are."""
    pending: deque[Future] = deque()
    for batch in batches:
        pending.append(pool.submit(prepare, batch))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


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
        self.dim = int(self.embed_texts(["a photo"]).shape[1])  # measured, never assumed
        if self.is_stand_in:
            print(STAND_IN_NOTICE)

    @property
    def is_stand_in(self) -> bool:
        return is_stand_in(self.model_id)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self.model.embed_text(list(texts)))

    def preprocess(self, batch: Sequence[Path | str | Image.Image]) -> np.ndarray:
        """Decode and preprocess (Inference's own CLIP transform) into one [n, 3, R, R] tensor."""
        return np.concatenate([self.model.preproc_image(load_rgb(image)) for image in batch])

    def embed_images(self, images: Sequence[Path | str | Image.Image]) -> np.ndarray:
        """Embed in batches of at most 8. This is Inference's `embed_image` split in two:
        `preproc_image` runs in worker threads, ahead, while `predict` runs the model."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = [images[i : i + MAX_BATCH] for i in range(0, len(images), MAX_BATCH)]
        # One worker: the model already keeps both cores of a small machine busy.
        with ThreadPoolExecutor(max_workers=1) as pool:
            out = [self.model.predict(tensor)[0] for tensor in prepared_ahead(batches, self.preprocess, pool)]
        return normalise(np.concatenate(out))

    def embed_files(self, paths: Sequence[Path], sha256s: Sequence[str]) -> np.ndarray:
        """Like `embed_images`, but each file whose content hash is cached is not embedded again."""
        cached = self.cache.get_many(sha256s) if self.cache else {}
        first_of = {sha: i for i, sha in enumerate(sha256s) if sha not in cached}
        if first_of:  # identical files (same hash) are embedded once
            fresh = self.embed_images([paths[i] for i in first_of.values()])
            new = dict(zip(first_of, fresh))
            if self.cache:
                self.cache.put_many(new)
            cached.update(new)
        if not sha256s:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([cached[sha] for sha in sha256s])
