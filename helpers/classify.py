"""Zero-shot labels: rank candidate labels for a picture by CLIP similarity, no training.

Each label becomes a prompt ("a photo of a dog": CLIP was trained on captions, and a bare
word matches worse). `score` is the cosine between the picture and the prompt; `probability`
is CLIP's own softmax over the candidates, cosines × 100 (the logit scale OpenAI's CLIP
learned), so it only means something relative to the labels offered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from helpers.embedder import Embedder
from helpers.evaluate import PROMPT_TEMPLATE

LOGIT_SCALE = 100.0


def parse_labels(text: str) -> list[str]:
    """ "cat, dog ,cup" -> ["cat", "dog", "cup"]; at least two different labels."""
    labels = list(dict.fromkeys(label.strip() for label in text.split(",") if label.strip()))
    if len(labels) < 2:
        raise ValueError(f'give at least two different comma-separated labels, e.g. --labels "cat,dog", not {text!r}')
    return labels


def classify(
    embedder: Embedder, image: str | Path | Image.Image, labels: list[str], template: str = PROMPT_TEMPLATE
) -> list[dict]:
    """[{label, score, probability}], best first. `image`: a file, an http(s) URL or a PIL image."""
    picture = embedder.embed_images([image])[0]
    prompts = embedder.embed_texts([template.format(label) for label in labels])
    cosines = prompts @ picture
    logits = LOGIT_SCALE * (cosines - cosines.max())
    probabilities = np.exp(logits) / np.exp(logits).sum()
    ranked = sorted(zip(labels, cosines, probabilities), key=lambda item: -item[1])
    return [{"label": label, "score": round(float(s), 6), "probability": round(float(p), 6)} for label, s, p in ranked]
