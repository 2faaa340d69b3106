"""How long a background index build stalls the other threads of its process (the GIL).

A worker's event loop and classify threads share one interpreter with the index build thread.
Here the main thread stands in for them: it sleeps 1 ms in a loop and records how late each
wake-up is, first for ``--seconds`` with nothing else running (the machine's own noise), then
while ``build_now`` (the production build: capture, Annoy ``add_item`` + ``build``, snapshot
write, mmap, swap) runs on another thread over ``--n`` examples. A wake-up needs the GIL, so a
long late wake-up during the build is time the build held the GIL in one piece.

    .venv/bin/python bench/build_lag.py --n 100000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import measure  # noqa: E402
from index_build import data, timed  # noqa: E402


def lags(until: threading.Event | None, seconds: float, tick: float = 0.001,
         big: list[tuple[float, float]] | None = None) -> list[float]:
    """Late wake-ups (s) of a ``tick`` sleep loop, until ``until`` is set (or ``seconds`` pass);
    wake-ups later than 100 ms are also appended to ``big`` as (when it woke, lateness)."""
    out, end = [], time.perf_counter() + seconds
    while (until is None or not until.is_set()) and time.perf_counter() < end:
        t = time.perf_counter()
        time.sleep(tick)
        late = time.perf_counter() - t - tick
        out.append(late)
        if big is not None and late > 0.1:
            big.append((time.perf_counter(), late))
    return out


def phase_of(t: float, phases: list[tuple[str, float, float]]) -> str:
    """The name of the phase ``(name, start, end)`` that contains ``t``.

    >>> phase_of(1.5, [("a", 0.0, 1.0), ("b", 1.0, 2.0)]), phase_of(5.0, [("a", 0.0, 1.0)])
    ('b', 'between phases')
    """
    return next((name for name, s, e in phases if s <= t <= e), "between phases")


def summary(xs: list[float]) -> str:
    p50, p99, top = measure.percentiles(xs, (50, 99, 100))
    return f"wake-ups {len(xs):,}, late p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.1f} ms, max {top * 1e3:.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the baseline")
    a = ap.parse_args()
    from app.index import files
    from app.index.knn import KnnIndexes
    from app.index.manager import Example
    from app.settings import Settings

    x, lab = data(a.n)
    with tempfile.TemporaryDirectory(prefix="bench-lag-") as tmp:
        idx = KnnIndexes(Settings(data_dir=Path(tmp)))
        idx.manager.settings = replace(idx.manager.settings, auto_build=False)
        for i in range(a.n):
            idx.upsert(Example(f"ex-{i}", "Doc", x[i], {}, {"topic": f"t{lab[i]}"}))
        ix = idx.manager.get("Doc", "topic")
        assert ix is not None
        load0 = os.getloadavg()[0]
        base = lags(None, a.seconds)
        done = threading.Event()
        took: list[float] = []

        def build() -> None:
            t = time.perf_counter()
            ix.build_now()
            took.append(time.perf_counter() - t)
            done.set()

        phases: list[tuple[str, float, float]] = []

        def note(name: str, t0: float, t1: float) -> None:
            phases.append((name, t0, t1))

        ix.make_forest = timed("add_item + build", ix.make_forest, note)
        files.write_snapshot = timed("write_snapshot", files.write_snapshot, note)
        files.load_annoy = timed("load", files.load_annoy, note)
        th = threading.Thread(target=build)
        big: list[tuple[float, float]] = []
        th.start()
        during = lags(done, 3600, big=big)
        th.join()
        idx.close()
    print(f"{a.n:,} examples x 384-d, build {took[0]:.1f} s; load average {load0:.1f} → {os.getloadavg()[0]:.1f}")
    print(f"  baseline ({a.seconds:g} s, nothing else): {summary(base)}")
    print(f"  during the build:                {summary(during)}")
    for t, late in big:  # the phase the stalled thread woke up in (a stall may have begun in the one before)
        print(f"  late {late * 1000:,.0f} ms, woke in: {phase_of(t, phases)}")


if __name__ == "__main__":
    main()
