"""Append-only example store: rows are written once and never changed.

One store serves both metrics: rows are the RAW vectors (euclidean needs their length),
stored once, with each row's L2 norm beside them (``norms``), from which cosine ranks
without a normalised copy (see ``exact_search(base_norms=...)``); Annoy's angular metric
normalises on its own.

Why append-only: searches run in worker threads while upserts arrive on the event loop
thread. If a row never changes after it is written, a reader that captured ``(vecs, n)``
and a copy of the ``alive`` flags under a short lock can scan rows ``< n`` without any
lock at all. An upsert that changes an example appends a new row and kills the old one;
a delete kills the row. When dead rows outnumber live ones the store is compacted into
NEW arrays/lists (readers keep the old ones), preserving row order, and returns the
remap so row references held elsewhere (an Annoy snapshot) can be translated.

``set_hash`` is an order-independent digest (XOR of 128-bit blake2b digests of
``id + vector``) of the live set, kept incrementally: two stores with the same ids and
vectors have the same hash, which is how a saved Annoy file is recognised as reusable.

Not thread-safe on its own: :class:`app.index.live.LiveIndex` serialises writers.

>>> s = VectorStore(2)
>>> s.put("a", s.prepare([3.0, 4.0]), "x", {}), s.put("a", s.prepare([3.0, 4.0]), "x", {})
(True, False)
>>> s.live, s.n, s.vecs[0].tolist(), s.norms[0].item()
(1, 1, [3.0, 4.0], 5.0)
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["DimensionError", "VectorStore", "example_digest"]


class DimensionError(ValueError):
    """A vector whose dimension does not match its index."""

    def __init__(self, expected: int, actual: int, where: str = "") -> None:
        self.expected, self.actual, self.where = expected, actual, where
        at = f" for {where}" if where else ""
        super().__init__(f"vector dimension mismatch{at}: expected {expected}, got {actual}")


def example_digest(example_id: str, vector: np.ndarray) -> int:
    """128-bit digest of (id, float32 vector bytes); XOR-combined into a set hash."""
    h = hashlib.blake2b(example_id.encode("utf-8"), digest_size=16)
    h.update(b"\0")
    h.update(np.ascontiguousarray(vector, dtype=np.float32).tobytes())
    return int.from_bytes(h.digest(), "little")


class VectorStore:
    """Rows of (id, float32 vector, label, properties); see the module docstring."""

    def __init__(self, dim: int, *, capacity: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        cap = max(1, capacity)
        self.vecs = np.zeros((cap, self.dim), dtype=np.float32)
        self.norms = np.zeros(cap, dtype=np.float32)
        self.alive = np.zeros(cap, dtype=bool)
        self.n = 0
        self.ids: list[str] = []
        self.labels: list[str] = []
        self.props: list[Mapping[str, Any]] = []
        self.digests: list[int] = []
        self.row_of: dict[str, int] = {}
        self.set_hash = 0

    @property
    def live(self) -> int:
        return len(self.row_of)

    @property
    def dead(self) -> int:
        return self.n - len(self.row_of)

    def prepare(self, vector: Sequence[float] | np.ndarray, where: str = "") -> np.ndarray:
        """Validate one vector (dimension, finite) and return the row to store."""
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dim:
            raise DimensionError(self.dim, int(v.shape[0]), where)
        if not np.isfinite(v).all():
            raise ValueError(f"vector{' for ' + where if where else ''} has NaN or inf values")
        return v

    def put(self, example_id: str, row: np.ndarray, label: str,
            props: Mapping[str, Any]) -> bool:
        """Insert or replace; returns False (and does nothing) when nothing changed."""
        old = self.row_of.get(example_id)
        if old is not None and (self.labels[old] == label and self.props[old] == props
                                and np.array_equal(self.vecs[old], row)):
            return False  # redelivered training event: keep the index clean
        digest = example_digest(example_id, row)
        if self.n == self.vecs.shape[0]:
            self._grow()  # before the kill: a failed allocation leaves the old row alive
        if old is not None:
            self._kill(example_id, old)
        r = self.n
        self.vecs[r] = row
        self.norms[r] = np.linalg.norm(row)
        self.alive[r] = True
        self.ids.append(example_id)
        self.labels.append(label)
        self.props.append(props)
        self.digests.append(digest)
        self.set_hash ^= digest
        self.row_of[example_id] = r
        self.n = r + 1  # publish the row last
        return True

    def remove(self, example_id: str) -> bool:
        row = self.row_of.get(example_id)
        if row is None:
            return False
        self._kill(example_id, row)
        return True

    def _kill(self, example_id: str, row: int) -> None:
        self.alive[row] = False
        self.set_hash ^= self.digests[row]
        del self.row_of[example_id]

    def _grow(self) -> None:
        # New arrays rather than resize-in-place: readers keep a valid reference.
        cap = 2 * self.vecs.shape[0]
        vecs = np.zeros((cap, self.dim), dtype=np.float32)
        vecs[: self.n] = self.vecs[: self.n]
        norms = np.zeros(cap, dtype=np.float32)
        norms[: self.n] = self.norms[: self.n]
        alive = np.zeros(cap, dtype=bool)
        alive[: self.n] = self.alive[: self.n]
        self.vecs, self.norms, self.alive = vecs, norms, alive

    def compact(self) -> np.ndarray:
        """Drop dead rows into fresh containers; returns ``remap[old_row] -> new_row | -1``."""
        keep = np.flatnonzero(self.alive[: self.n])
        remap = np.full(self.n, -1, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        cap = max(64, 2 * keep.size)
        vecs = np.zeros((cap, self.dim), dtype=np.float32)
        vecs[: keep.size] = self.vecs[keep]
        norms = np.zeros(cap, dtype=np.float32)
        norms[: keep.size] = self.norms[keep]
        alive = np.zeros(cap, dtype=bool)
        alive[: keep.size] = True
        rows = keep.tolist()
        self.ids = [self.ids[r] for r in rows]
        self.labels = [self.labels[r] for r in rows]
        self.props = [self.props[r] for r in rows]
        self.digests = [self.digests[r] for r in rows]
        self.row_of = {i: r for r, i in enumerate(self.ids)}
        self.vecs, self.norms, self.alive, self.n = vecs, norms, alive, keep.size
        return remap
