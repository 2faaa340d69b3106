"""Hot topics without Faust's per-event machinery: fetched batches straight to a batch handler.

Faust hands every record through the conductor (flow control, producer-buffer ebb, decode
into an ``Event``, queue put), then ``Stream``/``take_events`` and one ack per event: at
2k-3k events/s that machinery, not our step, was the ceiling (``bench/RESULTS.md``). For the
hot topics (objects, media, training) this module keeps Faust's consumer -- its group membership,
partition assignment, table co-partitioning, recovery, commit bookkeeping and faustfix's
fixes -- and only changes how their records reach the step:

- **Delivery.** ``Consumer._wait_next_records`` (the fetcher's call into aiokafka) is wrapped:
  the records of a hot topic's partitions come out of the fetched ``RecordMap`` as whole
  per-partition lists, tagged with the consumer generation, into that topic's :class:`Lane`;
  Faust's drain iterates only what is left (feedback, jobs, changelogs). The same filters as
  Faust's ``getmany`` apply: nothing while the flow is stopped, nothing of a partition that is
  not active (paused for recovery, or revoked); what they leave out is fetched again
  (``app/service/activefetch.py``). A full lane makes the fetcher wait (as a full stream buffer does).
- **Processing.** One task per lane takes whatever is queued (up to ``batch_size`` records,
  no waiting for more: batches grow with the load, and an idle worker adds no delay) and
  calls the handler (decode -> pure step in the pool -> ``Sink.emit``). Per-partition order
  is kept: one task, chunks in fetch order.
- **Acks.** After the handler returns (every output is in the producer's buffer) the batch's
  offsets go into Faust's own ``_acked``/``_acked_index`` in bulk, exactly as ``Consumer.ack``
  would one by one; Faust's commit (``_new_offset`` with its gaps, faustfix's strict head)
  awaits ``producer.flush()`` before committing them: at-least-once, unchanged.
- **Rebalances.** A lane is managed by ``app.flow_control``: when Faust clears the stream
  queues (revocation, recovery done) it clears the lanes too. A batch is checked when it is
  taken: flow active, same generation as when it was fetched, partition still assigned, and
  its fetch position not moved by a seek since (:func:`mark`); otherwise it is dropped unacked (the seek to
  the committed offsets, which cannot have passed an unacked record, fetches it again; for a partition
  the group never committed, faustfix's fix 4 seeks back to the lowest offset a clear threw away, and
  the chunks the task holds while it waits for that seek count as thrown away: ``Lane.held``). The
  last check also spares the duplicates Faust's own path makes at start-up: faustfix's seek
  after recovery used to send a whole fetched backlog through the step twice. A
  batch being processed holds a token in ``Consumer._unacked_messages``, so a revocation's
  ``wait_empty`` waits for it (and commits it) exactly as for an event in a Faust stream; its
  acks are dropped if the generation changed meanwhile.

``LABELSTREAM_LEAN=0`` (or ``LABELSTREAM_FAUSTFIX=0``: the lanes rely on its hole tracking)
runs the hot topics as plain Faust agents instead, for comparison.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from app.classify.outcome import Record
from app.schemas.deadletter import Source
from app.service.faustfix import position_mark
from app.service.metrics import AGENT_RESTARTS

log = logging.getLogger(__name__)
Handler = Callable[[list[Record]], Awaitable[None]]
LANE_RECORDS = 4096  # a full lane makes the fetcher wait (Faust's stream_buffer_maxsize)
SETTLE_POLL = 0.01  # s, while a rebalance's seeks are not done (rare: no event to wait on)

_applied = False


def enabled() -> bool:
    return os.environ.get("LABELSTREAM_LEAN", "1") != "0" and os.environ.get("LABELSTREAM_FAUSTFIX", "1") != "0"


class Chunk:
    """Records of one partition from one fetch, with the consumer generation and the partition's
    position mark (``faustfix.position_mark``) when aiokafka handed them out."""

    __slots__ = ("generation", "mark", "tp", "records")

    def __init__(self, generation: int, tp: Any, records: list[Any], mark: Any = None):
        self.generation, self.tp, self.records, self.mark = generation, tp, records, mark


def take(chunks: deque, n: int) -> list[Chunk]:
    """Pop chunks from the left up to ``n`` records, splitting the last one if needed.

    >>> q = deque([Chunk(1, "a", [1, 2, 3]), Chunk(1, "b", [4, 5])])
    >>> [(c.tp, c.records) for c in take(q, 4)], [(c.tp, c.records) for c in q]
    ([('a', [1, 2, 3]), ('b', [4])], [('b', [5])])
    >>> [(c.tp, c.records) for c in take(q, 4)], len(q)
    ([('b', [5])], 0)
    """
    out: list[Chunk] = []
    while chunks and n > 0:
        c = chunks[0]
        if len(c.records) <= n:
            out.append(chunks.popleft())
            n -= len(c.records)
        else:
            out.append(Chunk(c.generation, c.tp, c.records[:n], c.mark))
            c.records = c.records[n:]
            n = 0
    return out


class Lane:
    """The fetched, not yet taken records of one hot topic (cleared by ``app.flow_control``)."""

    def __init__(self, limit: int = LANE_RECORDS):
        self.chunks: deque[Chunk] = deque()
        self.held: list[Chunk] = []  # taken by the lane's task and not yet processed (see labelstream_pending)
        self.size = 0
        self.limit = limit
        self._ready = asyncio.Event()  # set while chunks are queued
        self._room = asyncio.Event()  # set while size < limit
        self._room.set()

    async def put(self, chunk: Chunk) -> None:
        while self.size >= self.limit:
            await self._room.wait()
        self.chunks.append(chunk)
        self.size += len(chunk.records)
        self._ready.set()
        if self.size >= self.limit:
            self._room.clear()

    async def take(self, n: int) -> list[Chunk]:
        """What is queued now, up to ``n`` records (waits only while nothing is)."""
        while not self.chunks:
            self._ready.clear()
            await self._ready.wait()
        out = take(self.chunks, n)
        self.held = out
        self.size -= sum(len(c.records) for c in out)
        self._changed()
        return out

    def release(self) -> None:
        """The taken chunks are processed, or dropped by a check that a seek refetches them."""
        self.held = []

    def labelstream_pending(self) -> list[tuple[Any, int, int]]:
        """``(tp, first offset, generation)`` of every chunk not processed yet: what a clear drops
        (faustfix fix 4 seeks a partition the group never committed back to it).

        The chunks the task holds count too: it takes them before a recovery's seek is settled and
        then drops them (their position mark is stale), so a seek past them would skip them for good.

        >>> from types import SimpleNamespace as R
        >>> lane = Lane()
        >>> lane.chunks.extend([Chunk(3, "a", [R(offset=5), R(offset=6)]), Chunk(3, "a", [R(offset=7)])])
        >>> _ = asyncio.run(lane.take(2))
        >>> lane.labelstream_pending()
        [('a', 5, 3), ('a', 7, 3)]
        """
        return [(c.tp, c.records[0].offset, c.generation) for c in (*self.held, *self.chunks) if c.records]

    def clear(self) -> None:
        """``FlowControlEvent.clear``: the fetch position is reset, drop what was queued."""
        self.chunks.clear()
        self.size = 0
        self._changed()

    def drop(self, tps: Iterable[Any]) -> None:
        """Drop the queued chunks of the partitions ``tps`` (about to be sought back); keep the others'."""
        gone = set(tps)
        self.chunks = deque(c for c in self.chunks if c.tp not in gone)
        self.size = sum(len(c.records) for c in self.chunks)
        self._changed()

    def _changed(self) -> None:
        if self.size < self.limit:
            self._room.set()
        if not self.chunks:
            self._ready.clear()


