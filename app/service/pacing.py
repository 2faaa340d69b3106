"""How much of a fetched batch to classify before emitting: a time budget, not a record count.

A lane hands the objects agent everything fetched (up to ``batch_size``). When an event costs
0.1 ms (kNN over 60 examples) a batch of 1,000 is 100 ms of work and one emit; when it costs
20 ms (kNN over 100,000 examples while the index rebuilds) the same batch would be 20 seconds
with no result leaving the worker -- a 20 s gap in the result stream although the worker is
busy classifying. The pacer keeps a moving average of the seconds per record and cuts each
batch into chunks of about ``budget`` seconds, each emitted as soon as it is done; it also
says over how many classify threads a chunk is worth splitting (a thread hop pays off from a
few milliseconds of work, not from a record count), and when a chunk is so small that it is
cheaper to classify it on the event loop than to hand it to a thread at all.

A hop is not free on this interpreter: the pool thread wakes, takes the GIL from the loop (which
holds it up to the 5 ms switch interval), and wakes the loop back through its self-pipe. Under a
steady load of a few hundred events per poll those hops and GIL hand-overs cost more than the
step (``bench/RESULTS.md``, "Latency, GC and memory"): a chunk expected to take under
``INLINE_SECONDS`` is run inline, a bounded few milliseconds, so the loop is never held long --
if its records are cheap ones: an expensive record (a kNN query over 100k examples, which releases
the GIL) goes to the pool even alone, where two such run at once.

    >>> p = Pacer(budget=0.05, per_record=0.0001)
    >>> [len(c) for c in p.chunks(list(range(1200)))]   # 0.1 ms a record: 500 per chunk
    [500, 500, 200]
    >>> p.observe(10, 0.2)                               # then 20 ms a record...
    >>> p.per_record > 0.005 and len(next(iter(p.chunks(list(range(1200)))))) < 20
    True
    >>> p.shares(8, threads=2)                           # 8 x ~10 ms: worth both threads
    2
    >>> p.inline(8), Pacer(per_record=0.0001).inline(8)  # 80 ms: a thread; 0.8 ms: on the loop
    (False, True)
    >>> Pacer(per_record=0.003).inline(1)                # one 3 ms record: a thread (it releases the GIL)
    False
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
O = TypeVar("O")
MIN_SHARE_SECONDS = 0.004  # below this a share is not worth a thread hop
INLINE_SECONDS = MIN_SHARE_SECONDS  # a chunk not worth one share is classified on the event loop (no hop)...
INLINE_RECORD_SECONDS = 0.0005  # ...if its records are cheap: a 3 ms kNN query over 100k examples releases the
# GIL in Annoy, so it goes to the pool, where two of them run at once (inline, they were serialized on the loop)


class Pacer:
    def __init__(self, budget: float = 0.05, per_record: float = 0.0001, alpha: float = 0.3):
        self.budget, self.per_record, self.alpha = budget, per_record, alpha

    def observe(self, n: int, seconds: float) -> None:
        """A chunk of ``n`` records took ``seconds`` to classify."""
        if n > 0:
            self.per_record += self.alpha * (seconds / n - self.per_record)

    def size(self) -> int:
        return max(1, int(self.budget / max(self.per_record, 1e-7)))

    def chunks(self, records: Sequence[T]) -> Iterator[Sequence[T]]:
        """Consecutive chunks of ``records``, each sized by the estimate at the time it is taken."""
        i = 0
        while i < len(records):
            n = self.size()
            yield records[i:i + n]
            i += n

    def inline(self, n: int) -> bool:
        """Is a chunk of ``n`` records cheaper to classify where it is than in the pool?"""
        return self.per_record < INLINE_RECORD_SECONDS and n * self.per_record < INLINE_SECONDS

    def shares(self, n: int, threads: int) -> int:
        return max(1, min(threads, n, int(n * self.per_record / MIN_SHARE_SECONDS)))


async def paced(pacer: Pacer, records: Sequence[T], work: Callable[[Sequence[T]], Awaitable[list[O]]],
                emit: Callable[[Sequence[T], list[O]], Awaitable[None]],
                done: Callable[[int, float, float], None] | None = None) -> None:
    """``work`` then ``emit`` each chunk of ``records`` in turn; ``done(records, work s, emit s)`` after each.

    A chunk is emitted before the next one is worked, so a step that reads what earlier records
    wrote (the training table) sees the previous chunks' writes; and another agent's work queued
    in the same pool waits for one chunk (about ``budget`` seconds), not for a whole batch.

    >>> import asyncio
    >>> log = []
    >>> async def work(chunk):
    ...     log.append(("work", list(chunk)))
    ...     return [r * 10 for r in chunk]
    >>> async def emit(chunk, outs):
    ...     log.append(("emit", outs))
    >>> _ = asyncio.run(paced(Pacer(budget=0.0002, per_record=0.0001), [1, 2, 3], work, emit))
    >>> log
    [('work', [1, 2]), ('emit', [10, 20]), ('work', [3]), ('emit', [30])]
    """
    for chunk in pacer.chunks(records):
        t0 = time.monotonic()
        outs = await work(chunk)
        t1 = time.monotonic()
        pacer.observe(len(chunk), t1 - t0)
        await emit(chunk, outs)
        if done is not None:
            done(len(chunk), t1 - t0, time.monotonic() - t1)
