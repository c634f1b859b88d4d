"""Load a query image from a URL safely: http(s) only, bounded size and time, checked content."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from helpers._images import ImageTooLarge, open_image

MAX_BYTES = 20 * 1024 * 1024
TIMEOUT_S = 15


class ImageFetchError(ValueError):
    """The URL did not give an image; the message says why."""


def is_url(text: str) -> bool:
    return "://" in text


def fetch_image(url: str, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT_S) -> Image.Image:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ImageFetchError(f"only http(s) image URLs are accepted, not {urlsplit(url).scheme}://")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except OSError as error:
        raise ImageFetchError(f"could not fetch {url}: {getattr(error, 'reason', error)}") from None
    if len(data) > max_bytes:
        raise ImageFetchError(f"{url} is larger than {max_bytes // (1024 * 1024)} MB")
    try:
        image = open_image(io.BytesIO(data))
        image.load()
    except ImageTooLarge as error:
        raise ImageFetchError(f"{url}: {error}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ImageFetchError(f"{url} is not an image PIL can read ({error})") from None
    return image


def fetched(image: str | Path | Image.Image) -> str | Path | Image.Image:
    """A URL's picture downloaded; files and PIL images as they are."""
    return fetch_image(image) if isinstance(image, str) and is_url(image) else image
