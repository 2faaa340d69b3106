"""Background builds of indexes: debounce, build, adopt, swap; one thread for all of them.

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

Threads: every :class:`Builder` (the debounce state of one index) registers with a
:class:`BuildScheduler`; one scheduler per worker runs the due builds of all its indexes
on ONE thread, one build at a time (why: a worker holds many indexes; a thread per index
forever costs memory and lets N builds fight the stream for 2 cores). The thread starts
at the first change and stops on :meth:`BuildScheduler.close`. While :meth:`~BuildScheduler.hold`
is in force no build starts (a worker holds its builds while its replica loads the training
set: each build of a still-growing set is thrown away by the next, and every one of them
takes a core from the load); :meth:`~BuildScheduler.release` lets the due ones run.

The builder sees its index only through :class:`Buildable` (no import of the index
module): what to build (:meth:`~Buildable.capture`), how (:meth:`~Buildable.make_forest`)
and where it goes (:meth:`~Buildable.install`).

>>> s = BuildScheduler("doc-build"); s.thread is None
True
>>> s.hold(); s.held, s.release(), s.held
(True, None, False)
>>> s.close()
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from app.index import files, forest_proc

__all__ = ["Buildable", "BuildScheduler", "Builder", "Capture"]

log = logging.getLogger(__name__)

# A snapshot on disk fits an index only when these meta fields agree (a field a sidecar lacks
# has the default given: sidecars written before the field existed are Annoy forests).
_FIT_KEYS = {"dim": None, "metric": None, "kind": "annoy"}
# How long the scheduler sleeps when nothing is pending anywhere (a change wakes it).
_IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class Capture:
    """The rows one build covers; rows ``< end`` never change, so no lock is needed later."""

    rows: np.ndarray  # store rows, in Annoy item order
    vecs: np.ndarray  # the store's row array at capture time
    ids: list[str]  # the store's id list (append-only until compaction, deferred meanwhile)
    end: int  # rows >= end arrived after the capture: the exact overlay
    set_hash: int
    target: Path | None = None  # build the forest on disk here (files.ann_tmp), else in memory


class Buildable(Protocol):
    """What a :class:`Builder` needs from its index. "Lock held" methods are called with
    the lock the index gave the builder held; the others without it."""

    @property
    def name(self) -> str: ...

    @property
    def data_dir(self) -> Path | None: ...

    @property
    def exact_threshold(self) -> int: ...

    def snapshot_meta(self) -> dict[str, Any]:
        """``dim``, ``metric`` and build knobs, saved beside each snapshot."""
        ...

    def live_set(self) -> tuple[int, int]:
        """Lock held: ``(live examples, set hash)``."""
        ...

    def capture(self) -> Capture:
        """Lock held: the live rows to build from."""
        ...

    def make_forest(self, capture: Capture) -> files.Forest:
        """No lock: a built forest (Annoy's or an inverted file) over ``capture.rows`` (item i = rows[i]), built on
        disk at ``capture.target`` when it is set."""
        ...

    def locate(self, ids: list[str]) -> tuple[np.ndarray, int]:
        """Lock held: ``(store row of each id, end)`` for a saved snapshot's item ids."""
        ...

    def install(self, version: int, forest: files.Forest, rows: np.ndarray, end: int,
                snap: files.Snapshot | None) -> None:
        """Lock held, no build in flight: swap the forest in (and compact if worth it)."""
        ...


@dataclass(frozen=True)
class _Candidate:
    snap: files.Snapshot
    ids: list[str]
    set_hash: int


class BuildScheduler:
    """One thread running the due builds of every registered :class:`Builder`.

    Lock order: a builder calls :meth:`wake` with its index lock held, so the scheduler
    never holds its own lock while it asks a builder anything.
    """

    def __init__(self, name: str = "index-build") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._builders: list[Builder] = []
        self._woken = False
        self._closed = False
        self.held = False
        self.thread: threading.Thread | None = None

    def hold(self) -> None:
        """No build starts until :meth:`release` (one already running finishes)."""
        with self._cond:
            self.held = True

    def release(self) -> None:
        """Builds run again: whatever came due meanwhile is planned at once."""
        with self._cond:
            self.held = False
            self._woken = True
            self._cond.notify()

    def register(self, builder: Builder) -> None:
        with self._cond:
            self._builders.append(builder)

    def unregister(self, builder: Builder) -> None:
        with self._cond:
            self._builders = [b for b in self._builders if b is not builder]

    def wake(self) -> None:
        """Something may be due: (start and) wake the thread."""
        with self._cond:
            if self._closed:
                return
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True, name=self.name)
                self.thread.start()
            self._woken = True
            self._cond.notify()

    def in_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while self.held and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                self._woken = False
                builders = list(self._builders)
            wait = _IDLE_SECONDS
            for b in builders:  # each due builder gets one action per round: no starvation
                if self._closed:  # closed meanwhile (a cancelled build just returned): start no other
                    return
                try:
                    wait = min(wait, b.run_due())
                except Exception:  # a bug in one index must not stop every index's builds
                    log.exception("%s: scheduling %s failed", self.name, b.index.name)
            if wait <= 0:
                continue
            with self._cond:
                if not self._woken and not self._closed:
                    self._cond.wait(wait)

    def cancel_running(self) -> bool:
        """Kill the build child process this thread is waiting for, if any (its build fails with
        ``BuildCancelled``); a build on the thread itself cannot be stopped and runs to its end."""
        t = self.thread
        return t is not None and forest_proc.cancel(t.ident)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread (a build in a child process is cancelled, one on the thread let finish) and join it."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            t = self.thread
        self.cancel_running()
        if t is not None and t is not threading.current_thread():
            t.join(timeout)


