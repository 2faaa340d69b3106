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
* The approximate index is of one *kind*: an Annoy forest (default), or an inverted file
  (``kind="ivf"``, :mod:`app.index.ivf`: FAISS, one GIL-free call per batch, several times
  Annoy's queries/s on 384-d embeddings). Everything else here (overlay, filters, exact
  re-rank, fallback, snapshots) is the same for both.
* ``trainingSetWhere``: ``search(..., where_fn)`` evaluates the compiled filter once per
  store generation over the examples' properties (cached), searches exactly when at most
  ``exact_threshold`` examples pass, and otherwise over-fetches from Annoy by the inverse
  pass rate and filters, with the same exact fallback.
* Both metrics from one store: rows are the raw vectors (with their norms). The Annoy
  forest is built for the index's ``metric``; ``search(..., metric=other)`` (or the view
  :meth:`LiveIndex.as_metric`) searches the same examples exactly in the other metric, so
  a worker keeps each example once whatever distance its classifiers use.
* Builds run on a :class:`~app.index.builder.BuildScheduler` thread shared by every
  index given the same scheduler (an index given none owns one); each writes a new
  versioned file (:mod:`app.index.files`), mmaps it and swaps it in under the lock.
* A query of the wrong dimension raises :class:`DimensionError` before anything is read
  or counted: the caller can isolate it and the index is unchanged.
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
>>> ix.as_metric("euclidean").search([[0.9, 0.1]], k=1).distances[0].round(4).tolist()
[0.1414]
>>> ix.close()
"""
from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from app.core.filters import Predicate
from app.core.knn import Metric, Neighbours, check_metric, exact_search, pair_distances
from app.index import files, forests
from app.index.builder import Builder, BuildScheduler, Capture
from app.index.store import DimensionError, VectorStore

log = logging.getLogger(__name__)

__all__ = ["DimensionError", "IndexSettings", "LiveIndex", "MetricView"]


@dataclass(frozen=True)
class IndexSettings:
    """Knobs of a :class:`LiveIndex`; defaults reach recall@k >= 0.95 on bench/knn_accuracy."""

    metric: Metric = "cosine"
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
    build_process: bool = True  # a forest built on disk is built by a niced child process (forest_proc.py)
    auto_build: bool = True
    compact_min_dead: int = 1024
    # "ivf": an inverted file (FAISS, app/index/ivf.py) instead of the Annoy forest; its cells
    # (None: ~sqrt(examples)) and cells scanned per query (None: calibrated at build, recall >= 0.98).
    kind: forests.Kind = "annoy"
    nlist: int | None = None
    nprobe: int | None = None


@dataclass(frozen=True)
class _Built:
    version: int
    forest: files.Forest
    item_rows: np.ndarray  # store row of Annoy item i (-1 once compacted away)
    base_end: int  # rows >= base_end were added after the snapshot: the overlay
    snap: files.Snapshot | None


@dataclass(frozen=True)
class _View:
    """What one search reads; captured under the lock, then used without it."""

    vecs: np.ndarray
    norms: np.ndarray
    n: int
    alive: np.ndarray
    ids: list[str]
    labels: list[str]
    props: list[Mapping[str, Any]]
    built: _Built | None
    version: int
    generation: int
    live: int


class _ApproxPrep(NamedTuple):
    """What the Annoy path derives from one index generation and filter (kept: a batch may be one event)."""

    generation: int
    built: _Built
    where_fn: Predicate | None
    usable: np.ndarray  # per Annoy item: its row is live and passes the filter
    n_usable: int
    overlay: np.ndarray  # rows written since the build, live and passing: searched exactly


class LiveIndex:
    """See the module docstring. Thread-safe: search from pools, upsert from the loop."""

    def __init__(self, dim: int, metric: Metric = "cosine", exact_threshold: int = 2000,
                 n_trees: int = 32, search_k: int | None = 10_000,
                 data_dir: Path | str | None = None, name: str = "index", *,
                 fetch_factor: int = 10, rebuild_after_changes: int = 1000,
                 rebuild_quiet_seconds: float = 2.0, build_jobs: int = 1, build_process: bool = True,
                 auto_build: bool = True, compact_min_dead: int = 1024,
                 kind: forests.Kind = "annoy", nlist: int | None = None, nprobe: int | None = None,
                 scheduler: BuildScheduler | None = None) -> None:
        check_metric(metric)
        if kind not in ("annoy", "ivf"):
            raise ValueError(f"unknown index kind {kind!r}: annoy or ivf")
        self.dim, self.metric, self.name = int(dim), metric, name
        self.kind, self.nlist, self.nprobe = kind, nlist, nprobe
        self.exact_threshold, self.n_trees, self.search_k = exact_threshold, n_trees, search_k
        self.fetch_factor, self.build_jobs, self.build_process = max(1, fetch_factor), build_jobs, build_process
        self.compact_min_dead = compact_min_dead
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._store = VectorStore(self.dim)
        self._lock = threading.Lock()
        self._built: _Built | None = None
        self._version = 0
        self._generation = 0
        self._mask_cache: tuple[Predicate, int, np.ndarray] | None = None
        self._approx_prep: _ApproxPrep | None = None
        # Queries served per path, for metrics; plain ints (may undercount under threads).
        self.counters = {"exact": 0, "annoy": 0, "ivf": 0, "fallback": 0}
        self._views: dict[str, MetricView] = {}
        # Alone (tests, benchmarks) an index owns its scheduler; in a worker the
        # IndexManager passes one shared by all its indexes.
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or BuildScheduler(f"index-build-{name}")
        self._builder = Builder(self, self._lock, self._scheduler, rebuild_after_changes,
                                rebuild_quiet_seconds, auto_build)
        if self.data_dir is not None:
            self._version = self._builder.open_dir(self.data_dir)

    @classmethod
    def from_settings(cls, dim: int, settings: IndexSettings,
                      data_dir: Path | str | None = None, name: str = "index", *,
                      scheduler: BuildScheduler | None = None) -> LiveIndex:
        return cls(dim, data_dir=data_dir, name=name, scheduler=scheduler, **asdict(settings))

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
        self._builder.on_change()

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

    # -- builds: the Buildable interface of app.index.builder ------------------------------
    def snapshot_meta(self) -> dict[str, Any]:
        if self.kind == "ivf":
            return {"dim": self.dim, "metric": self.metric, "kind": "ivf", "nlist": self.nlist}
        return {"dim": self.dim, "metric": self.metric, "kind": "annoy", "n_trees": self.n_trees}

    def live_set(self) -> tuple[int, int]:  # lock held
        return self._store.live, self._store.set_hash

    def capture(self) -> Capture:  # lock held
        st = self._store
        return Capture(np.flatnonzero(st.alive[: st.n]), st.vecs, st.ids, st.n, st.set_hash)

    def make_forest(self, capture: Capture) -> files.Forest:
        return self._make_forest(capture.rows, capture.vecs, capture.target)

    def _make_forest(self, rows: np.ndarray, vecs: np.ndarray,
                     target: Path | None = None) -> files.Forest:
        return forests.build(self.kind, self.dim, self.metric, rows, vecs, target,
                             size=self.nlist if self.kind == "ivf" else self.n_trees,
                             jobs=self.build_jobs, in_child=self.build_process)

    def locate(self, ids: list[str]) -> tuple[np.ndarray, int]:  # lock held
        st = self._store
        return np.fromiter((st.row_of[i] for i in ids), np.int64, len(ids)), st.n

    def install(self, version: int, forest: files.Forest, rows: np.ndarray, end: int,
                snap: files.Snapshot | None) -> None:  # lock held, no build in flight
        self._built = _Built(version, forest, rows.astype(np.int64), end, snap)
        self._version = version
        self._generation += 1
        self._maybe_compact()

    # -- reads (any thread) --------------------------------------------------------------
    def _view(self) -> _View:
        with self._lock:
            st = self._store
            return _View(st.vecs, st.norms, st.n, st.alive[: st.n].copy(), st.ids, st.labels,
                         st.props, self._built, self._version, self._generation, st.live)

    def _queries(self, queries: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        q = q[None, :] if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise DimensionError(self.dim, int(q.shape[-1]) if q.ndim else 0, self.name)
        if not np.isfinite(q).all():
            raise ValueError(f"{self.name}: query vectors must be finite")
        return q

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
               where_fn: Predicate | None = None, *, metric: Metric | None = None) -> Neighbours:
        """The ``k`` nearest live examples of each query (passing ``where_fn`` if given),
        in ``metric`` (default the index's; another one is always searched exactly)."""
        metric = self.metric if metric is None else metric
        check_metric(metric)
        q = self._queries(queries)  # raises before any state is read or counted
        v = self._view()
        rows: list[np.ndarray] = [np.zeros(0, np.int64)] * q.shape[0]
        dists: list[np.ndarray] = [np.zeros(0)] * q.shape[0]
        mask = v.alive if where_fn is None else self._filter_mask(v, where_fn)
        n_ok = int(mask.sum())
        if q.shape[0] and k >= 1 and n_ok:
            b = v.built
            if (b is None or metric != self.metric or v.live <= self.exact_threshold
                    or n_ok <= self.exact_threshold):
                rows, dists = self._exact(q, v, mask, k, metric)
                self.counters["exact"] += q.shape[0]
            else:
                rows, dists = self._approx(q, v, mask, k, b, where_fn)
        return Neighbours([[v.ids[r] for r in rr.tolist()] for rr in rows],
                          [[v.labels[r] for r in rr.tolist()] for rr in rows],
                          dists, v.version)

    def _exact(self, q: np.ndarray, v: _View, mask: np.ndarray, k: int,
               metric: Metric) -> tuple[list[np.ndarray], list[np.ndarray]]:
        sel = np.flatnonzero(mask)
        dense = sel.size == v.n  # no holes: search the array in place, no gather copy
        base = v.vecs[: v.n] if dense else v.vecs[sel]
        norms = v.norms[: v.n] if dense else v.norms[sel]
        idx, dist = exact_search(q, base, k, metric, base_norms=norms, out_dtype=np.float64)
        rows = idx if dense else sel[idx]
        return list(rows), list(dist)

    def _approx(self, q: np.ndarray, v: _View, mask: np.ndarray, k: int,
                b: _Built, where_fn: Predicate | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        item_rows = b.item_rows
        prep = self._approx_prep
        if prep is None or prep.generation != v.generation or prep.built is not b or prep.where_fn is not where_fn:
            # O(examples): once per index generation and filter, not per batch (a batch may be one event)
            usable = item_rows >= 0
            usable[usable] = mask[item_rows[usable]]  # not replaced, not deleted, passes filter
            prep = _ApproxPrep(v.generation, b, where_fn, usable, int(usable.sum()),
                               np.flatnonzero(mask[b.base_end:]) + b.base_end)
            self._approx_prep = prep  # read-only from here on
        usable, n_usable, overlay = prep.usable, prep.n_usable, prep.overlay
        n_items = item_rows.size
        if n_usable <= self.exact_threshold:  # snapshot mostly stale/filtered: not worth it
            self.counters["exact"] += q.shape[0]
            return self._exact(q, v, mask, k, self.metric)
        want = min(k, n_usable)
        # Over-fetch by the inverse share of usable items so ~fetch_factor*k survive.
        fetch = min(n_items, math.ceil(k * self.fetch_factor * n_items / max(n_usable, 1)))
        # A built forest is always of this index's kind: a snapshot of another kind is never adopted.
        found = forests.candidates(self.kind, b.forest, q, fetch, search_k=self.search_k, nprobe=self.nprobe)
        if overlay.size:
            o_idx, o_dist = exact_search(q, v.vecs[overlay], k, self.metric,
                                         base_norms=v.norms[overlay], out_dtype=np.float64)
            o_rows = overlay[o_idx]
        rows: list[np.ndarray] = [np.zeros(0, np.int64)] * q.shape[0]  # each set below
        dists: list[np.ndarray] = [np.zeros(0)] * q.shape[0]
        fallback: list[int] = []
        served: list[tuple[int, np.ndarray]] = []  # (query, candidate store rows)
        for i, items in enumerate(found):
            items = items[usable[items]] if items.size else items
            if items.size < want:
                fallback.append(i)
            else:
                served.append((i, item_rows[items]))
        if served:
            # One exact distance pass for the batch: candidates padded to one width with each
            # row's first (a distance is computed per (query, candidate) pair, so it is the same
            # value as a query's own pass: a result never depends on its batch).
            width = max(c.size for _, c in served)
            padded = np.empty((len(served), width), np.int64)
            for j, (_, c) in enumerate(served):
                padded[j, : c.size], padded[j, c.size:] = c, c[0]
            d_all = pair_distances(q[[i for i, _ in served]], v.vecs[padded], self.metric)
            for j, (i, cand) in enumerate(served):
                d = d_all[j, : cand.size]
                if overlay.size:
                    cand, d = np.concatenate([cand, o_rows[i]]), np.concatenate([d, o_dist[i]])
                order = np.lexsort((cand, d))[:k]  # by distance, then row (as the exact path)
                rows[i], dists[i] = cand[order], d[order]
        self.counters[self.kind] += q.shape[0] - len(fallback)
        self.counters["fallback"] += len(fallback)
        if fallback:
            f_rows, f_dists = self._exact(q[fallback], v, mask, k, self.metric)
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

    def as_metric(self, metric: str) -> LiveIndex | MetricView:
        """This index searched in ``metric``: itself, or an exact view over the same store."""
        metric = check_metric(metric)
        if metric == self.metric:
            return self
        view = self._views.get(metric)
        if view is None:
            view = self._views[metric] = MetricView(self, metric)
        return view

    def close(self, timeout: float = 30.0) -> None:
        """Stop building this index (a running Annoy build is let finish); an index that
        owns its scheduler also stops and joins the scheduler's thread."""
        self._builder.close(timeout)
        if self._own_scheduler:
            self._scheduler.close(timeout)


class MetricView:
    """A :class:`LiveIndex` searched in another metric (always exactly): a
    ``NeighbourSource`` for the classifiers that use that distance."""

    def __init__(self, index: LiveIndex, metric: Metric) -> None:
        self.index, self.metric = index, metric

    def search(self, queries: np.ndarray | Sequence[Sequence[float]], k: int,
               where_fn: Predicate | None = None) -> Neighbours:
        return self.index.search(queries, k, where_fn, metric=self.metric)

    @property
    def version(self) -> int:
        return self.index.version

    @property
    def size(self) -> int:
        return self.index.size
