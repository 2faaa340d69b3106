"""head_softmax: each head's columns sum to 1 per row, stable at tiny temperatures."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.core.heads import head_softmax


def test_two_heads_hand_computed():
    sims = np.array([[0.9, 0.1, 0.2, 0.5, 0.5]])
    heads = np.array([0, 0, 1, 1, 1])
    p = head_softmax(sims, heads, temperature=1.0)
    e = np.exp([0.9, 0.1])
    assert p[0, :2] == pytest.approx(e / e.sum(), abs=1e-12)
    e = np.exp([0.2, 0.5, 0.5])
    assert p[0, 2:] == pytest.approx(e / e.sum(), abs=1e-12)


def test_interleaved_non_contiguous_head_ids():
    sims = np.array([[1.0, 5.0, 2.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    heads = np.array([42, -3, 42, -3])
    p = head_softmax(sims, heads, 0.5)
    assert p[:, [0, 2]].sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-12)
    assert p[:, [1, 3]].sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-12)
    assert p[0, 1] == pytest.approx(0.5) and p[0, 3] == pytest.approx(0.5)
    assert p[0, 2] > p[0, 0]


def test_single_class_head_is_certain():
    p = head_softmax(np.array([[-0.7, 0.3]]), np.array([0, 1]), 0.05)
    assert p.tolist() == [[1.0, 1.0]]


def test_tiny_temperature_does_not_overflow():
    p = head_softmax(np.array([[1.0, -1.0, 0.999]]), np.zeros(3, dtype=int), 1e-6)
    assert np.isfinite(p).all()
    assert p[0].sum() == pytest.approx(1.0, abs=1e-12)
    assert p[0, 0] == pytest.approx(1.0)


def test_minus_inf_masks_a_class():
    p = head_softmax(np.array([[-np.inf, 0.2, 0.2]]), np.zeros(3, dtype=int), 0.05)
    assert p.tolist() == [[0.0, 0.5, 0.5]]


def test_shapes_and_errors():
    assert head_softmax(np.zeros((0, 3)), np.zeros(3, int), 0.1).shape == (0, 3)
    assert head_softmax(np.zeros((2, 0)), np.zeros(0, int), 0.1).shape == (2, 0)
    with pytest.raises(ValueError):
        head_softmax(np.zeros((1, 2)), np.zeros(2, int), 0.0)
    with pytest.raises(ValueError):
        head_softmax(np.zeros((1, 2)), np.zeros(3, int), 0.1)
    with pytest.raises(ValueError):
        head_softmax(np.zeros(2), np.zeros(2, int), 0.1)


def test_does_not_modify_input_and_returns_float64():
    sims = np.array([[0.3, 0.1]], dtype=np.float32)
    before = sims.copy()
    p = head_softmax(sims, np.array([0, 0]), 0.05)
    assert p.dtype == np.float64
    assert (sims == before).all()


@settings(max_examples=200, deadline=None)
@given(
    sims=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)),
                elements=st.floats(-1, 1, allow_nan=False)),
    seed=st.integers(0, 2**31 - 1),
    temperature=st.floats(1e-4, 10),
)
def test_every_head_sums_to_one(sims, seed, temperature):
    rng = np.random.default_rng(seed)
    heads = rng.integers(0, 3, size=sims.shape[1])
    p = head_softmax(sims, heads, temperature)
    assert ((p >= 0) & (p <= 1)).all()
    for h in np.unique(heads):
        assert np.abs(p[:, heads == h].sum(axis=1) - 1).max() <= 1e-6
    # Within a head the most similar class gets the highest probability (softmax is monotone).
    for h in np.unique(heads):
        cols = np.flatnonzero(heads == h)
        top = sims[:, cols].argmax(axis=1)
        assert (p[np.arange(len(p)), cols[top]] == p[:, cols].max(axis=1)).all()
