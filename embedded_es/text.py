"""Full-text matching for the embedded engine: the `standard` and `simple` analyzers, and
Lucene's BM25.

`text` fields are analysed with `standard` (Elasticsearch's default: Unicode word boundaries,
lower-cased) or `simple` (runs of letters, lower-cased); `keyword` fields match as one whole
term. Scores follow
Lucene's BM25 (k1 = 1.2, b = 0.75, no (k1 + 1) factor); a cluster stores field lengths in
one byte, so its scores can differ slightly in the third digit, never in which documents match.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

LETTER_RUNS = re.compile(r"[^\W\d_]+")
# UAX #29 word boundaries, near enough: letters, digits and connectors ("_") form words; a
# "." or an apostrophe between two word characters stays inside ("u.s.a", "don't", "3.14");
# each ideograph, kana or hangul syllable is a word of its own.
IDEOGRAPHS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
STANDARD_WORDS = re.compile(rf"[{IDEOGRAPHS}]|(?:(?![{IDEOGRAPHS}])\w)+(?:[.'’](?:(?![{IDEOGRAPHS}])\w)+)*")
MAX_TOKEN_LENGTH = 255
K1, B = 1.2, 0.75
# Analyzers Elasticsearch ships that the engine refuses by name (any other name is unknown).
KNOWN_ANALYZERS = {"whitespace", "stop", "keyword", "pattern", "fingerprint", "english", "french", "german"}
KNOWN_ANALYZERS |= {"spanish", "italian", "portuguese", "dutch", "russian", "cjk", "arabic", "chinese"}


def simple(text: str) -> list[str]:
    """Elasticsearch's `simple` analyzer: split on anything that is not a letter, lower-case."""
    return [token.lower() for token in LETTER_RUNS.findall(text)]


def standard(text: str) -> list[str]:
    """Elasticsearch's `standard` analyzer: the standard tokenizer's words, lower-cased; a
    word longer than 255 characters is cut into pieces of 255, as the tokenizer does."""
    tokens = []
    for word in STANDARD_WORDS.findall(text):
        tokens += [word[i : i + MAX_TOKEN_LENGTH].lower() for i in range(0, len(word), MAX_TOKEN_LENGTH)]
    return tokens


ANALYZERS = {"standard": standard, "simple": simple}


def analyze(text: str, analyzer: str = "standard") -> list[str]:
    return ANALYZERS[analyzer](text)


def bm25(documents: list[list[str] | None], terms: list[str], require_all: bool, norms: bool) -> tuple:
    """(matches, scores) of query `terms` against each document's tokens (None: the document has
    no value). Per term: idf · (k1 + 1) · tf / (tf + k1 · (1 − b + b · length / average length)),
    summed: Elasticsearch's default similarity (LegacyBM25Similarity) keeps the (k1 + 1) factor
    that Lucene 8 dropped, so a word query's score sits on the same scale as on a cluster beside a
    kNN score (dis_max, bool). Without norms (keyword fields) the length part is left out, as
    Lucene does."""
    with_field = [tokens for tokens in documents if tokens is not None]
    lengths = np.array([len(tokens) if tokens else 0 for tokens in documents], np.float64)
    average = lengths.sum() / len(with_field) if with_field else 1.0
    length_part = K1 * (1 - B + B * lengths / average) if norms and average > 0 else np.full(len(documents), K1)
    counts = [Counter(tokens) if tokens else None for tokens in documents]
    unique_terms = list(dict.fromkeys(terms))
    scores = np.zeros(len(documents), np.float64)
    found = np.zeros(len(documents), np.int64)
    for term in unique_terms:
        tf = np.array([c[term] if c else 0 for c in counts], np.float64)
        containing = int((tf > 0).sum())
        if not containing:
            continue
        idf = math.log(1 + (len(with_field) - containing + 0.5) / (containing + 0.5))
        scores += idf * (K1 + 1) * tf / (tf + length_part)
        found += tf > 0
    matches = (found == len(unique_terms)) if require_all else (found > 0)
    matches &= bool(unique_terms)
    return matches, np.where(matches, scores, 0).astype(np.float32)