class InFlight:
    """Stands for a batch being processed in ``Consumer._unacked_messages`` (so ``wait_empty`` waits)."""

    __slots__ = ("acked", "refcount", "__weakref__")

    def __init__(self, n: int):
        self.acked, self.refcount = False, n


def ack(consumer: Any, tp: Any, offsets: Iterable[int]) -> int:
    """``Consumer.ack`` for many offsets of one partition at once (the same bookkeeping, one lock)."""
    from faust.types.tuples import ack_lock
    from mode.utils.futures import notify

    with ack_lock:
        committed = consumer._committed_offset[tp]  # noqa: SLF001
        index = consumer._acked_index[tp]  # noqa: SLF001
        new = []
        for o in offsets:
            if (committed is None or o >= committed) and o not in index:
                index.add(o)
                new.append(o)
        consumer._acked[tp].extend(new)  # noqa: SLF001
        consumer._n_acked += len(new)  # noqa: SLF001
    notify(consumer._waiting_for_ack)  # noqa: SLF001
    return len(new)


def record(r: Any) -> Record:
    """An aiokafka ``ConsumerRecord`` as the step's ``Record`` (timestamp in ms, as fetched)."""
    return Record(r.key, r.value, Source(topic=r.topic, partition=r.partition, offset=r.offset,
                                         timestamp=r.timestamp or None))


