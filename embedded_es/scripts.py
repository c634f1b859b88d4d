"""The Painless scripts `script_score` runs here: a vector similarity to a query vector, in the
two forms client libraries write.

- `cosineSimilarity(params.v, 'field') + 1.0` (or `dotProduct`), the constant optional;
- `double value = dotProduct(params.v, 'field'); return sigmoid(1, Math.E, -value);`, as
  elasticsearch-py's VectorStore writes its DOT_PRODUCT distance: Painless's
  `sigmoid(value, k, a)` is value^a / (k^a + value^a), each argument a number, `Math.E`, or the
  variable (negated or not);
- `double value = dotProduct(params.v, 'field'); return value < 0 ? 1 / (1 + -1 * value) : value + 1;`,
  max_inner_product's kNN score, as Elasticsearch's tests write it to compare with a kNN search.

Any other script is refused by name."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SIMILARITY = r"(cosineSimilarity|dotProduct)\(\s*params\.(\w+)\s*,\s*['\"]([\w.]+)['\"]\s*\)"
NUMBER = r"\d+(?:\.\d*)?"
PLUS_CONSTANT = re.compile(rf"^\s*{SIMILARITY}\s*(?:\+\s*({NUMBER})\s*)?;?\s*$")
ARGUMENT = rf"\s*(-?\s*\w+|Math\.E|{NUMBER})\s*"
SIGMOID = re.compile(
    rf"^\s*double\s+(\w+)\s*=\s*{SIMILARITY}\s*;\s*return\s+sigmoid\({ARGUMENT},{ARGUMENT},{ARGUMENT}\)\s*;?\s*$"
)
# `1 / (1 + -1 * v)` below zero, `v + 1` otherwise, with the variable's name repeated (checked in parse)
INNER_PRODUCT_SCORE = re.compile(
    rf"^\s*double\s+(\w+)\s*=\s*{SIMILARITY}\s*;\s*return\s+(\w+)\s*<\s*0\s*\?\s*1\s*/\s*\(\s*1\s*\+\s*-\s*1\s*\*"
    r"\s*(\w+)\s*\)\s*:\s*(\w+)\s*\+\s*1\s*;?\s*$"
)


@dataclass(frozen=True)
class Script:
    function: str  # cosineSimilarity or dotProduct
    parameter: str  # the params key holding the query vector
    field: str
    score: Callable[[np.ndarray], np.ndarray]  # similarity per document -> score per document


def argument(text: str, variable: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """One sigmoid argument as a function of the similarity (None: not one this engine reads)."""
    text = text.replace(" ", "")
    if text == "Math.E":
        return lambda raw: np.full_like(raw, math.e)
    if re.fullmatch(NUMBER, text):
        return lambda raw: np.full_like(raw, float(text))
    if text == variable:
        return lambda raw: raw
    if text == f"-{variable}":
        return lambda raw: -raw
    return None


def parse(source: str) -> Script | None:
    """The script, or None when it is not one of the forms above."""
    plain = PLUS_CONSTANT.match(source)
    if plain is not None:
        function, parameter, field, constant = plain.groups()
        return Script(function, parameter, field, lambda raw: raw + float(constant or 0))
    inner = INNER_PRODUCT_SCORE.match(source)
    if inner is not None:
        variable, function, parameter, field, *uses = inner.groups()
        if any(use != variable for use in uses):
            return None
        return Script(function, parameter, field, lambda raw: np.where(raw < 0, 1 / (1 - raw), raw + 1))
    sigmoid = SIGMOID.match(source)
    if sigmoid is None:
        return None
    variable, function, parameter, field, *texts = sigmoid.groups()
    value, k, a = (argument(text, variable) for text in texts)
    if value is None or k is None or a is None:
        return None

    def score(raw: np.ndarray) -> np.ndarray:
        raw = raw.astype(np.float64)  # Painless computes in doubles
        with np.errstate(all="ignore"):
            powered = np.power(value(raw), a(raw))
            return powered / (np.power(k(raw), a(raw)) + powered)

    return Script(function, parameter, field, score)
