"""The fast hashing vectorizer must give bit-identical vectors to the original per-feature one.

Stored training examples were vectorized with the original algorithm, so any difference, even in
the last bit, would move them. ``reference_encode`` below is a frozen copy of it (as of commit
5da3645): do not "fix" or modernise it; it is the specification the fast path is held to.
"""
import math
import random
import re
import zlib
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.ngram_hash import Text
from app.core.vectorizers import HashingVectorizer, TextTooLong, VectorizerError, get_vectorizer

# --- frozen reference: the original HashingVectorizer, verbatim apart from being functions -----
_WORD = re.compile(r"\w+")
_GROUP_WEIGHTS = {"w": 1.0, "b": 0.5, "c": 1.0}


def _bucket_sign(feature, dim):
    h = zlib.crc32(feature.encode("utf-8"))
    return h % dim, (1.0 if h >> 31 else -1.0)


def _features(text, ngram_range):
    words = _WORD.findall(text.lower())
    joined = f" {' '.join(words)} " if words else ""
    lo, hi = ngram_range
    chars = Counter(joined[i : i + k] for k in range(lo, hi + 1) for i in range(len(joined) - k + 1))
    return {"w": Counter(words),
            "b": Counter(f"{a} {b}" for a, b in zip(words, words[1:], strict=False)),
            "c": chars}


def _encode_one(text, dim, ngram_range):
    out = np.zeros(dim, dtype=np.float64)
    for group, counts in _features(text, ngram_range).items():
        if not counts:
            continue
        idx = np.empty(len(counts), dtype=np.intp)
        val = np.empty(len(counts), dtype=np.float64)
        for j, (feat, tf) in enumerate(counts.items()):
            b, s = _bucket_sign(f"{group}:{feat}", dim)
            idx[j], val[j] = b, s * (1.0 + math.log(tf))
        vec = np.bincount(idx, weights=val, minlength=dim)
        norm = np.linalg.norm(vec)
        if norm > 0:
            out += _GROUP_WEIGHTS[group] * vec / norm
    return out


def reference_encode(texts, dim=384, ngram_range=(3, 5)):
    X = np.zeros((len(texts), dim), dtype=np.float64)
    for i, t in enumerate(texts):
        X[i] = _encode_one(t, dim, ngram_range)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
# --- end of the frozen reference ---------------------------------------------------------------


def _rng_text(seed, n, alphabet, word_len=(1, 12)):
    rng = random.Random(seed)
    out, size = [], 0
    while size < n:
        w = "".join(rng.choice(alphabet) for _ in range(rng.randint(*word_len)))
        out.append(w + rng.choice([" ", " ", ", ", ". ", "\n", "\t", " - "]))
        size += len(out[-1])
    return "".join(out)[:n]


CJK = "".join(chr(0x4E00 + i) for i in range(5000))
TEXTS = [
    "", " ", "   \n\t ", "!!! ... ???", "x", "ok", "go go go now", "Hello, World!",
    "Zero-shot classification on Kafka", "Déjà vu: cats & dogs", "Straße STRASSE straße",
    "İstanbul ıi İI",  # lower() of İ is two code points: the text grows
    "ΣΊΣΥΦΟΣ σίσυφος ς", "naïve café", "e\u0301 combining", "日本語のテキスト 中文 한국어",
    "emoji 🐈‍⬛ 👍🏽 text 🎉🎉", "snake_case and 123 456 7_8", "a" * 33, "abc " * 40,
    "x" * 5000 + " y " + "z" * 40,  # words longer than the vectorised CRC span
    "supercalifragilisticexpialidocious antidisestablishmentarianism " * 3,
    _rng_text(1, 3000, "abcdefghij"), _rng_text(2, 4000, "aéüßΣσ日本🐈"),
    _rng_text(3, 20_000, "abcdefghijklmnopqrstuvwxyz0123456789_"),
    _rng_text(4, 6000, CJK[:3000], (1, 4)),  # ~3000 distinct chars: 5-grams do not pack with positions
    _rng_text(5, 12_000, CJK, (1, 4)),  # > 4096 distinct chars: n-grams compared as raw bytes
]


