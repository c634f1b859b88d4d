"""Server mode (`INFERENCE_SERVER_URL`): CLIP runs on a Roboflow Inference server (`inference
server start`, its Docker image, a GPU box), so nothing here imports Inference's model stack
or loads weights, and a command-line query starts in a second or two.

`ServerClip` has the calls of Inference's `Clip` (`embed_image`, `embed_text`: raw vectors)
and answers them with the server's documented HTTP API (`POST /clip/embed_image`,
`/clip/embed_text`). It uses `requests` rather than `inference_sdk`'s `InferenceHTTPClient`,
whose synchronous calls set no timeout (a stalled server would hang the caller for ever)
and which re-encodes PIL images as lossy JPEG (other pixels, other vectors).

`RemoteEmbedder` is the second `Embedder` (`helpers.embedder`), beside the in-process
`ClipEmbedder`, with `ServerClip` as its model: the same cache keyed by (model id, sha256),
the same streaming pipeline (`helpers._pipeline`) and bulk indexing; only its batches go to
the server, several requests in flight, to keep a remote GPU busy.

Pictures leave here as CLIP's transform will see them: decoded and converted as in process
(`load_rgb`), then resized and centre-cropped to the model's input size with the transform's
own arithmetic and sent as PNG (lossless). The server's resize and crop then change nothing,
so the vectors equal the in-process ones, and a 640 × 480 photo travels as a 224 × 224 picture
(about 100 kB) instead of what it was.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import orjson
import requests
from PIL import Image
from requests.adapters import HTTPAdapter

from helpers import _pipeline
from helpers._cache import EmbeddingCache
from helpers._errors import ActionableError
from helpers._fetch import fetched
from helpers._images import load_rgb
from helpers._pipeline import DECODE_ERRORS, normalise, run_ahead
from helpers._settings import Settings, redact_url, scrub
from helpers.embedder import ImageInput, model_id_for

CONCURRENCY = 4  # requests in flight; bench/server.py measures what saturates a server
# Input resolution of each CLIP version the server offers (its visual graph's input size);
# `demo` is the committed demo model's (tests check it against Inference's `Clip.resolution`).
# A version not listed is sent at full size and resized by the server (still lossless PNG).
INPUT_RESOLUTION = {
    "demo": 64,
    "RN50": 224,
    "RN101": 224,
    "RN50x4": 288,
    "RN50x16": 384,
    "RN50x64": 448,
    "ViT-B-32": 224,
    "ViT-B-16": 224,
    "ViT-L-14": 224,
    "ViT-L-14-336px": 336,
}


class InferenceServerError(ActionableError):
    """The Inference server could not embed; the message is one line saying what to do."""


def clip_crop(picture: Image.Image, size: int) -> Image.Image:
    """CLIP's `Resize(size, bicubic)` then `CenterCrop(size)`, computed as torchvision does
    (short side to `size`, long side truncated; crop offsets rounded), in PIL alone."""
    width, height = picture.size
    short, long = min(width, height), max(width, height)
    resized = (size, int(size * long / short)) if width <= height else (int(size * long / short), size)
    if resized != picture.size:
        picture = picture.resize(resized, Image.BICUBIC)
    left, top = round((resized[0] - size) / 2.0), round((resized[1] - size) / 2.0)
    return picture.crop((left, top, left + size, top + size))


def encoded(image: ImageInput, size: int | None) -> str:
    """The picture as the server's CLIP transform will see it, as base64 PNG."""
    picture = load_rgb(fetched(image))
    if size:
        picture = clip_crop(picture, size)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)  # lossless; level 1: fast, little larger
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class ServerClip:
    """Inference's `Clip` calls, answered by an Inference server: raw (unnormalised) vectors."""

    def __init__(self, model_id: str, settings: Settings, concurrency: int = CONCURRENCY) -> None:
        url = settings.inference_server_url or ""
        self.where = f"the Inference server at {redact_url(url)}"
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise InferenceServerError(
                f"INFERENCE_SERVER_URL must be an http(s) URL such as http://localhost:9001, not {redact_url(url)!r}"
            )
        if not model_id.startswith("clip/"):
            raise InferenceServerError(
                f"CLIP_MODEL {model_id!r}: an Inference server embeds CLIP core models (clip/<version>) only"
            )
        self.url, self.model_id, self.settings, self.concurrency = url, model_id, settings, concurrency
        self.version = model_id.removeprefix("clip/")
        self.resolution = INPUT_RESOLUTION.get(self.version)
        self.session = requests.Session()  # keeps connections open; its pool is thread-safe
        adapter = HTTPAdapter(pool_maxsize=concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def embed_text(self, text: str | Sequence[str]) -> np.ndarray:
        return self.post("/clip/embed_text", {"text": [text] if isinstance(text, str) else list(text)})

    def embed_image(self, image: ImageInput | Sequence[ImageInput]) -> np.ndarray:
        images = list(image) if isinstance(image, list | tuple) else [image]
        return self.embed_encoded([encoded(picture, self.resolution) for picture in images])

    def embed_encoded(self, pictures: Sequence[str]) -> np.ndarray:
        """Pictures made by `encoded`, at most 8 (the server refuses more in one request)."""
        return self.post("/clip/embed_image", {"image": [{"type": "base64", "value": p} for p in pictures]})

    def post(self, route: str, body: dict) -> np.ndarray:
        body["clip_version_id"] = self.version
        if self.settings.roboflow_api_key:  # in the body, not the URL: URLs end up in logs
            body["api_key"] = self.settings.roboflow_api_key.reveal()
        timeout = self.settings.inference_server_timeout
        try:
            response = self.session.post(
                f"{self.url}{route}", data=orjson.dumps(body), headers={"Content-Type": "application/json"},
                timeout=timeout,
            )  # fmt: skip
        except requests.Timeout:
            raise self.error(
                f"{self.where} did not answer within {timeout:g} s: check that it is running and not "
                "overloaded (its first request for a model also downloads it), or raise INFERENCE_SERVER_TIMEOUT"
            ) from None
        except requests.ConnectionError:
            raise self.error(
                f"cannot reach {self.where}: is it running (inference server start), and is INFERENCE_SERVER_URL right?"
            ) from None
        if response.status_code != 200:
            raise self.error(self.explain(route, response)) from None
        try:
            return np.asarray(orjson.loads(response.content)["embeddings"], dtype=np.float32)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise self.error(
                f"{self.where} answered {route} without embeddings: "
                "is INFERENCE_SERVER_URL a Roboflow Inference server?"
            ) from None

    def explain(self, route: str, response: requests.Response) -> str:
        """One line for a refusal: the server's own message, and what to do about it."""
        try:
            reply = orjson.loads(response.content)
            said = str(reply.get("message") or reply.get("detail") or "") if isinstance(reply, dict) else ""
        except orjson.JSONDecodeError:
            said = response.text
        said = " ".join(said.split())[:200]
        status = response.status_code
        if status in (401, 403):
            return (
                f"{self.where} refused the Roboflow API key ({status}): set ROBOFLOW_API_KEY to a valid key "
                f"(the server needs one to load {self.model_id})"
            )
        if status == 404 and said == "Not Found":  # FastAPI's own: no such route
            return f"{self.where} has no {route} (404): is INFERENCE_SERVER_URL a Roboflow Inference server with CLIP?"
        return (
            f"{self.where} could not embed with {self.model_id} ({status}: {said}): "
            "check CLIP_MODEL and the server's log"
        )

    def error(self, message: str) -> InferenceServerError:
        return InferenceServerError(scrub(message, self.settings))


class RemoteEmbedder:
    """CLIP on an Inference server (`ServerClip`): batches of 8 go to the server,
    `model.concurrency` requests in flight, each batch's pictures prepared in the thread that
    sends it."""

    def __init__(self, model_id: str, cache_path: Path | None, clip: ServerClip) -> None:
        self.model_id, self.model = model_id, clip
        self.cache = EmbeddingCache(cache_path, model_id) if cache_path else None
        self.dim = int(self.embed_texts(["a photo"]).shape[1])  # measured; the first request checks the server

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(self.model.embed_text(list(texts)))

    def embed_images(self, images: Sequence[ImageInput]) -> np.ndarray:
        return _pipeline.embed_images(self, images)

    def embed_batch(self, batch: Sequence[ImageInput]) -> list[np.ndarray | Exception]:
        """Each picture's unit vector, or its decoding error (a damaged file costs its own place)."""
        pictures: list[str | Exception] = []
        for image in batch:
            try:
                pictures.append(encoded(image, self.model.resolution))
            except DECODE_ERRORS as error:
                pictures.append(error)
        good = [p for p in pictures if isinstance(p, str)]
        vectors = iter(normalise(self.model.embed_encoded(good)) if good else ())
        return [next(vectors) if isinstance(p, str) else p for p in pictures]

    def embed_batches(self, batches: Iterable[Sequence[ImageInput]]) -> Iterator[list[np.ndarray | Exception]]:
        with ThreadPoolExecutor(max_workers=self.model.concurrency) as pool:
            yield from run_ahead(batches, self.embed_batch, pool, depth=self.model.concurrency)


def remote_embedder(model_id: str, settings: Settings) -> RemoteEmbedder:
    """The embedder for server mode; its first request (measuring the dimension) checks the
    server, the key and the model, and fails here in one line if any is wrong."""
    model_id = model_id_for(model_id)
    embedder = RemoteEmbedder(model_id, cache_path=settings.embedding_cache_path, clip=ServerClip(model_id, settings))
    print(f"Embedding with {model_id} on {embedder.model.where}")
    return embedder
