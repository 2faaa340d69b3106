"""CPU per query of a LiveIndex's Annoy path by batch size (one event per batch is the paced case).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/search_batch.py [--root DIR] [--n 100000]

``--root``: the source tree to import ``app`` from (a ``git archive`` of another commit), so two
commits' search paths are measured on the same data. Random 384-d vectors, 16 trees, search_k 5,000.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    a = ap.parse_args()
    sys.path.insert(0, a.root)
    from app.index.live import LiveIndex

    rng = np.random.default_rng(0)
    ix = LiveIndex(384, exact_threshold=1000, n_trees=16, search_k=5000, auto_build=False)
    x = rng.normal(size=(a.n, 384)).astype(np.float32)
    for i in range(a.n):
        ix.upsert(f"e{i}", x[i], "a")
    ix.build_now()
    q = rng.normal(size=(a.queries, 384)).astype(np.float32)
    for batch in (1, 100):
        t = time.process_time()
        for i in range(0, a.queries, batch):
            ix.search(q[i:i + batch], 5)
        print(f"{a.root}: batch {batch}: {(time.process_time() - t) / a.queries * 1000:.3f} ms CPU per query")


if __name__ == "__main__":
    main()
