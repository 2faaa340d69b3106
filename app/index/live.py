"""The live kNN index of ONE (class, classify-property): exact overlay + Annoy snapshot.

* Every example lives in an append-only :class:`~app.index.store.VectorStore`; upserts and
  deletes take effect for the very next query.
* Up to ``exact_threshold`` live examples, search is exact (numpy). Above it, a built Annoy
  snapshot gives candidates: those whose row has since been replaced or deleted are
  dropped, rows added after the snapshot (the *overlay*) are searched exactly, and the
  union is re-ranked with distances recomputed exactly from the stored vectors, so the
  meta is exact on the Annoy path too. Annoy is asked for ``fetch_factor * k`` candidates
  (more when a filter or stale items thin them out); a query left with fewer than ``k``
  usable Annoy candidates falls back to exact search, and so does the whole batch when
  at most ``exact_threshold`` snapshot items are still usable.
* ``trainingSetWhere``: ``search(..., where_fn)`` evaluates the compiled filter once per
  store generation over the examples' properties (cached), searches exactly when at most
  ``exact_threshold`` examples pass, and otherwise over-fetches from Annoy by the inverse
  pass rate and filters, with the same exact fallback.
* Builds run in a background thread (see :mod:`app.index.builder`); each writes a new
  versioned file (:mod:`app.index.files`), mmaps it and swaps it in under the lock.
* Restart: the index file is a cache of the Faust table. On open, the newest snapshot's
  sidecar is read; when the re-upserted examples reach exactly that set (same ids and
  vectors: an incremental set hash), the file is adopted with no rebuild. If the set
  differs, a normal build runs once the reload goes quiet.

>>> ix = LiveIndex(2, auto_build=False)
>>> ix.upsert("a", [1.0, 0.0], "x", {}); ix.upsert("b", [0.0, 1.0], "y", {})
True
True
>>> ix.search([[0.9, 0.1]], k=1).ids
[['a']]
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from app.core.filters import Predicate
from app.core.knn import Neighbours, check_metric, exact_search, normalize, pair_distances
from app.index import files
from app.index.builder import Builder
from app.index.store import DimensionError, VectorStore

log = logging.getLogger(__name__)

__all__ = ["DimensionError", "IndexSettings", "LiveIndex"]


@dataclass(frozen=True)
class IndexSettings:
    """Knobs of a :class:`LiveIndex`; defaults reach recall@k >= 0.95 on bench/knn_accuracy."""

    metric: str = "cosine"
    exact_threshold: int = 2000
    n_trees: int = 32
    # Annoy's per-query budget of candidate items examined. Tuned on bench/knn_accuracy
    # (96-d, hard isotropic clusters): n_trees * fetch (Annoy's default, None) gave recall
    # 0.90 at 5k examples; 10_000 gives >= 0.99 there and ~0.97-0.99 at 20k.
    search_k: int | None = 10_000
    fetch_factor: int = 10  # Annoy candidates fetched per neighbour wanted, re-ranked exactly
    rebuild_after_changes: int = 1000
    rebuild_quiet_seconds: float = 2.0
    build_jobs: int = 1  # Annoy build threads; 1 leaves the other cores to the stream
    auto_build: bool = True
    compact_min_dead: int = 1024


@dataclass(frozen=True)
class _Built:
    version: int
    forest: AnnoyIndex
    item_rows: np.ndarray  # store row of Annoy item i (-1 once compacted away)
    base_end: int  # rows >= base_end were added after the snapshot: the overlay
    snap: files.Snapshot | None


@dataclass(frozen=True)
class _View:
    """What one search reads; captured under the lock, then used without it."""

    vecs: np.ndarray
    n: int
    alive: np.ndarray
    ids: list[str]
    labels: list[str]
    props: list[Mapping[str, Any]]
    built: _Built | None
    version: int
    generation: int
    live: int


class LiveIndex:
    """See the module docstring. Thread-safe: search from pools, upsert from the loop."""

    def __init__(self, dim: int, metric: str = "cosine", exact_threshold: int = 2000,
                 n_trees: int = 32, search_k: int | None = 10_000,
                 data_dir: Path | str | None = None, name: str = "index", *,
                 fetch_factor: int = 10, rebuild_after_changes: int = 1000,
                 rebuild_quiet_seconds: float = 2.0, build_jobs: int = 1,
                 auto_build: bool = True, compact_min_dead: int = 1024) -> None:
        check_metric(metric)
        self.dim, self.metric, self.name = int(dim), metric, name
        self.exact_threshold, self.n_trees, self.search_k = exact_threshold, n_trees, search_k
        self.fetch_factor, self.build_jobs = max(1, fetch_factor), build_jobs
        self.compact_min_dead = compact_min_dead
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._store = VectorStore(self.dim, unit_rows=metric == "cosine")
        self._lock = threading.Lock()
        self._built: _Built | None = None
        self._version = 0
        self._generation = 0
        self._mask_cache: tuple[Predicate, int, np.ndarray] | None = None
        # Queries served per path, for metrics; plain ints (may undercount under threads).
        self.counters = {"exact": 0, "annoy": 0, "fallback": 0}
        self._builder = Builder(self, self._lock, rebuild_after_changes,
                                rebuild_quiet_seconds, auto_build)
        if self.data_dir is not None:
            self._version = self._builder.open_dir(self.data_dir)

    @classmethod
    def from_settings(cls, dim: int, settings: IndexSettings,
                      data_dir: Path | str | None = None, name: str = "index") -> LiveIndex:
        return cls(dim, data_dir=data_dir, name=name, **asdict(settings))

    # -- state -------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Version of the newest Annoy snapshot (0: never built); persisted in file names."""
        return self._version

    @property
    def generation(self) -> int:
        """Counts every change of the example set in this process."""
        return self._generation

    @property
    def size(self) -> int:
        return self._store.live

    @property
    def overlay_size(self) -> int:
        """Live examples searched exactly because no snapshot covers them yet."""
        with self._lock:
            b, st = self._built, self._store
            start = b.base_end if b is not None else 0
            return int(st.alive[start: st.n].sum())

    @property
    def pending_changes(self) -> int:
        return self._builder.pending

    @property
    def last_error(self) -> BaseException | None:
        return self._builder.last_error

    # -- writes (event loop thread) --------------------------------------------------------
    def upsert(self, example_id: str, vector: Sequence[float] | np.ndarray, label: str,
               properties: Mapping[str, Any] | None = None) -> bool:
        """Insert or replace an example; False when it was already there unchanged."""
        row = self._store.prepare(vector, where=f"{self.name}/{example_id}")
        props = dict(properties or {})  # our own copy: callers may mutate theirs
        with self._lock:
            changed = self._store.put(str(example_id), row, str(label), props)
            if changed:
                self._changed()
        return changed

    def delete(self, example_id: str) -> bool:
        with self._lock:
            removed = self._store.remove(str(example_id))
            if removed:
                self._changed()
        return removed

    def __contains__(self, example_id: object) -> bool:
        return example_id in self._store.row_of

    def _changed(self) -> None:  # lock held
        self._generation += 1
        if not self._builder.building:
            self._maybe_compact()
        self._builder.on_change(self._store)

    def _maybe_compact(self) -> None:  # lock held, no build in flight
        st = self._store
        if st.dead < max(self.compact_min_dead, st.live):
            return
        remap = st.compact()
        b = self._built
        if b is not None:
            rows = np.where(b.item_rows >= 0, remap[np.maximum(b.item_rows, 0)], -1)
            base_end = int((remap[: b.base_end] >= 0).sum())  # compaction keeps row order
            self._built = replace(b, item_rows=rows, base_end=base_end)
        self._generation += 1

    # -- builds (called by the builder thread) --------------------------------------------
    def _capture(self) -> tuple[np.ndarray, np.ndarray, list[str], int, int]:
        """Lock held: rows to build from, plus what ``_install`` needs to swap them in."""
        st = self._store
        rows = np.flatnonzero(st.alive[: st.n])
        return rows, st.vecs, st.ids, st.n, st.set_hash

    def _make_forest(self, rows: np.ndarray, vecs: np.ndarray) -> AnnoyIndex:
        forest = AnnoyIndex(self.dim, files.annoy_metric(self.metric))
        for i, r in enumerate(rows.tolist()):
            forest.add_item(i, vecs[r])  # rows < n never change: no lock needed
        forest.build(self.n_trees, n_jobs=self.build_jobs)  # releases the GIL
        return forest

    def _install(self, version: int, forest: AnnoyIndex, rows: np.ndarray, base_end: int,
                 snap: files.Snapshot | None) -> None:  # lock held
        self._built = _Built(version, forest, rows.astype(np.int64), base_end, snap)
        self._version = version
        self._generation += 1

    # -- reads (any thread) --------------------------------------------------------------
    def _view(self) -> _View:
        with self._lock:
            st = self._store
            return _View(st.vecs, st.n, st.alive[: st.n].copy(), st.ids, st.labels,
                         st.props, self._built, self._version, self._generation, st.live)

    def _queries(self, queries: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        q = q[None, :] if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise DimensionError(self.dim, int(q.shape[-1]) if q.ndim else 0, self.name)
        if not np.isfinite(q).all():
            raise ValueError(f"{self.name}: query vectors must be finite")
        return normalize(q) if self.metric == "cosine" else q

    def _filter_mask(self, v: _View, where_fn: Predicate) -> np.ndarray:
        cache = self._mask_cache
        if cache is not None and cache[0] is where_fn and cache[1] == v.generation:
            return cache[2]
        mask = v.alive.copy()
        rows = np.flatnonzero(mask)
        props = v.props
        mask[rows] = np.fromiter((bool(where_fn(props[r])) for r in rows.tolist()),
                                 dtype=bool, count=rows.size)
        self._mask_cache = (where_fn, v.generation, mask)  # read-only from here on
        return mask

    def search(self, queries: np.ndarray | Sequence[Sequence[float]], k: int,
               where_fn: Predicate | None = None) -> Neighbours:
        """The ``k`` nearest live examples of each query (passing ``where_fn`` if given)."""
        q = self._queries(queries)
        v = self._view()
        rows: list[np.ndarray] = [np.zeros(0, np.int64)] * q.shape[0]
        dists: list[np.ndarray] = [np.zeros(0)] * q.shape[0]
        mask = v.alive if where_fn is None else self._filter_mask(v, where_fn)
        n_ok = int(mask.sum())
        if q.shape[0] and k >= 1 and n_ok:
            b = v.built
            if b is None or v.live <= self.exact_threshold or n_ok <= self.exact_threshold:
                rows, dists = self._exact(q, v, mask, k)
                self.counters["exact"] += q.shape[0]
            else:
                rows, dists = self._approx(q, v, mask, k, b)
        return Neighbours([[v.ids[r] for r in rr.tolist()] for rr in rows],
                          [[v.labels[r] for r in rr.tolist()] for rr in rows],
                          dists, v.version)

    def _exact(self, q: np.ndarray, v: _View, mask: np.ndarray,
               k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        sel = np.flatnonzero(mask)
        dense = sel.size == v.n  # no holes: search the array in place, no gather copy
        base = v.vecs[: v.n] if dense else v.vecs[sel]
        idx, dist = exact_search(q, base, k, self.metric, normalized=True,
                                 out_dtype=np.float64)
        rows = idx if dense else sel[idx]
        return list(rows), list(dist)

    def _approx(self, q: np.ndarray, v: _View, mask: np.ndarray, k: int,
                b: _Built) -> tuple[list[np.ndarray], list[np.ndarray]]:
        item_rows = b.item_rows
        usable = item_rows >= 0
        usable[usable] = mask[item_rows[usable]]  # not replaced, not deleted, passes filter
        n_items, n_usable = item_rows.size, int(usable.sum())
        if n_usable <= self.exact_threshold:  # snapshot mostly stale/filtered: not worth it
            self.counters["exact"] += q.shape[0]
            return self._exact(q, v, mask, k)
        want = min(k, n_usable)
        # Over-fetch by the inverse share of usable items so ~fetch_factor*k survive.
        fetch = min(n_items, math.ceil(k * self.fetch_factor * n_items / max(n_usable, 1)))
        search_k = -1 if self.search_k is None else self.search_k
        overlay = np.flatnonzero(mask[b.base_end:]) + b.base_end
        if overlay.size:
            o_idx, o_dist = exact_search(q, v.vecs[overlay], k, self.metric,
                                         normalized=True, out_dtype=np.float64)
            o_rows = overlay[o_idx]
        rows: list[np.ndarray] = []
        dists: list[np.ndarray] = []
        fallback: list[int] = []
        for i, qi in enumerate(q.tolist()):
            items = np.asarray(b.forest.get_nns_by_vector(qi, fetch, search_k), np.int64)
            items = items[usable[items]] if items.size else items
            if items.size < want:
                fallback.append(i)
                rows.append(np.zeros(0, np.int64))
                dists.append(np.zeros(0))
                continue
            cand = item_rows[items]
            d = pair_distances(q[i: i + 1], v.vecs[cand][None], self.metric, normalized=True)[0]
            if overlay.size:
                cand, d = np.concatenate([cand, o_rows[i]]), np.concatenate([d, o_dist[i]])
            order = np.lexsort((cand, d))[:k]  # by distance, then row (as the exact path)
            rows.append(cand[order])
            dists.append(d[order])
        self.counters["annoy"] += q.shape[0] - len(fallback)
        self.counters["fallback"] += len(fallback)
        if fallback:
            f_rows, f_dists = self._exact(q[fallback], v, mask, k)
            for j, i in enumerate(fallback):
                rows[i], dists[i] = f_rows[j], f_dists[j]
        return rows, dists

    # -- lifecycle -------------------------------------------------------------------------
    def build_now(self) -> int | None:
        """Build and swap in a snapshot in the calling thread; returns its version."""
        return self._builder.build_now()

    def maybe_rebuild(self, wait: bool = False) -> bool:
        """Run a due build/adoption (background unless ``wait``); False if none was due."""
        return self._builder.maybe_rebuild(wait)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no build is due or running (tests, benchmarks, shutdown)."""
        return self._builder.wait_idle(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the builder thread (a running Annoy build is let finish)."""
        self._builder.close(timeout)
