"""Keys per table, for ``/health/ready``: counted in a thread, never on the event loop.

Why: Faust's RocksDB store has no key count; ``len(table)`` walks every key of the worker's
partitions. With 1,000,000 stored objects that is ~0.6 s per call, and readiness asked for it on
every probe, on the event loop: a benchmark polling readiness during recovery kept the loop 80 %
busy walking keys (py-spy: ``Store._visible_keys``), so recovery itself crawled. A memory table's
count is ``len(dict)``.

Rules, so a caller that polls gets exact figures when they are cheap and bounded work when not:

* a request waits for a count *started after it arrived* (exact as of the request), joining
  one already started after its arrival rather than starting another;
* an *expensive* count (over :attr:`SizeCounter.expensive` seconds) is reused by the requests
  that arrive within :attr:`SizeCounter.reuse` times its duration of its start, with its age:
  polling costs at most ~1/reuse of a core, whatever the rate;
* ``fresh=True`` skips the reuse (one exact answer, e.g. to check a count after readiness).

>>> import asyncio
>>> calls = []
>>> counter = SizeCounter(lambda: lambda: calls.append(1) or {"t": len(calls)})
>>> async def twice():
...     a = await counter.sizes()
...     b = await counter.sizes()
...     return a.sizes, b.sizes
>>> asyncio.run(twice())  # cheap: counted again for each request
({'t': 1}, {'t': 2})
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Counted:
    sizes: dict[str, int]
    started: float  # clock time the count began: it saw at least every write made before then
    took: float  # seconds
    age: float = 0.0  # seconds from ``started`` to the request it answers


class SizeCounter:
    expensive = 0.05
    reuse = 10.0

    def __init__(self, prepare: Callable[[], Callable[[], dict[str, int]]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``prepare`` runs on the event loop and returns the count, which runs in a thread."""
        self._prepare, self._clock = prepare, clock
        self._last: Counted | None = None
        self._task: asyncio.Future[None] | None = None

    async def sizes(self, fresh: bool = False) -> Counted:
        asked = self._clock()
        while True:
            last = self._last
            if last is not None and (last.started >= asked or (not fresh and self._reusable(last, asked))):
                return replace(last, age=max(0.0, asked - last.started))
            if self._task is None:
                self._task = asyncio.ensure_future(self._count())
            # shield: a request given up (a probe's connection closed) must not cancel the count others wait for
            await asyncio.shield(self._task)

    def _reusable(self, last: Counted, asked: float) -> bool:
        return last.took >= self.expensive and asked - last.started < self.reuse * last.took

    async def _count(self) -> None:
        started = self._clock()
        try:
            sizes = await asyncio.to_thread(self._prepare())
            self._last = Counted(sizes, started, self._clock() - started)
        finally:
            self._task = None
