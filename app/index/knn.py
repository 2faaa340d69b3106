"""The kNN indexes of a worker: one store of examples per (class, property), both metrics.

Each example is kept once (raw vector + its norm, see :mod:`app.index.store`). The
configured Annoy forests are cosine (the default distance); a classifier that asks for
euclidean gets :meth:`LiveIndex.as_metric` — the same examples, searched exactly — so the
two metrics can never disagree about which examples exist. Every index of the worker
builds on the one thread of the manager's :class:`~app.index.builder.BuildScheduler`.

>>> import tempfile
>>> from types import SimpleNamespace
>>> from app.index.manager import Example
>>> s = SimpleNamespace(data_dir=tempfile.mkdtemp(), knn_exact_threshold=2000,
...                     annoy_n_trees=None, annoy_search_k=None, index_build_process=True,
...                     knn_index="annoy", ivf_nlist=None, ivf_nprobe=None)
>>> ix = KnnIndexes(s)
>>> ix.upsert(Example("e1", "Doc", [3.0, 4.0], {}, {"topic": "a"}))
>>> ix.get("Doc", "topic", "euclidean").search([[0.0, 0.0]], 1).distances[0].tolist()
[5.0]
>>> ix.get("Doc", "topic").search([[0.0, 1.0]], 1).distances[0].round(2).tolist()
[0.1]
>>> ix.close()
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.knn import Metric, check_metric
from app.index.live import IndexSettings, LiveIndex, MetricView
from app.index.manager import Example, IndexManager, Key

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = ["KnnIndexes"]

# The metric the Annoy forests are built for; the other one is served exactly.
ANNOY_METRIC: Metric = "cosine"


class KnnIndexes:
    """Routes examples to their indexes and hands classifiers a searchable per metric."""

    def __init__(self, settings: Settings) -> None:
        # "cosine": where the (cosine) forests always lived, so a restart finds its files.
        root = Path(settings.data_dir) / "indexes" / ANNOY_METRIC
        knobs: dict[str, Any] = {k: v for k, v in (("n_trees", settings.annoy_n_trees),
                                                  ("search_k", settings.annoy_search_k),
                                                  ("nlist", settings.ivf_nlist),
                                                  ("nprobe", settings.ivf_nprobe)) if v}
        self.manager = IndexManager(root, IndexSettings(
            metric=ANNOY_METRIC, exact_threshold=settings.knn_exact_threshold, kind=settings.knn_index,
            build_process=settings.index_build_process, **knobs))

    def get(self, class_name: str, prop: str,
            metric: str = ANNOY_METRIC) -> LiveIndex | MetricView | None:
        """The examples labelling ``prop`` of ``class_name``, searched in ``metric``."""
        check_metric(metric)
        ix = self.manager.get(class_name, prop)
        return None if ix is None else ix.as_metric(metric)

    def dim(self, class_name: str) -> int | None:
        return self.manager.dim(class_name)

    def upsert(self, example: Example) -> None:
        self.manager.upsert(example)

    def delete(self, example_id: str) -> None:
        self.manager.delete(example_id)

    def stats(self) -> dict[str, dict[str, int]]:
        return {f"{c}.{p}": s for (c, p), s in self.manager.stats().items()}

    def keys(self) -> list[Key]:
        return self.manager.keys()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return self.manager.wait_idle(timeout)

    def hold_builds(self) -> None:
        self.manager.scheduler.hold()

    def release_builds(self) -> None:
        self.manager.scheduler.release()

    def close(self, timeout: float = 30.0) -> None:
        self.manager.close(timeout)
