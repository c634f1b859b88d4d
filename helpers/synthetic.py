"""Synthetic embeddings with a realistic shape, for measuring approximate search at sizes the
demo set cannot reach.

Real embeddings (CLIP's among them) are far from uniform: a few directions carry most of the
variance, and every vector leans the same way (their cosines to each other are mostly
positive). Uniform random vectors have neither property and defeat every ANN method, which
teaches nothing. These vectors have a power-law spectrum (the i-th principal direction's
variance is 1 / (i + 1)), a shared mean direction (average cosine between two vectors about
0.5), a random rotation (so no coordinate is special) and unit length. Queries are drawn from
the same distribution: they are not copies of indexed vectors.

Everything is seeded: the same call gives the same vectors on any machine.
"""

from __future__ import annotations

import numpy as np

MEAN_WEIGHT = 3.0  # how strongly every vector leans along the shared direction


def basis(dims: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scale per principal direction, rotation, shared mean) of a family of vectors."""
    scale = np.sqrt(1.0 / (1 + np.arange(dims)))
    rotation = np.linalg.qr(np.random.default_rng(seed).standard_normal((dims, dims)))[0]
    mean = np.random.default_rng(seed + 1).standard_normal(dims) * 0.02 * MEAN_WEIGHT * np.sqrt((scale**2).sum())
    return scale.astype(np.float32), rotation.astype(np.float32), mean.astype(np.float32)


def spectrum_vectors(count: int, dims: int, seed: int = 0, family: int = 1, chunk: int = 50_000) -> np.ndarray:
    """`count` unit vectors of `dims` dimensions with a decaying spectrum (see the module's
    docstring); a different `seed` in the same `family` gives more vectors of the same kind
    (queries for an index, say)."""
    scale, rotation, mean = basis(dims, family)
    rng = np.random.default_rng(seed)
    out = np.empty((count, dims), np.float32)
    for start in range(0, count, chunk):
        rows = min(chunk, count - start)
        block = (rng.standard_normal((rows, dims), dtype=np.float32) * scale) @ rotation + mean
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
