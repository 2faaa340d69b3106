"""Inverted-file cells stored flat vs scalar-quantized (8-bit, fp16), with an exact re-rank: CPU per query and recall@5.

The knn-large workload's distribution (bench/workloads.py: 100,000 x 384-d around 50 centres, cosine),
316 cells, 1,000 queries in batches of 100 on one FAISS thread; each query's 50 candidates re-ranked
exactly, as ``LiveIndex`` does (k=5, fetch_factor 10). A tried-and-not-kept lever of issue 10
(bench/RESULTS.md, "Issue 10: where each target stands").

    .venv/bin/python bench/ivf_quantized.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import DIM  # noqa: E402

K, CANDIDATES, CELLS, PROBES = 5, 50, 316, (4, 6, 8)


def data(n: int = 100_000, labels: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)  # the knn-large workload's seed and shape
    centres = rng.normal(size=(labels, DIM)).astype(np.float32)
    x = (centres[rng.integers(0, labels, n)] + 1.5 * rng.normal(size=(n, DIM))).astype(np.float32)
    r = np.random.default_rng(9)
    q = (centres[r.integers(0, labels, 1000)] + 1.5 * r.normal(size=(1000, DIM))).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)


def main() -> None:
    faiss.omp_set_num_threads(1)
    x, q = data()
    _, truth = faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    ip = faiss.METRIC_INNER_PRODUCT
    kinds = {"flat": lambda: faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, CELLS, ip),
             "sq8": lambda: faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(DIM), DIM, CELLS,
                                                          faiss.ScalarQuantizer.QT_8bit, ip),
             "fp16": lambda: faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(DIM), DIM, CELLS,
                                                           faiss.ScalarQuantizer.QT_fp16, ip)}
    print("| cells | nprobe | ms CPU / query | recall@5 after re-rank |\n|---|---:|---:|---:|")
    for name, make in kinds.items():
        index = make()
        index.train(x[: CELLS * 64])
        index.add(x)
        for nprobe in PROBES:
            index.nprobe = nprobe
            t = time.process_time()
            found = np.vstack([index.search(q[i:i + 100], CANDIDATES)[1] for i in range(0, len(q), 100)])
            ms = (time.process_time() - t) / len(q) * 1000
            top = [c[c >= 0][np.argsort(-(x[c[c >= 0]] @ qi))[:K]] for qi, c in zip(q, found)]
            recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(top, truth)])
            print(f"| {name} | {nprobe} | {ms:.3f} | {recall:.4f} |", flush=True)


if __name__ == "__main__":
    main()
