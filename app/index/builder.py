"""Background builds of a :class:`~app.index.live.LiveIndex`: debounce, build, adopt, swap.

Debounce (why: a build costs seconds, a burst of training events should cost one build):
a build is due when the index is above its exact threshold and either
``rebuild_after_changes`` changes are pending, or some are and none arrived for
``rebuild_quiet_seconds``. After a restart the newest saved snapshot is a *candidate*:
the moment the re-upserted examples hash to exactly its set it is adopted (no build);
meanwhile the change-count rule waits for the whole reload (candidate size + N changes),
so a reload does not trigger throw-away builds of half the set.

Builds never hold the index lock while Annoy works (it also releases the GIL): the
rows to build are captured under the lock (rows never change once written), the forest
is built and written outside it, and the swap is one short locked assignment. A failed
build is logged, kept in ``last_error`` and retried after a back-off.

>>> Builder.__name__
'Builder'
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.index import files

if TYPE_CHECKING:
    from app.index.live import LiveIndex
    from app.index.store import VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Candidate:
    snap: files.Snapshot
    ids: list[str]
    set_hash: int


class Builder:
    """Owns the build state of one index; every field is guarded by the index lock."""

    def __init__(self, index: LiveIndex, lock: threading.Lock, after_changes: int,
                 quiet_seconds: float, auto: bool) -> None:
        self.index, self.lock = index, lock
        self.cond = threading.Condition(lock)
        self.build_lock = threading.Lock()  # one build (or adoption) at a time
        self.after_changes = max(1, after_changes)
        self.quiet = max(0.0, quiet_seconds)
        self.auto = auto
        self.pending = 0  # changes not in the current snapshot
        self.last_change = 0.0
        self.building = False
        self.candidate: _Candidate | None = None
        self.next_version = 1
        self.last_error: BaseException | None = None
        self.retry_at = 0.0
        self.closed = False
        self.thread: threading.Thread | None = None
        self.oneshots: list[threading.Thread] = []

    # -- startup ---------------------------------------------------------------------------
    def open_dir(self, data_dir: Path) -> int:
        """Scan ``data_dir``: continue the version sequence, keep the newest snapshot as a
        reuse candidate, drop everything else. Returns the version to report."""
        ix = self.index
        top = files.max_version(data_dir, ix.name)
        self.next_version = top + 1  # never reuse a number, even of an incomplete file
        snap = files.latest(data_dir, ix.name)
        files.remove_stale(data_dir, ix.name, snap.version if snap else None)
        if snap is None:
            return top
        try:
            ids, set_hash, info = files.read_sidecar(snap.sidecar)
            if (info.get("dim") == ix.dim and info.get("metric") == ix.metric
                    and len(set(ids)) == len(ids)):
                self.candidate = _Candidate(snap, ids, set_hash)
            else:
                log.warning("%s: snapshot v%d does not fit this index; ignored",
                            ix.name, snap.version)
        except Exception:  # a cache: an unreadable one is rebuilt, not fatal
            log.warning("%s: unreadable sidecar %s; ignored", ix.name, snap.sidecar,
                        exc_info=True)
        return snap.version

    # -- bookkeeping (lock held) -------------------------------------------------------------
    def _candidate_ready(self, st: VectorStore) -> bool:
        c = self.candidate
        return c is not None and st.set_hash == c.set_hash and st.live == len(c.ids)

    def on_change(self, st: VectorStore) -> None:
        self.pending += 1
        self.last_change = time.monotonic()
        if not self.auto or self.closed:
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True,
                                           name=f"index-build-{self.index.name}")
            self.thread.start()
        # Wake the worker when something may be due (it also polls, so this is latency
        # only): the first change starts the quiet timer; the count rule fires at once.
        due = (not self.building and self.pending >= self._limit()
               and st.live > self.index.exact_threshold)
        if self.pending == 1 or due or self._candidate_ready(st):
            self.cond.notify()

    def _limit(self) -> int:
        return self.after_changes + (len(self.candidate.ids) if self.candidate else 0)

    def _plan(self, now: float) -> tuple[str | None, float]:
        """``(action, seconds to wait before asking again)``; action: adopt | build | None."""
        st, idle = self.index._store, max(self.quiet, 0.05)
        if self.building:
            return None, idle
        if self._candidate_ready(st):
            return "adopt", 0.0
        if now < self.retry_at:
            return None, self.retry_at - now
        if self.pending == 0 or st.live <= self.index.exact_threshold:
            return None, idle
        if self.pending >= self._limit():
            return "build", 0.0
        left = self.last_change + self.quiet - now
        return ("build", 0.0) if left <= 0 else (None, left)

    # -- the work ------------------------------------------------------------------------------
    def build_now(self) -> int | None:
        ix = self.index
        with self.build_lock:
            with self.lock:
                if ix._store.live == 0:
                    return None
                rows, vecs, ids, n, set_hash = ix._capture()
                pending_at, version = self.pending, self.next_version
                self.next_version += 1
                self.building = True  # also defers compaction: captured rows stay valid
            try:
                forest = ix._make_forest(rows, vecs)
                snap = None
                if ix.data_dir is not None:
                    meta = {"dim": ix.dim, "metric": ix.metric, "n_trees": ix.n_trees}
                    snap = files.write_snapshot(ix.data_dir, ix.name, version, forest,
                                                [ids[r] for r in rows.tolist()], set_hash, meta)
                    forest = files.load_annoy(snap.ann, ix.dim, ix.metric)
            except BaseException:
                with self.lock:
                    self.building = False
                raise
            with self.lock:
                ix._install(version, forest, rows, n, snap)
                self.pending -= pending_at
                self.building = False
                self.candidate = None  # superseded; its files go below
                ix._maybe_compact()
            if ix.data_dir is not None:
                files.remove_stale(ix.data_dir, ix.name, version)
            log.info("%s: built v%d over %d examples", ix.name, version, rows.size)
            return version

    def adopt(self) -> bool:
        """Swap in the saved candidate snapshot if the live set is exactly its set."""
        ix = self.index
        with self.build_lock:
            with self.lock:
                c = self.candidate
                if c is None or not self._candidate_ready(ix._store):
                    return False
                self.building = True
            try:
                forest = files.load_annoy(c.snap.ann, ix.dim, ix.metric)
                if forest.get_n_items() != len(c.ids):
                    raise ValueError(f"{c.snap.ann}: {forest.get_n_items()} items, "
                                     f"sidecar lists {len(c.ids)}")
            except BaseException:
                with self.lock:
                    self.building, self.candidate = False, None
                raise
            with self.lock:
                self.building = False
                st = ix._store
                if not self._candidate_ready(st):
                    return False  # changed while we loaded; try again later
                rows = np.fromiter((st.row_of[i] for i in c.ids), np.int64, len(c.ids))
                ix._install(c.snap.version, forest, rows, st.n, c.snap)
                self.pending, self.candidate = 0, None
                ix._maybe_compact()
            log.info("%s: reused saved snapshot v%d", ix.name, c.snap.version)
            return True

    def _do(self, action: str) -> None:
        try:
            self.adopt() if action == "adopt" else self.build_now()
        except Exception as exc:  # keep the worker alive; retry after a back-off
            log.exception("%s: background %s failed", self.index.name, action)
            with self.lock:
                self.last_error = exc
                self.retry_at = time.monotonic() + max(self.quiet, 1.0)

    def _run(self) -> None:
        while True:
            with self.cond:
                while True:
                    if self.closed:
                        return
                    action, wait = self._plan(time.monotonic())
                    if action is not None:
                        break
                    self.cond.wait(wait)
            self._do(action)

    # -- control ---------------------------------------------------------------------------
    def maybe_rebuild(self, wait: bool) -> bool:
        with self.lock:
            action, _ = self._plan(time.monotonic())
        if action is None:
            return False
        if wait:
            self.adopt() if action == "adopt" else self.build_now()
        elif self.auto and self.thread is not None:
            with self.cond:
                self.cond.notify()
        else:
            t = threading.Thread(target=self._do, args=(action,), daemon=True)
            self.oneshots = [o for o in self.oneshots if o.is_alive()] + [t]
            t.start()
        return True

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            with self.lock:
                action, _ = self._plan(now)
                due_later = (self.pending > 0 and self.index._store.live
                             > self.index.exact_threshold and now >= self.retry_at)
                busy = (self.building or any(t.is_alive() for t in self.oneshots)
                        or (self.auto and not self.closed and (action is not None or due_later)))
            if not busy:
                return True
            if now >= deadline:
                return False
            time.sleep(0.005)

    def close(self, timeout: float) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        for t in [self.thread, *self.oneshots]:
            if t is not None and t is not threading.current_thread():
                t.join(timeout)
