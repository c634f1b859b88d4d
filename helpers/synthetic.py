"""Synthetic embeddings with a realistic shape, for measuring approximate search at sizes the
demo set cannot reach.

Real embeddings (CLIP's among them) are far from uniform, and uniform random vectors defeat
every ANN method, which teaches nothing. Three properties of real embeddings are kept here:

- **a power-law spectrum**: the i-th principal direction's variance is 1 / (i + 1), the decay
  (exponent about 1) reported for the representations of well-trained vision models (the
  "alpha-ReQ" measure of Agrawal et al., NeurIPS 2022); 18 of 512 directions hold half the
  variance, about 240 hold 90%;
- **a shared direction**: every vector leans the same way (CLIP's "cone"): the average cosine
  between two vectors is about 0.65;
- **topics**: images come in kinds, and an image's nearest neighbours are of its kind. Each
  vector is one of 1,000 topic centres (ImageNet's number of classes) plus its own variation,
  half the variance each, both with the same spectrum. Without topics (one Gaussian) every
  point is nearly as far as every other, which real embeddings are not: the ratio of the mean
  distance to the nearest one ("relative contrast") falls to 1.4, where real embeddings keep
  it at about 1.75 to 2 (Chen et al. 2024, "Exploring the Meaningfulness of Nearest Neighbor
  Search in High-Dimensional Space", arXiv:2410.05752). With topics it is 1.74 at 50,000
  vectors, the hard end of that range, and the local intrinsic dimension about 18 (MLE over
  20 neighbours), in the range of real ANN benchmark sets.

A random rotation makes no coordinate special, and every vector has unit length. Queries are
drawn from the same distribution (same topics, new variation): they are not copies of indexed
vectors. Everything is seeded: the same call gives the same vectors on any machine.
"""

from __future__ import annotations

import numpy as np

MEAN_WEIGHT = 3.0  # how strongly every vector leans along the shared direction
TOPICS = 1_000  # kinds of image
WITHIN_TOPIC = 0.5  # share of a vector's variance that is its own, not its topic's


def basis(dims: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scale per principal direction, rotation, shared mean) of a family of vectors."""
    scale = np.sqrt(1.0 / (1 + np.arange(dims)))
    rotation = np.linalg.qr(np.random.default_rng(seed).standard_normal((dims, dims)))[0]
    mean = np.random.default_rng(seed + 1).standard_normal(dims) * 0.02 * MEAN_WEIGHT * np.sqrt((scale**2).sum())
    return scale.astype(np.float32), rotation.astype(np.float32), mean.astype(np.float32)


def topic_centres(dims: int, family: int = 1) -> np.ndarray:
    """The family's topic centres, before rotation: the same spectrum, shared by all seeds."""
    scale = basis(dims, family)[0]
    centres = np.random.default_rng(family + 2).standard_normal((TOPICS, dims), dtype=np.float32) * scale
    return centres * np.float32(np.sqrt(1 - WITHIN_TOPIC))


def spectrum_vectors(count: int, dims: int, seed: int = 0, family: int = 1, chunk: int = 50_000) -> np.ndarray:
    """`count` unit vectors of `dims` dimensions with a decaying spectrum, in topics (see the
    module's docstring); a different `seed` in the same `family` gives more vectors of the
    same kind and topics (queries for an index, say)."""
    scale, rotation, mean = basis(dims, family)
    centres = topic_centres(dims, family)
    own = scale * np.float32(np.sqrt(WITHIN_TOPIC))
    rng = np.random.default_rng(seed)
    out = np.empty((count, dims), np.float32)
    for start in range(0, count, chunk):
        rows = min(chunk, count - start)
        topic = rng.integers(TOPICS, size=rows)
        block = (centres[topic] + rng.standard_normal((rows, dims), dtype=np.float32) * own) @ rotation + mean
        out[start : start + rows] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 20_000) -> np.ndarray:
    """The true `k` nearest (by cosine, rows being unit length) of each query: ids, best first."""
    best = np.zeros((len(queries), 0), np.int64)
    best_sim = np.zeros((len(queries), 0), np.float32)
    for start in range(0, len(vectors), chunk):
        sims = queries @ vectors[start : start + chunk].T
        ids = np.concatenate([best, np.arange(start, start + sims.shape[1])[None, :].repeat(len(queries), 0)], 1)
        allsim = np.concatenate([best_sim, sims], 1)
        top = np.argsort(-allsim, axis=1, kind="stable")[:, :k]
        best, best_sim = np.take_along_axis(ids, top, 1), np.take_along_axis(allsim, top, 1)
    return best