def vectorizer(path, **kw):
    """``path``: 'numpy' or 'per-feature' forces that way of hashing for every text length."""
    v = HashingVectorizer(**kw)
    v.numpy_from_chars = 0 if path == "numpy" else 10**9
    return v


PATHS = pytest.mark.parametrize("path", ["numpy", "per-feature"])


@PATHS
@pytest.mark.parametrize("dim", [2, 16, 384, 1000])
def test_identical_to_the_original_on_varied_texts(dim, path):
    new = vectorizer(path, dim=dim).encode(TEXTS)
    old = reference_encode(TEXTS, dim)
    for i, (a, b) in enumerate(zip(new, old, strict=True)):
        assert a.tobytes() == b.tobytes(), f"text {i} ({TEXTS[i][:30]!r}) differs"


@PATHS
@pytest.mark.parametrize("dim", [3, 384])
def test_identical_before_the_float32_cast(dim, path):
    # float32 hides most last-bit differences of the float64 sums; compare those too, so a
    # change in the order features are added up cannot slip through.
    v = vectorizer(path, dim=dim)
    for t in TEXTS:
        assert v._encode_one(t).tobytes() == _encode_one(t, dim, (3, 5)).tobytes(), t[:30]


@PATHS
@pytest.mark.parametrize("ngram_range", [(1, 1), (2, 4), (3, 5), (1, 8)])
def test_identical_for_other_ngram_ranges(ngram_range, path):
    texts = TEXTS[:22]
    new = vectorizer(path, dim=64, ngram_range=ngram_range).encode(texts)
    assert new.tobytes() == reference_encode(texts, 64, ngram_range).tobytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=4), st.sampled_from([3, 32, 384]),
       st.sampled_from(["numpy", "per-feature"]))
def test_identical_on_arbitrary_unicode(texts, dim, path):
    want = reference_encode(texts, dim).tobytes()
    assert vectorizer(path, dim=dim).encode(texts).tobytes() == want


def test_default_switches_to_numpy_for_long_texts(monkeypatch):
    calls = []
    monkeypatch.setattr(Text, "of_words", lambda words, f=Text.of_words: calls.append(1) or f(words))
    v = HashingVectorizer()
    v.encode(["short text " * 5])
    assert calls == []
    v.encode(["long text " * 100])
    assert calls == [1]


def test_crc_of_spans_matches_zlib_for_every_length():
    t = Text(" " + "".join(random.Random(9).choice("aé日🐈 ") for _ in range(300)))
    starts = np.arange(0, 250, 3)
    lengths = np.array([(i * 7) % 60 for i in range(starts.size)])
    got = t.crc32(b"c:", starts, lengths)
    want = [zlib.crc32(b"c:" + t.text[s : s + n].encode()) for s, n in zip(starts, lengths, strict=True)]
    assert got.tolist() == want


def test_text_too_long_is_checked_before_any_work():
    v = HashingVectorizer(dim=8, max_chars=10)
    assert v.encode(["x" * 10]).shape == (1, 8)
    with pytest.raises(TextTooLong) as err:
        v.encode(["short", "y" * 11, "z" * 50])
    e = err.value
    assert isinstance(e, VectorizerError)
    assert (e.index, e.length, e.limit, e.reason) == (1, 11, 10, "text_too_long")
    assert "11 characters exceeds the limit of 10" in str(e)
    assert HashingVectorizer(dim=8, max_chars=None).encode(["w " * 200_000]).shape == (1, 8)


def test_default_and_wired_text_limits():
    from app.core.vectorizers import DEFAULT_MAX_TEXT_CHARS
    from app.schemas.deadletter import REASONS
    assert DEFAULT_MAX_TEXT_CHARS == 100_000 and "text_too_long" in REASONS
    assert VectorizerError("x").reason == "vectorizer_error"
    get_vectorizer("hashing").encode(["a" * DEFAULT_MAX_TEXT_CHARS])
    with pytest.raises(TextTooLong):
        get_vectorizer("hashing").encode(["a" * (DEFAULT_MAX_TEXT_CHARS + 1)])
    with pytest.raises(TextTooLong):
        get_vectorizer("hashing", dim=16, max_chars=3).encode(["abcd"])
