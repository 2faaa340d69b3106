"""A watchdog for the event loop: a stall is measured, counted and logged with what ran.

Everything heavy runs in the classify pool or in threads, so the event loop should never stop
for long; when it does (a synchronous call slipped onto it, or a thread holding the GIL), every
stream the worker serves stops with it -- results, commits, heartbeats, health checks. A task
on the loop stamps a heartbeat every ``TICK`` seconds; a plain thread checks it and, when the
stamp is older than ``threshold``, logs the stacks of the loop's thread and of every other
thread once per stall (who held the loop, or the GIL), and records the stall's length in
``labelstream_event_loop_stall_seconds`` when the loop is back.

    >>> w = LoopWatch(threshold=0.5); w.late(now=10.0)
    0.0
    >>> w.beat(now=10.0); w.late(now=10.8) > 0.5
    True
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

from prometheus_client import Histogram

log = logging.getLogger(__name__)
TICK = 0.05
STALLS = Histogram("labelstream_event_loop_stall_seconds", "event loop stalls longer than the watchdog's threshold",
                   buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60))


class LoopWatch:
    def __init__(self, threshold: float = 1.0):
        self.threshold = threshold
        self._last: float | None = None
        self._reported = False

    def beat(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._reported and self._last is not None:
            STALLS.observe(now - self._last)
            log.warning("event loop back after a %.2f s stall", now - self._last)
        self._reported = False
        self._last = now

    def late(self, now: float | None = None) -> float:
        """Seconds since the last beat (0 before the first)."""
        return 0.0 if self._last is None else (time.monotonic() if now is None else now) - self._last

    async def run(self) -> None:
        """The heartbeat (on the loop); starts the checking thread."""
        threading.Thread(target=self._check, name="loopwatch", daemon=True).start()
        while True:
            self.beat()
            await asyncio.sleep(TICK)

    def _check(self) -> None:
        while True:
            time.sleep(self.threshold / 4)
            if not self._reported and self.late() > self.threshold:
                self._reported = True
                log.warning("event loop stalled for %.2f s so far; threads now:\n%s", self.late(), _stacks())


def _stacks() -> str:
    names = {t.ident: t.name for t in threading.enumerate()}
    out = []
    for ident, frame in sys._current_frames().items():  # noqa: SLF001 - the documented way to see other threads
        out.append(f"--- {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame, limit=12)))
    return "\n".join(out)
