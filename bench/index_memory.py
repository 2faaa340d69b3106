"""Memory of the kNN example store: N examples of DIM dimensions in one (class, property).

Measures what the worker's ``KnnIndexes`` keeps on the Python/numpy heap (tracemalloc sees
numpy buffers, not Annoy's own C++ heap or its memory-mapped file) and the process RSS
after the background builds settle. Run::

    .venv/bin/python bench/index_memory.py --n 100000 --dim 384
"""
from __future__ import annotations

import argparse
import gc
import resource
import tempfile
import time
import tracemalloc

import numpy as np


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=384)
    args = p.parse_args()
    try:
        from app.index.knn import KnnIndexes
    except ImportError:  # before the move: the class lived in app.state
        from app.state import KnnIndexes  # type: ignore[no-redef]
    from app.index.manager import Example
    from app.settings import Settings

    x = np.random.default_rng(0).normal(size=(args.n, args.dim)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        idx = KnnIndexes(Settings(data_dir=tmp))
        gc.collect()
        rss0 = rss_mib()
        tracemalloc.start()
        t0 = time.perf_counter()
        for i in range(args.n):
            idx.upsert(Example(f"e{i}", "Doc", x[i], {}, {"topic": f"t{i % 7}"}))
        upsert_s = time.perf_counter() - t0
        heap_now = tracemalloc.get_traced_memory()[0] / 2**20
        for m in getattr(idx, "managers", {"one": getattr(idx, "manager", None)}).values():
            if m is not None:
                m.wait_idle(600)
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.stop()
        print(f"examples {args.n} x {args.dim} float32 = {x.nbytes / 2**20:.1f} MiB raw")
        print(f"heap held by KnnIndexes (tracemalloc): {heap:.1f} MiB settled, "
              f"{heap_now:.1f} MiB right after the upserts (a build in flight)")
        print(f"RSS growth after builds settled: {rss_mib() - rss0:.1f} MiB "
              f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
        print(f"upserts under tracemalloc: {args.n / upsert_s:,.0f}/s")
        idx.close()


if __name__ == "__main__":
    main()
