"""Pure helpers of the scale benchmarks (bench/gaps.py, bench/index_build.py): their docstring examples and
the edge cases the figures rest on. bench/ is not a package, so the modules are loaded by path."""

from __future__ import annotations

import doctest
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gaps = load("gaps")
index_build = load("index_build")
results = load("results")
fill = load("fill")
build_lag = load("build_lag")


@pytest.mark.parametrize("mod", [gaps, index_build, results, fill, build_lag])
def test_docstring_examples(mod):
    failed, tried = doctest.testmod(mod)
    assert tried >= 1 and failed == 0


def test_largest_gap_ignores_pairs_ending_outside_the_window():
    arrivals = [0.0, 1.0, 1.05, 1.1, 5.0]
    assert gaps.largest_gap(arrivals, 1.01, 2.0) == (0.05, 1.05)
    assert math.isnan(gaps.largest_gap(arrivals, 6.0, 7.0)[0])


def test_exact_topk_matches_a_full_sort_across_chunks():
    rng = np.random.default_rng(1)
    x, q = rng.normal(size=(1000, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = np.argsort(-(q / np.linalg.norm(q, axis=1, keepdims=True)) @ unit.T, axis=1)[:, :10]
    assert index_build.exact_topk(q, x, 10, chunk=97).tolist() == full.tolist()
