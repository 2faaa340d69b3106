"""The end-to-end benchmark's pure helpers (bench/measure.py): the latency and CPU math its figures rest on.

bench/ is not a package and not in ``testpaths``, so the module is loaded by path and its
docstring examples are run here.
"""

from __future__ import annotations

import doctest
import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[2] / "bench" / "measure.py"
spec = importlib.util.spec_from_file_location("bench_measure", PATH)
assert spec and spec.loader
measure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measure)


def test_docstring_examples():
    failed, tried = doctest.testmod(measure)
    assert tried >= 8 and failed == 0


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentiles_match_numpy(n):
    values = np.random.default_rng(n).exponential(size=n).tolist()
    for q in (0, 50, 95, 99, 100):
        assert measure.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-9)


def test_percentile_bounds():
    assert math.isnan(measure.percentile([], 99))
    with pytest.raises(ValueError):
        measure.percentile([1.0], 101)


def test_latencies_count_missing_and_ignore_strangers():
    lat, missing = measure.latencies({b"a": 0.0, b"b": 1.0}, {b"b": 1.5, b"zz": 3.0})
    assert lat == [0.5] and missing == 1


def test_pacing_never_runs_ahead_or_past_total():
    rate, total = 250.0, 1000
    counts = [measure.due(t / 1000, rate, total) for t in range(0, 5000, 3)]
    assert counts == sorted(counts) and counts[-1] == total
    # at any time, at most one event ahead of the ideal schedule
    assert all(c <= t / 1000 * rate + 1 for c, t in zip(counts, range(0, 5000, 3)))


def test_own_process_cpu_and_peak_rss_are_read():
    pid = os.getpid()
    before = measure.cpu_seconds(pid)
    sum(i * i for i in range(300_000))  # burn some CPU
    assert measure.cpu_seconds(pid) > before
    assert measure.peak_rss(pid) > 10 * 1024 * 1024  # a Python process with numpy loaded


def test_cpu_split_attributes_each_layer_its_own_share():
    lines = measure.cpu_split({("w", "labelstream"): 1.0, ("w", "raw"): 0.1, ("w", "faust"): 0.4})
    assert lines == ["w: CPU ms per event: client 0.100 + Faust 0.300 + Labelstream 0.600 = 1.000 "
                     "(one core at that cost: 1,000 events/s)"]
    assert measure.cpu_split({("w", "raw"): 0.1, ("w", "labelstream"): 1.0}) == []


def test_recall_helper_against_exact():
    """bench/recall.py: its docstring example, and a worker that returned the wrong neighbours scores 0."""
    rspec = importlib.util.spec_from_file_location("bench_recall", PATH.parent / "recall.py")
    assert rspec and rspec.loader
    recall = importlib.util.module_from_spec(rspec)
    rspec.loader.exec_module(recall)
    assert doctest.testmod(recall).failed == 0
    import orjson
    train = np.eye(3, dtype=np.float32)
    wrong = {b"q": orjson.dumps({"detail": {"knn": {"topic": {"neighbours": [{"id": "ex-2"}]}}}})}
    assert recall.check(wrong, {"train": train, "queries": {"q": np.array([1, 0, 0], np.float32)}, "k": 1}).startswith(
        "recall@1 vs exact 0.0000")