class Builder:
    """The build state of one index; every field is guarded by the index lock."""

    def __init__(self, index: Buildable, lock: threading.Lock, scheduler: BuildScheduler,
                 after_changes: int, quiet_seconds: float, auto: bool) -> None:
        self.index, self.lock, self.scheduler = index, lock, scheduler
        self.build_lock = threading.Lock()  # one build (or adoption) at a time
        self.after_changes = max(1, after_changes)
        self.quiet = max(0.0, quiet_seconds)
        self.auto = auto
        self.requested = False  # maybe_rebuild() asked the scheduler for one run
        self.pending = 0  # changes not in the current snapshot
        self.last_change = 0.0
        self.building = False
        self.candidate: _Candidate | None = None
        self.next_version = 1
        self.last_error: BaseException | None = None
        self.retry_at = 0.0
        self.closed = False
        scheduler.register(self)

    # -- startup ---------------------------------------------------------------------------
    def open_dir(self, data_dir: Path) -> int:
        """Scan ``data_dir``: continue the version sequence, keep the newest snapshot as a
        reuse candidate, drop everything else. Returns the version to report."""
        name, meta = self.index.name, self.index.snapshot_meta()
        top = files.max_version(data_dir, name)
        self.next_version = top + 1  # never reuse a number, even of an incomplete file
        snap = files.latest(data_dir, name)
        files.remove_stale(data_dir, name, snap.version if snap else None)
        if snap is None:
            return top
        try:
            ids, set_hash, info = files.read_sidecar(snap.sidecar)
            if all(info.get(k, d) == meta.get(k, d) for k, d in _FIT_KEYS.items()) and len(set(ids)) == len(ids):
                self.candidate = _Candidate(snap, ids, set_hash)
            else:
                log.warning("%s: snapshot v%d does not fit this index; ignored",
                            name, snap.version)
        except Exception:  # a cache: an unreadable one is rebuilt, not fatal
            log.warning("%s: unreadable sidecar %s; ignored", name, snap.sidecar,
                        exc_info=True)
        return snap.version

    # -- bookkeeping (lock held) -------------------------------------------------------------
    def _candidate_ready(self, live: int, set_hash: int) -> bool:
        c = self.candidate
        return c is not None and set_hash == c.set_hash and live == len(c.ids)

    def on_change(self) -> None:
        self.pending += 1
        self.last_change = time.monotonic()
        if not self.auto or self.closed:
            return
        # Wake the scheduler when something may be due (it also polls while changes are
        # pending, so this is latency only): the first change starts the quiet timer, the
        # count rule fires at once, crossing the threshold makes a build worth it.
        live, set_hash = self.index.live_set()
        threshold = self.index.exact_threshold
        due = not self.building and self.pending >= self._limit() and live > threshold
        if (self.pending == 1 or due or live == threshold + 1
                or self._candidate_ready(live, set_hash)):
            self.scheduler.wake()

    def _limit(self) -> int:
        return self.after_changes + (len(self.candidate.ids) if self.candidate else 0)

    def _plan(self, now: float) -> tuple[str | None, float]:
        """``(action, seconds to wait before asking again)``; action: adopt | build | None."""
        live, set_hash = self.index.live_set()
        idle = max(self.quiet, 0.05)
        if self.building:
            return None, idle
        if self._candidate_ready(live, set_hash):
            return "adopt", 0.0
        if now < self.retry_at:
            return None, self.retry_at - now
        if self.pending == 0 or live <= self.index.exact_threshold:
            # Only a change can make a build due, and on_change wakes us for it (live
            # grows by at most one per change, so crossing the threshold is seen).
            return None, math.inf
        if self.pending >= self._limit():
            return "build", 0.0
        left = self.last_change + self.quiet - now
        return ("build", 0.0) if left <= 0 else (None, left)

    # -- the work ------------------------------------------------------------------------------
    def build_now(self, background: bool = False) -> int | None:
        ix = self.index
        with self.build_lock:
            with self.lock:
                if ix.live_set()[0] == 0 or (background and self.closed):
                    return None
                cap = ix.capture()
                pending_at, version = self.pending, self.next_version
                if ix.data_dir is not None:
                    cap = replace(cap, target=files.ann_tmp(ix.data_dir, ix.name, version))
                self.next_version += 1
                self.building = True  # also defers compaction: captured rows stay valid
            try:
                if cap.target is not None:
                    cap.target.parent.mkdir(parents=True, exist_ok=True)
                forest = ix.make_forest(cap)
                snap = None
                if ix.data_dir is not None:
                    meta = ix.snapshot_meta()
                    ids = [cap.ids[r] for r in cap.rows.tolist()]
                    snap = files.write_snapshot(ix.data_dir, ix.name, version, forest, ids,
                                                cap.set_hash, meta, built_at=cap.target)
                    forest = files.serving(forest, snap.ann, meta)
            except BaseException:
                with self.lock:
                    self.building = False
                if cap.target is not None:  # a half-built forest file: do not keep it until the next build
                    cap.target.unlink(missing_ok=True)
                raise
            with self.lock:
                self.pending -= pending_at
                self.candidate = None  # superseded; its files go below
                ix.install(version, forest, cap.rows, cap.end, snap)
            try:
                if ix.data_dir is not None:
                    files.remove_stale(ix.data_dir, ix.name, version)
            finally:
                with self.lock:  # only now: wait_idle means the older versions' files are gone too
                    self.building = False
            log.info("%s: built v%d over %d examples", ix.name, version, cap.rows.size)
            return version

    def adopt(self, background: bool = False) -> bool:
        """Swap in the saved candidate snapshot if the live set is exactly its set."""
        ix = self.index
        with self.build_lock:
            with self.lock:
                c = self.candidate
                if (c is None or (background and self.closed)
                        or not self._candidate_ready(*ix.live_set())):
                    return False
                self.building = True
            try:
                meta = ix.snapshot_meta()
                forest = files.load_forest(c.snap.ann, meta)
                if forest.get_n_items() != len(c.ids):
                    raise ValueError(f"{c.snap.ann}: {forest.get_n_items()} items, "
                                     f"sidecar lists {len(c.ids)}")
            except BaseException:
                with self.lock:
                    self.building, self.candidate = False, None
                raise
            with self.lock:
                self.building = False
                if not self._candidate_ready(*ix.live_set()):
                    return False  # changed while we loaded; try again later
                rows, end = ix.locate(c.ids)
                self.pending, self.candidate = 0, None
                ix.install(c.snap.version, forest, rows, end, c.snap)
            log.info("%s: reused saved snapshot v%d", ix.name, c.snap.version)
            return True

    def _do(self, action: str) -> None:
        try:
            self.adopt(True) if action == "adopt" else self.build_now(True)
        except forest_proc.BuildCancelled:
            log.info("%s: background %s cancelled: stopping", self.index.name, action)
        except Exception as exc:  # keep the worker alive; retry after a back-off
            log.exception("%s: background %s failed", self.index.name, action)
            with self.lock:
                self.last_error = exc
                self.retry_at = time.monotonic() + max(self.quiet, 1.0)

    def run_due(self) -> float:
        """Scheduler thread: run this index's due action, if any. Returns how long until
        it may be due again (0 after doing something, ``inf`` when only a change can)."""
        with self.lock:
            if self.closed or not (self.auto or self.requested):
                return math.inf
            self.requested = False  # one-shot: done below, or no longer due
            action, wait = self._plan(time.monotonic())
        if action is None:
            return wait if self.auto else math.inf
        self._do(action)
        return 0.0

    # -- control ---------------------------------------------------------------------------
    def maybe_rebuild(self, wait: bool) -> bool:
        with self.lock:
            action, _ = self._plan(time.monotonic())
            if action is None:
                return False
            if not wait:
                self.requested = True
        if wait:
            self.adopt() if action == "adopt" else self.build_now()
        else:
            self.scheduler.wake()
        return True

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            with self.lock:
                action, _ = self._plan(now)
                live = self.index.live_set()[0]
                due_later = (self.pending > 0 and live > self.index.exact_threshold
                             and now >= self.retry_at)
                busy = (self.building or (self.requested and not self.closed)
                        or (self.auto and not self.closed and (action is not None or due_later)))
            if not busy:
                return True
            if now >= deadline:
                return False
            time.sleep(0.005)

    def close(self, timeout: float) -> None:
        """Leave the scheduler; a build of this index already running is let finish."""
        with self.lock:
            self.closed = True
        self.scheduler.unregister(self)
        if not self.scheduler.in_thread() and self.build_lock.acquire(timeout=timeout):
            self.build_lock.release()
