"""All live kNN indexes of a worker, keyed by ``(class_name, classify_property)``.

A training example labels one or more properties of its class (``labels = {property:
label}``), so it lives in one index per labelled property. Re-upserting it with fewer
labels (or another class) removes it from the indexes it no longer belongs to; ``delete``
finds every index holding it. Example ids are unique across classes (Weaviate UUIDs).

Dimension policy: all indexes of a class share the class's vector space. The dimension
is fixed by ``dims[class]`` if given, else by the first vector seen for the class; a
mismatching vector raises :class:`DimensionError` before any index is touched (an upsert
that fails changes nothing, not even the class's dimension).

Builds: every index of a manager shares ONE :class:`~app.index.builder.BuildScheduler`
(one thread, started at the first change, joined by :meth:`IndexManager.close`).

>>> m = IndexManager()
>>> m.upsert(Example("e1", "Article", [1.0, 0.0], {}, {"topic": "sport"}))
[('Article', 'topic')]
>>> m.get("Article", "topic").size, m.get("Article", "lang")
(1, None)
>>> m.close()
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.index.builder import BuildScheduler
from app.index.live import IndexSettings, LiveIndex
from app.index.store import DimensionError

__all__ = ["DimensionError", "Example", "IndexManager", "Key"]

Key = tuple[str, str]  # (class_name, classify_property)


@dataclass(frozen=True)
class Example:
    """A labelled training example."""

    id: str
    class_name: str
    vector: Sequence[float] | np.ndarray
    properties: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Example:
        """From a dict with ``id``, ``class`` (or ``class_name``), ``vector``,
        ``properties`` and ``labels``."""
        return cls(str(d["id"]), str(d.get("class_name", d.get("class"))), d["vector"],
                   d.get("properties") or {}, d.get("labels") or {})


class IndexManager:
    """Creates indexes on demand and routes upserts/deletes to them."""

    def __init__(self, data_dir: Path | str | None = None,
                 settings: IndexSettings | None = None, *,
                 dims: Mapping[str, int] | None = None,
                 class_settings: Mapping[str, IndexSettings] | None = None,
                 scheduler: BuildScheduler | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.settings = settings or IndexSettings()
        self.class_settings = dict(class_settings or {})
        self._dims: dict[str, int] = dict(dims or {})
        self._indexes: dict[Key, LiveIndex] = {}
        # example id -> indexes holding it; a tuple, not a set: ~100 B less per example
        self._held: dict[str, tuple[Key, ...]] = {}
        self._lock = threading.Lock()
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or BuildScheduler("index-build")

    def get(self, class_name: str, prop: str) -> LiveIndex | None:
        return self._indexes.get((class_name, prop))

    def keys(self) -> list[Key]:
        return list(self._indexes)

    def dim(self, class_name: str) -> int | None:
        return self._dims.get(class_name)

    def holding(self, example_id: str) -> set[Key]:
        return set(self._held.get(example_id, ()))

    def _index(self, key: Key, dim: int) -> LiveIndex:
        ix = self._indexes.get(key)
        if ix is None:
            settings = self.class_settings.get(key[0], self.settings)
            # One directory, one file family per index: "<class>.<property>.v<N>.ann".
            ix = LiveIndex.from_settings(dim, settings, self.data_dir, f"{key[0]}.{key[1]}",
                                         scheduler=self.scheduler)
            self._indexes[key] = ix
        return ix

    def upsert(self, example: Example | Mapping[str, Any]) -> list[Key]:
        """Add or replace an example in every index it labels; returns the keys changed.

        Raises :class:`DimensionError` or ``ValueError`` (bad vector/labels) without
        changing anything.
        """
        ex = example if isinstance(example, Example) else Example.from_mapping(example)
        if not ex.id or not ex.class_name or ex.class_name == "None":
            raise ValueError("an example needs an id and a class")
        for prop, label in ex.labels.items():
            if not isinstance(prop, str) or not prop or not isinstance(label, str) or not label:
                raise ValueError(f"example {ex.id}: labels must map property names to "
                                 f"non-empty strings, got {prop!r}: {label!r}")
        vec = np.asarray(ex.vector, dtype=np.float32).reshape(-1)
        with self._lock:
            expected = self._dims.get(ex.class_name)
            if expected is not None and vec.shape[0] != expected:
                raise DimensionError(expected, int(vec.shape[0]), f"{ex.class_name}/{ex.id}")
            if not np.isfinite(vec).all():
                raise ValueError(f"example {ex.id}: vector has NaN or inf values")
            if vec.shape[0] == 0:
                raise ValueError(f"example {ex.id}: empty vector")
            new = {(ex.class_name, p) for p in ex.labels}
            # Everything that can fail comes first (opening an index reads its directory),
            # so a failure leaves every index and the class's dimension as they were.
            targets = [(key, self._index(key, vec.shape[0])) for key in sorted(new)]
            self._dims.setdefault(ex.class_name, int(vec.shape[0]))
            changed = [k for k in sorted(set(self._held.get(ex.id, ())) - new)
                       if self._indexes[k].delete(ex.id)]
            for key, ix in targets:
                if ix.upsert(ex.id, vec, ex.labels[key[1]], ex.properties):
                    changed.append(key)
            if new:
                self._held[ex.id] = tuple(sorted(new))
            else:
                self._held.pop(ex.id, None)
        return changed

    def delete(self, example_id: str) -> list[Key]:
        """Remove an example from every index holding it; returns those keys."""
        with self._lock:
            keys = sorted(self._held.pop(example_id, ()))
            return [k for k in keys if self._indexes[k].delete(example_id)]

    def stats(self) -> dict[Key, dict[str, int]]:
        return {k: {"size": ix.size, "overlay": ix.overlay_size, "version": ix.version}
                for k, ix in list(self._indexes.items())}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return all(ix.wait_idle(timeout) for ix in list(self._indexes.values()))

    def close(self, timeout: float = 30.0) -> None:
        """Stop the builder thread if it is this manager's (a build in a child process is cancelled:
        a 1M-vector build takes minutes), then every index's building."""
        if self._own_scheduler:
            self.scheduler.close(timeout)
        for ix in list(self._indexes.values()):
            ix.close(timeout)