class Lanes:
    """The hot topics of one app: their lanes, and one batch task each."""

    def __init__(self, app: Any):
        self.app = app
        self.by_topic: dict[str, Lane] = {}
        self.dropped: Counter[tuple[Any, str]] = Counter()  # (tp, reason) -> records not processed
        app._labelstream_lanes = self  # noqa: SLF001 - read by the patched _wait_next_records

    def register(self, topic: Any, name: str, handler: Handler, batch_size: int,
                 ready: Callable[[], Awaitable[Any]] | None = None) -> Lane:
        """Consume ``topic`` (a Faust topic: it stays subscribed through the conductor) with ``handler``."""
        apply()
        lane = Lane(max(LANE_RECORDS, 2 * batch_size))
        for t in topic.topics:
            self.by_topic[t] = lane
        self.app.flow_control.manage_queue(lane)  # a WeakSet: self.by_topic keeps the lane alive
        self.app.topics.add(topic)

        async def run() -> None:
            if ready is not None:
                await ready()
            while True:
                chunks = await lane.take(batch_size)
                try:
                    await self._settled()
                    await self.process(name, handler, chunks)
                finally:
                    lane.release()

        run.__name__ = run.__qualname__ = f"lane_{name}"
        self.app.task(run)
        return lane

    async def _settled(self) -> None:
        """Wait until faustfix's seek after recovery is done for the current generation: records a
        worker processed between Faust resuming the flow and that seek would be fetched again and
        processed twice (at start-up: a whole fetched backlog)."""
        app = self.app
        while getattr(app.consumer, "_labelstream_settled", None) != app.consumer_generation_id:
            await asyncio.sleep(SETTLE_POLL)

    async def process(self, name: str, handler: Handler, chunks: list[Chunk]) -> None:
        app = self.app
        consumer = app.consumer
        generation = app.consumer_generation_id
        if not consumer.flow_active:
            self._dropped(name, chunks, generation, consumer.assignment(), why="flow stopped")
            return
        assigned = consumer.assignment()
        # A chunk whose partition was sought since it was fetched is fetched again from the committed
        # offset (it is not acked, so the commit cannot have passed it): processing it now would do it twice.
        kept = [c for c in chunks if c.generation == generation and c.tp in assigned
                and c.mark == mark(consumer, c.tp)]
        if len(kept) < len(chunks):
            self._dropped(name, [c for c in chunks if c not in kept], generation, assigned)
        chunks = kept
        if not chunks:
            return
        records = [record(r) for c in chunks for r in c.records]
        token = InFlight(len(records))
        consumer._unacked_messages.add(token)  # noqa: SLF001
        try:
            await handler(records)
        except Exception as exc:  # noqa: BLE001 - a bug (steps isolate bad items): redo the batch
            AGENT_RESTARTS.labels(name).inc()
            log.exception("lane %s: a batch of %d records failed, fetching it again: %r", name, len(records), exc)
            await self._refetch(chunks)
            return
        else:
            if app.consumer_generation_id == generation:
                inbound = getattr(app.monitor, "stream_inbound_time", None)
                now = time.monotonic()
                for c in chunks:
                    ack(consumer, c.tp, [r.offset for r in c.records])
                    if inbound is not None:
                        inbound[c.tp] = now  # Faust's livelock detector: this partition is moving
        finally:
            token.acked = True
            consumer._unacked_messages.discard(token)  # noqa: SLF001

    def _dropped(self, name: str, chunks: list[Chunk], generation: int, assigned: Any, why: str = "") -> None:
        """Counted and logged (rare: around rebalances and seeks), so a partition whose records never
        come again can be told apart from one that was never fetched (``lean_report.describe``)."""
        consumer = self.app.consumer
        for c in chunks:
            reason = why or ("generation" if c.generation != generation else
                             "unassigned" if c.tp not in assigned else "sought since fetched")
            self.dropped[(c.tp, reason)] += len(c.records)
            log.info("lane %s: %d record(s) of %s from offset %d not processed (%s; committed %s)", name,
                     len(c.records), c.tp, c.records[0].offset, reason,
                     consumer._committed_offset.get(c.tp))  # noqa: SLF001

    async def _refetch(self, chunks: list[Chunk]) -> None:
        """Seek each failed partition back to the batch's first record (what follows it is dropped)."""
        consumer = self.app.consumer
        first: dict[Any, int] = {}
        for c in chunks:
            first[c.tp] = min(first.get(c.tp, c.records[0].offset), c.records[0].offset)
        # Only those partitions: another partition's queued chunks were fetched past, and nothing
        # would fetch them again (its position is not sought), so they stay queued.
        for lane in set(self.by_topic.values()):
            lane.drop(first)
        await asyncio.sleep(1.0)  # a bug that fails every time should not spin a core
        for tp, offset in first.items():
            await consumer.seek(tp, offset)


