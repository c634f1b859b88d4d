"""What the project asks of a CLIP model, wherever it runs.

Two implementations: in process (`helpers.clip.ClipEmbedder`, Inference's `Clip`) and on an
Inference server (`helpers._remote.RemoteEmbedder`). Search, evaluation and the widget take an
`Embedder`; indexing and the pipeline (`helpers._pipeline`: batches in order, the cache) take a
`BatchEmbedder`. None of them imports an implementation, so the imports only go downward:
index -> _pipeline -> embedder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from helpers._offline.demo_model import DEMO_MODEL_ID

if TYPE_CHECKING:
    from helpers._cache import EmbeddingCache

MAX_BATCH = 8  # Inference refuses longer lists in one embed_image call
ImageInput = Path | str | Image.Image


class Embedder(Protocol):
    """A CLIP model: prompts and pictures in, unit-length float32 rows out."""

    model_id: str  # e.g. "clip/ViT-B-16"; recorded in the index's _meta
    dim: int  # measured from the model, never assumed

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray: ...


class BatchEmbedder(Embedder, Protocol):
    """What the pipeline drives: batches of at most `MAX_BATCH` pictures in, each picture's
    vector (or its decoding error) out, in order; and the cache the pipeline reads and fills."""

    cache: EmbeddingCache | None

    def embed_batches(self, batches: Iterable[Sequence[ImageInput]]) -> Iterator[list[np.ndarray | Exception]]: ...


def model_id_for(name: str) -> str:
    """`demo` -> `clip/demo`, `ViT-B-32` -> `clip/ViT-B-32`; full ids pass unchanged."""
    return name if "/" in name else f"clip/{name}"


def is_stand_in(model_id: str) -> bool:
    """The committed demo model: meaningful on the synthetic demo set only."""
    return model_id == DEMO_MODEL_ID
