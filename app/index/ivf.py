"""An inverted-file forest (FAISS ``IndexIVFFlat``): the other approximate index a LiveIndex can build.

Why a second kind beside Annoy: on high-intrinsic-dimension embeddings (384-d, neighbours spread
through a cluster) Annoy needs a search budget of thousands of items per query for recall 0.95
and answers ~220-370 queries/s per thread at 100k examples (``bench/RESULTS.md``, "kNN large").
An inverted file cuts the examples into ``nlist`` cells by k-means and scans only the ``nprobe``
cells nearest a query, with FAISS's SIMD kernels, in one call per batch that releases the GIL.

* ``nprobe`` is *calibrated* at build time on the index's own examples: the smallest of
  :func:`probe_steps` whose recall@10 against exact search, over up to 256 sampled examples (each query's own row
  left out), reaches ``target_recall``. It is saved in the file, so a restart serves as before.
* Deterministic per query: FAISS searches each query on its own (one OpenMP thread here, and
  the coarse step never switches to a batched BLAS product), so a result does not depend on
  which other events shared its batch. The caller re-ranks the candidates exactly anyway.
* Cosine rows are normalised before they are added (and queries before they are searched): the
  inner product of unit vectors orders like cosine.

Same duck type as what the builder and :mod:`app.index.files` use of an ``AnnoyIndex``:
``get_n_items``, ``save``, ``unload``.

>>> import numpy as np
>>> x = np.random.default_rng(1).normal(size=(400, 8)).astype(np.float32)
>>> f = build(x, "cosine", nlist=8)
>>> f.get_n_items(), 1 <= f.nprobe <= 8
(400, True)
>>> f.search(x[:2], 1).tolist()
[[0], [1]]
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from app.core.knn import normalize

__all__ = ["IvfForest", "build", "load", "set_threads"]


def set_threads(n: int) -> None:
    """FAISS's OpenMP threads in this process (1 in a worker: its classify pool is the
    parallelism, FAISS's own threads would fight it; a build child may use ``build_jobs``)."""
    faiss.omp_set_num_threads(max(1, n))


set_threads(1)
# Coarse search of a batch of >= 20 queries would switch to a BLAS product, whose rounding can
# depend on the batch: per query only, so a redelivered event gets its result byte for byte.
faiss.cvar.distance_compute_blas_threshold = 1 << 30

CALIBRATION_QUERIES = 256
CALIBRATION_K = 10
TRAIN_PER_CELL = 64  # k-means sample: FAISS warns below 39 points per centroid


def default_nlist(n: int) -> int:
    """Cells for ``n`` examples: ~sqrt(n), at least 1, at most n // 39 (k-means needs points).

    >>> default_nlist(100_000), default_nlist(50), default_nlist(0)
    (316, 1, 1)
    """
    return max(1, min(round(math.sqrt(n)), n // 39))


class IvfForest:
    """A built inverted file; thread-safe for searches."""

    def __init__(self, index: faiss.IndexIVF, metric: str) -> None:
        self.index, self.metric = index, metric

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    def get_n_items(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, n: int, nprobe: int | None = None) -> np.ndarray:
        """Item numbers of the ``n`` nearest items of each query (``-1`` pads a short row)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.metric == "cosine":
            q = normalize(q)
        n = max(1, min(n, self.get_n_items()))
        if nprobe is None:
            _, items = self.index.search(q, n)
        else:
            _, items = self.index.search(q, n, params=_probe(min(nprobe, int(self.index.nlist))))
        return items

    def save(self, path: str) -> None:
        faiss.write_index(self.index, path)

    def unload(self) -> None:
        """Nothing to unmap: FAISS reads the whole file in (kept for the AnnoyIndex duck type)."""


def build(vecs: np.ndarray, metric: str, nlist: int | None = None, target_recall: float = 0.98,
          seed: int = 0) -> IvfForest:
    """The inverted file over ``vecs`` (item ``i`` = ``vecs[i]``), ``nprobe`` calibrated."""
    x = np.ascontiguousarray(vecs, dtype=np.float32)
    if metric == "cosine":
        x = normalize(x)
    n, dim = x.shape
    cells = default_nlist(n) if not nlist else max(1, min(int(nlist), n))
    inner = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    index = faiss.IndexIVFFlat(faiss.IndexFlat(dim, inner), dim, cells, inner)
    index.cp.seed = seed  # same examples, same cells: a rebuild serves as the build before it
    rng = np.random.default_rng(seed)
    train = x if n <= cells * TRAIN_PER_CELL else x[np.sort(rng.choice(n, cells * TRAIN_PER_CELL, replace=False))]
    index.train(train)
    index.add(x)
    index.nprobe = calibrate(index, x, target_recall, rng)
    return IvfForest(index, metric)


def calibrate(index: faiss.IndexIVF, x: np.ndarray, target_recall: float,
              rng: np.random.Generator) -> int:
    """Smallest of :func:`probe_steps` (else ``nlist``) reaching ``target_recall`` at k=10 on
    sampled rows of ``x`` against exact search, each query's own row left out."""
    n, cells = x.shape[0], int(index.nlist)
    if n <= CALIBRATION_K + 1 or cells == 1:
        return cells
    sample = np.sort(rng.choice(n, min(n, CALIBRATION_QUERIES), replace=False))
    q, k = x[sample], CALIBRATION_K + 1
    _, truth = faiss.knn(q, x, k, metric=index.metric_type)  # brute force over x in place: no copy
    truth_sets = [set(t.tolist()) - {s} for t, s in zip(truth, sample.tolist())]
    wanted = target_recall * sum(len(t) for t in truth_sets)
    for nprobe in probe_steps(cells):
        _, found = index.search(q, k, params=_probe(nprobe))
        if sum(len(t & set(f.tolist())) for t, f in zip(truth_sets, found)) >= wanted:
            return nprobe
    return cells


def probe_steps(cells: int) -> list[int]:
    """The ``nprobe`` values calibration tries, in order: 1, 2, 3, 4, 6, 8, 12, ... (steps of ~1.5x:
    each costs a pass over the sample; a power of two alone overshot, e.g. 8 where 6 reached the
    target), below ``cells``.

    >>> probe_steps(20)
    [1, 2, 3, 4, 6, 8, 12, 16]
    """
    steps, p = [], 1
    while p < cells:
        steps.append(p)
        p = p + 1 if p < 2 else (p * 3 // 2 if (p & (p - 1)) == 0 else p * 4 // 3)
    return steps


def load(path: Path | str, metric: str) -> IvfForest:
    # read_index returns the concrete class (IndexIVFFlat); extract_index_ivf would return a view
    # into a temporary that Python frees.
    return IvfForest(cast(faiss.IndexIVF, faiss.read_index(str(path))), metric)


def _probe(nprobe: int) -> faiss.SearchParametersIVF:
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    return params
