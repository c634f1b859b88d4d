"""Opening pictures safely: size checked from the header before any pixel is decoded, and
every mode (grey, CMYK, palette, 16-bit, alpha, animated, EXIF-rotated) turned into the
plain RGB picture CLIP expects."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 100_000_000  # 100 megapixels: above any camera, far below what exhausts memory
ROTATING_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's own guard, at the same limit


class ImageTooLarge(ValueError):
    """Refused before decoding: a decompression bomb, or simply too big."""


def open_image(source: Path | str | BinaryIO) -> Image.Image:
    """Open lazily (header only) and refuse anything over MAX_PIXELS before decoding it."""
    try:
        with warnings.catch_warnings():  # PIL warns between its limit and twice it; we refuse those below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except Image.DecompressionBombError:  # PIL refuses at twice its limit, before we can look
        raise ImageTooLarge(
            f"too large to decode safely: over {2 * MAX_PIXELS // 1_000_000} megapixels (a decompression bomb?)"
        ) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise ImageTooLarge(
            f"too large to decode safely: {width}x{height} pixels (limit {MAX_PIXELS // 1_000_000} megapixels)"
        )
    return image


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as the picture is shown, after its EXIF rotation."""
    width, height = image.size
    orientation = image.getexif().get(0x0112)
    return (height, width) if orientation in ROTATING_ORIENTATIONS else (width, height)


def to_rgb(image: Image.Image) -> Image.Image:
    """The first frame, rotated as EXIF says, 16-bit scaled to 8, transparency over white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(pixels.max()), 1.0)
        image = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def load_rgb(image: Path | str | Image.Image) -> Image.Image:
    """A PIL RGB image from a file or a PIL image. Inference reads numpy arrays as BGR, so
    images go to it as PIL, never as arrays."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    with open_image(image) as opened:
        return to_rgb(opened)