def assignment_of(consumer: Any) -> Any:
    """aiokafka's current ``Assignment`` under a Faust consumer (None: not started, or none yet)."""
    try:
        return consumer._thread._consumer._subscription.subscription.assignment  # noqa: SLF001
    except AttributeError:
        return None


def mark(consumer: Any, tp: Any) -> tuple[int, int] | None:
    """``faustfix.position_mark`` of ``tp`` now (None when unknown: not assigned, consumer not started)."""
    assignment = assignment_of(consumer)
    return None if assignment is None else position_mark(assignment.state_value(tp))


def _delivering_hot(wait_next_records: Callable[..., Any]) -> Callable[..., Any]:
    """``Consumer._wait_next_records`` that moves hot topics' records into their lanes."""

    async def wait_next_records_lean(self: Any, timeout: float) -> Any:
        records, active = await wait_next_records(self, timeout)
        lanes = getattr(self.app, "_labelstream_lanes", None)
        if not records or lanes is None or not lanes.by_topic or not self.flow_active or self.should_stop:
            return records, active  # (records Faust drops are fetched again: app/service/activefetch.py)
        generation = self.app.consumer_generation_id
        marks = self._labelstream_marks  # noqa: SLF001 - faustfix notes them in the consumer thread
        buffered = self._buffered_partitions  # noqa: SLF001
        rest = {}
        for tp, recs in records.items():
            lane = lanes.by_topic.get(tp.topic)
            if lane is None:
                rest[tp] = recs
            elif active is None or tp in active or tp in buffered:  # as Faust's getmany filters
                await lane.put(Chunk(generation, tp, recs, marks.get(tp)))
        return rest, active

    wait_next_records_lean.__wrapped__ = wait_next_records  # type: ignore[attr-defined]
    return wait_next_records_lean


def apply() -> None:
    """Patch Faust's consumer once (idempotent); a consumer whose app has no lanes is unchanged."""
    global _applied
    if _applied:
        return
    from faust.transport.consumer import Consumer

    Consumer._wait_next_records = _delivering_hot(Consumer._wait_next_records)  # type: ignore[method-assign]  # noqa: SLF001
    _applied = True

