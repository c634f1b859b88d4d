"""CLIP through Roboflow Inference: pictures and prompts in, unit-length float32 vectors out.

The calls this wraps are Inference's own, shown in notebook 02:

    from inference.models import Clip
    clip = Clip(model_id="clip/ViT-B-16")
    clip.embed_image(picture)   # at most 8 pictures per call; PIL images, not numpy arrays (BGR!)
    clip.embed_text("coffee")

`ClipEmbedder` is the same model made fast and resumable: vectors L2-normalised, batches of
8 decoded and run in parallel (`helpers._pipeline`), and an on-disk cache keyed by (model
id, image sha256) so a re-run embeds nothing twice.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from helpers import _pipeline
from helpers import _weights as weights
from helpers._cache import EmbeddingCache
from helpers._fetch import fetched
from helpers._offline.demo_model import DEMO_MODEL_ID, STAND_IN, STAND_IN_NOTICE, install_demo_model
from helpers._pipeline import MAX_BATCH, ImageInput, chunks, normalise, vector_or_raise
from helpers._quiet import quiet_import, quiet_inference_models
from helpers._settings import DATA_DIR, Settings, roboflow_key

DEFAULT_MODEL_CACHE = DATA_DIR / "model-cache"


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
        if self.is_stand_in and clip is not None:  # `load_clip` said so when it loaded the model
            print(STAND_IN_NOTICE)

    @property
    def is_stand_in(self) -> bool:
        return is_stand_in(self.model_id)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Inference's `embed_text`, normalised: one row per prompt."""
        return normalise(self.model.embed_text(list(texts)))

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Inference's `embed_image`, normalised: one row per picture (a file, an http(s) URL or
        a PIL image), in batches of 8 run in parallel; a picture that cannot be decoded raises."""
        batches = chunks([fetched(image) for image in images], MAX_BATCH)
        vectors = [vector_or_raise(r) for results in self.embed_batches(batches) for r in results]
        return np.stack(vectors) if vectors else np.zeros((0, self.dim), dtype=np.float32)

    def embed_files(self, paths: Sequence[Path], sha256s: Sequence[str]) -> np.ndarray:
        """Like `embed_images`, but identical files (same hash) are embedded once, and a file
        whose hash is cached is not embedded again."""
        unique = ((path, sha) for sha, path in dict(zip(sha256s, paths)).items())
        vectors = {sha: vector_or_raise(result) for sha, result in self.embed_file_stream(unique)}
        return np.stack([vectors[sha] for sha in sha256s]) if sha256s else np.zeros((0, self.dim), dtype=np.float32)

    def embed_file_stream(self, files: Iterable[tuple[Path, str]]) -> Iterator[tuple[str, np.ndarray | Exception]]:
        """(sha256, vector or decoding error) per unique file, cached ones first: see `_pipeline`."""
        return _pipeline.embed_file_stream(self, files)

    def embed_batches(self, batches: Iterable[Sequence[ImageInput]]) -> Iterator[list[np.ndarray | Exception]]:
        return _pipeline.embed_batches(self, batches)

    def preprocess(self, batch: Sequence[ImageInput]) -> tuple[np.ndarray, list[Exception | None]]:
        return _pipeline.preprocess(self.model, batch)

    def run_visual(self, tensor: np.ndarray) -> np.ndarray:
        """The visual graph on a preprocessed batch. ONNX Runtime sessions take concurrent
        runs; Inference's `predict` would hold a lock around each, one run at a time."""
        session = self.model.visual_onnx_session
        return session.run(None, {session.get_inputs()[0].name: tensor})[0]

    def go_data_parallel(self) -> None:
        """Reopen the visual graph for one run per core (`_pipeline.one_thread_session`), once,
        when a second batch shows a pipeline rather than a query."""
        if not self.data_parallel:
            self.model.visual_onnx_session = _pipeline.one_thread_session(self.model)
            self.data_parallel = True


def embedder_for(settings: Settings, model: str | None = None, clip=None) -> ClipEmbedder:
    """The embedder for `model` (default: the configured CLIP_MODEL), with the Roboflow key
    and the settings' embedding cache; `clip` reuses an already loaded Inference `Clip`.
    With INFERENCE_SERVER_URL set, every embedding goes to that server instead, `clip` or not
    (`helpers._remote`)."""
    if settings.inference_server_url:  # server mode: no model loaded here
        from helpers._remote import remote_embedder

        return remote_embedder(model or settings.clip_model, settings)
    key = settings.roboflow_api_key.reveal() if settings.roboflow_api_key else None
    return ClipEmbedder(model or settings.clip_model, cache_path=settings.embedding_cache_path, api_key=key, clip=clip)
