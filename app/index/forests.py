"""The two kinds of approximate index a :class:`~app.index.live.LiveIndex` can build: build one,
ask it for candidates. Everything else of the approximate path (overlay, filters, exact re-rank,
fallback, snapshot files) is the live index's and the same for both kinds.

* ``"annoy"``: Annoy's forest (the default). Built by the niced child process when it goes to a
  file (:mod:`app.index.forest_proc`), else on the calling thread (``add_item`` per row holds the
  GIL, ``build`` releases it); searched one query at a time with a ``search_k`` budget.
* ``"ivf"``: an inverted file (:mod:`app.index.ivf`, FAISS), built the same way; searched in one
  call per batch, without the GIL. FAISS is imported only when this kind is used.

>>> import numpy as np
>>> v = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
>>> f = build("annoy", 4, "cosine", np.arange(40), v, None, size=4, jobs=1, in_child=False)
>>> [int(c[0]) for c in candidates("annoy", f, v[[3, 7]], 5, search_k=None, nprobe=None)]
[3, 7]
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from annoy import AnnoyIndex

from app.core.knn import Metric
from app.index import files, forest_proc

__all__ = ["Kind", "build", "candidates"]

Kind = Literal["annoy", "ivf"]


def build(kind: Kind, dim: int, metric: Metric, rows: np.ndarray, vecs: np.ndarray, target: Path | None, *,
          size: int | None, jobs: int, in_child: bool) -> files.Forest:
    """The forest over ``vecs[rows]`` (item ``i`` = ``rows[i]``), written to ``target`` if given.

    ``size``: Annoy's trees, or the inverted file's cells (None: ~sqrt of the examples);
    ``in_child``: a forest going to a file is built by the niced child process."""
    if kind == "ivf":
        from app.index import ivf  # FAISS is loaded only by a worker that uses it
        if target is not None and in_child:
            forest_proc.build_file(vecs, rows, metric, size or 0, target, jobs=jobs, kind="ivf")
            return ivf.load(target, metric)
        built = ivf.build(vecs[rows], metric, size)  # FAISS releases the GIL
        if target is not None:
            built.save(str(target))
        return built
    trees = size or 32
    # Raw rows also for cosine: Annoy's angular metric normalises by itself.
    if target is not None and in_child:  # off this process's GIL and CPU priority
        forest_proc.build_file(vecs, rows, files.annoy_metric(metric), trees, target, jobs=jobs)
        return files.load_annoy(target, dim, metric)
    forest = AnnoyIndex(dim, files.annoy_metric(metric))
    if target is not None:  # the file is written by build(), without the GIL (files.py)
        forest.on_disk_build(str(target))
    forest_proc.add_items(forest, vecs, rows)  # rows < n never change: no lock
    forest.build(trees, n_jobs=jobs)  # releases the GIL
    return forest


def candidates(kind: Kind, forest: files.Forest, q: np.ndarray, fetch: int, *,
               search_k: int | None, nprobe: int | None) -> list[np.ndarray]:
    """Item numbers of each query's ``fetch`` approximate nearest items (possibly fewer)."""
    if kind == "ivf":  # one call for the batch, without the GIL
        items = forest.search(q, fetch, nprobe)  # type: ignore[attr-defined]
        return [row[row >= 0].astype(np.int64) for row in items]
    budget = -1 if search_k is None else search_k
    return [np.asarray(forest.get_nns_by_vector(qi, fetch, budget), np.int64)  # type: ignore[attr-defined]
            for qi in q.tolist()]
