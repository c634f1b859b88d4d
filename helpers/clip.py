"""CLIP through Roboflow Inference: pictures and prompts in, unit-length float32 vectors out.

The calls this wraps are Inference's own, shown in notebook 02:

    from inference.models import Clip
    clip = Clip(model_id="clip/ViT-B-16")
    clip.embed_image(picture)   # at most 8 pictures per call; PIL images, not numpy arrays (BGR!)
    clip.embed_text("coffee")

`ClipEmbedder` is the same model as an `Embedder` (`helpers.embedder`), made fast and
resumable: vectors L2-normalised, batches of 8 decoded and run in parallel, one worker per
core, and an on-disk cache keyed by (model id, image sha256) that the pipeline
(`helpers._pipeline`) reads and fills, so a re-run embeds nothing twice.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from helpers import _pipeline
from helpers import _weights as weights
from helpers._cache import EmbeddingCache
from helpers._images import load_rgb
from helpers._offline.demo_model import STAND_IN, STAND_IN_NOTICE, install_demo_model
from helpers._pipeline import DECODE_ERRORS, normalise, run_ahead, usable_cores
from helpers._quiet import quiet_import, quiet_inference_models
from helpers._remote import remote_embedder
from helpers._settings import DATA_DIR, Settings, roboflow_key
from helpers.embedder import BatchEmbedder, ImageInput, is_stand_in, model_id_for

if TYPE_CHECKING:  # both heavy, and imported only when a model loads
    import onnxruntime
    from inference.models import Clip

DEFAULT_MODEL_CACHE = DATA_DIR / "model-cache"


def model_cache_dir() -> Path:
    """Where Inference looks for weights: its own setting if it is already imported."""
    env_module = sys.modules.get("inference.core.env")
    if env_module is not None:
        return Path(env_module.MODEL_CACHE_DIR)
    return Path(os.environ.setdefault("MODEL_CACHE_DIR", str(DEFAULT_MODEL_CACHE)))


def prepare_inference(model_id: str, api_key: str | None = None) -> None:
    """Call before `from inference.models import Clip`: Inference reads its environment once,
    at import. The model cache goes under data/; the demo model, which needs no network, is
    installed there with offline mode on. For the others, Inference's own settings for a safe
    download are switched on and the weights are downloaded here if they are not cached
    (announced, with progress, one line if it fails; `helpers._weights`), so that a plain
    `Clip(model_id=...)` only loads them. The key defaults to ROBOFLOW_API_KEY (environment,
    .env, Colab secrets). The import itself (6 to 8 s) happens here, and Inference's noise is
    kept out of the output (`helpers._quiet`)."""
    cache_dir = model_cache_dir()
    weights.configure()
    if is_stand_in(model_id_for(model_id)):
        os.environ.setdefault("OFFLINE_MODE", "True")
        install_demo_model(cache_dir)
    with quiet_import():
        from inference.models import Clip  # noqa: F401  (a lazy attribute: this imports the model code)
    quiet_inference_models()
    if not is_stand_in(model_id_for(model_id)):
        weights.ensure_downloaded(model_id_for(model_id), api_key or roboflow_key())


def load_clip(model_id: str, api_key: str | None = None):
    """`inference.models.Clip(model_id=..., api_key=...)`, with Inference's load messages kept
    out of the output. Inference reads ROBOFLOW_API_KEY from the environment only; a key from
    .env or Colab secrets is passed on explicitly."""
    model_id, api_key = model_id_for(model_id), api_key or roboflow_key()
    started = time.perf_counter()
    prepare_inference(model_id, api_key)
    from inference.models import Clip

    # A model from Roboflow goes through `weights.load`: weights that do not load are fetched again.
    clip = Clip(model_id=model_id, api_key=api_key) if is_stand_in(model_id) else weights.load(model_id, api_key)
    what = f" ({STAND_IN}: meaningful on the demo data only)" if is_stand_in(model_id) else ""
    print(f"Model: {model_id}{what}, ready in {time.perf_counter() - started:.1f} s")
    return clip


class ClipEmbedder:
    """One loaded CLIP model (Inference's `Clip`, two ONNX sessions) and its embedding cache."""

    def __init__(self, model_id: str, cache_path: Path | None, api_key: str | None = None, clip=None) -> None:
        self.model_id = model_id_for(model_id)
        self.model = clip if clip is not None else load_clip(self.model_id, api_key)
        self.cache = EmbeddingCache(cache_path, self.model_id) if cache_path else None
        self.data_parallel = False  # see `go_data_parallel`
        self.dim = int(self.embed_texts(["a photo"]).shape[1])  # measured, never assumed
        if is_stand_in(self.model_id) and clip is not None:  # `load_clip` said so when it loaded the model
            print(STAND_IN_NOTICE)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Inference's `embed_text`, normalised: one row per prompt."""
        return normalise(self.model.embed_text(list(texts)))

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Inference's `embed_image`, normalised: one row per picture (a file, an http(s) URL or
        a PIL image), in batches of 8 run in parallel; a picture that cannot be decoded raises."""
        return _pipeline.embed_images(self, images)

    def embed_batches(self, batches: Iterable[Sequence[ImageInput]]) -> Iterator[list[np.ndarray | Exception]]:
        """`embed_batch` for each batch (at most 8 images), in order, one worker per core once a
        second batch shows a pipeline (a single query keeps Inference's session)."""
        batches = iter(batches)
        first = list(itertools.islice(batches, 2))
        if all(first) and len(first) > 1:  # two batches to embed (an empty one is a cached chunk)
            self.go_data_parallel()
        workers = usable_cores() if self.data_parallel else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            work = lambda batch: embed_batch(self, batch)  # noqa: E731
            yield from run_ahead(itertools.chain(first, batches), work, pool, depth=workers)

    def run_visual(self, tensor: np.ndarray) -> np.ndarray:
        """The visual graph on a preprocessed batch. ONNX Runtime sessions take concurrent
        runs; Inference's `predict` would hold a lock around each, one run at a time."""
        session = self.model.visual_onnx_session
        return session.run(None, {session.get_inputs()[0].name: tensor})[0]

    def go_data_parallel(self) -> None:
        """Reopen the visual graph for one run per core (`one_thread_session`), once,
        when a second batch shows a pipeline rather than a query."""
        if not self.data_parallel:
            self.model.visual_onnx_session = one_thread_session(self.model)
            self.data_parallel = True


def preprocess(model: Clip, batch: Sequence[ImageInput]) -> tuple[np.ndarray, list[Exception | None]]:
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


def one_thread_session(model: Clip) -> onnxruntime.InferenceSession:
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


def embedder_for(settings: Settings, model: str | None = None, clip=None) -> BatchEmbedder:
    """The embedder for `model` (default: the configured CLIP_MODEL), with the Roboflow key
    and the settings' embedding cache; `clip` reuses an already loaded Inference `Clip`.
    With INFERENCE_SERVER_URL set, every embedding goes to that server instead, `clip` or not
    (`helpers._remote`)."""
    if settings.inference_server_url:  # server mode: no model loaded here
        return remote_embedder(model or settings.clip_model, settings)
    key = settings.roboflow_api_key.reveal() if settings.roboflow_api_key else None
    return ClipEmbedder(model or settings.clip_model, cache_path=settings.embedding_cache_path, api_key=key, clip=clip)
