"""Retrieval quality measured from class labels alone: precision@k, text-to-image and
image-to-image, computed exactly (cosine over all vectors) so that it measures the model,
not the index."""

from __future__ import annotations

from collections import Counter

import numpy as np

from helpers.dataset import ImageRecord

PROMPT_TEMPLATE = "a photo of a {}"


def text_to_image_precision(
    image_vectors: np.ndarray,
    labels: list[tuple[str, ...]],
    text_vectors: dict[str, np.ndarray],
    k: int = 5,
) -> dict[str, float]:
    """Per class: the share of the top-k images for its prompt that hold that class."""
    per_class = {}
    for name, query in text_vectors.items():
        top = np.argsort(-(image_vectors @ query), kind="stable")[:k]
        per_class[name] = float(np.mean([name in labels[i] for i in top]))
    return per_class


def image_to_image_precision(image_vectors: np.ndarray, labels: list[tuple[str, ...]], k: int = 5) -> float:
    """Mean over labelled images of the share of their k nearest others sharing a class."""
    similarity = image_vectors @ image_vectors.T
    np.fill_diagonal(similarity, -np.inf)
    scores = []
    for i, own in enumerate(labels):
        if own:
            top = np.argsort(-similarity[i], kind="stable")[:k]
            scores.append(np.mean([bool(set(own) & set(labels[j])) for j in top]))
    return float(np.mean(scores)) if scores else 0.0


def evaluate(embedder, records: list[ImageRecord], k: int = 5) -> dict:
    """Both precision figures; classes with fewer than k images are left out (they cannot
    reach 1.0), and how many were scored is reported."""
    vectors = embedder.embed_files([r.path for r in records], [r.sha256 for r in records])
    labels = [r.labels for r in records]
    counts = Counter(name for own in labels for name in own)
    classes = sorted(name for name, n in counts.items() if n >= k)
    prompts = embedder.embed_texts([PROMPT_TEMPLATE.format(name) for name in classes]) if classes else []
    per_class = text_to_image_precision(vectors, labels, dict(zip(classes, prompts)), k)
    return {
        "model": embedder.model_id,
        "stand_in": embedder.is_stand_in,
        "images": len(records),
        "classes_scored": len(classes),
        f"text_to_image_precision_at_{k}": round(float(np.mean(list(per_class.values()))) if per_class else 0.0, 4),
        f"image_to_image_precision_at_{k}": round(image_to_image_precision(vectors, labels, k), 4),
        "per_class": {name: round(p, 4) for name, p in per_class.items()},
    }
