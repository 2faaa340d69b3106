"""The one way out: results, moderation hits, dead letters and table writes of each outcome.

The sink is the only place that produces to Kafka and writes tables. Nothing it sends can
exceed the producer's message limit: a dead letter carries a bounded prefix of an oversized
value (``app/classify/deadletter.py``), and an outcome whose result would not fit becomes a
``result_too_large`` dead letter instead.

**At-least-once.** Records go straight into the aiokafka producer's buffer, partition by
partition (``app/service/produce.py``: no Faust ``FutureMessage``, no ``send`` call per record;
both cost more than the append itself). An agent's batch is acked only after ``emit`` returns, i.e. after every output
is in that buffer; Faust's commit (``Consumer._commit_offsets``, non-transactional) awaits
``app.producer.flush()`` -- Faust's own buffer, then aiokafka's ``flush()``, which waits for
every batch in the accumulator to be acknowledged -- before it commits an offset. So an
input's offset is committed only after its outputs are acknowledged.

**A send that fails stops the commits.** aiokafka retries a send until its delivery timeout;
what still fails (broker gone for longer than that, a topic whose ``max.message.bytes`` is below
ours, no authorization) is recorded, and from then on the consumer's offset commit -- the
broker call Faust makes after awaiting the producer flush, so it sees every failure of what it
would commit -- is refused; the worker is asked to stop (``on_failure``: a normal shutdown, so
no batch is cut off), and the records are redelivered when it is restarted (Kafka Streams'
default production exception handler stops too). Faust's own ``Topic.send`` logs and commits
anyway, which loses the output.

**Table writes** go the same way: the value into the table's store, its changelog record
straight into the producer's buffer, to the partition the table's partitioner would pick (not
through Faust's ``Table.__setitem__``: one ``FutureMessage`` per write, sent one at a time by
Faust's buffer task, was the largest cost left per event once delivery was batched, and the
commit waited for that buffer to drain). The sweeper's writes (``write``, synchronous) are
applied at once and their changelog records sent by a task; every changelog send holds one
lock, so the records of a key reach the changelog in the order the store saw them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust
from faust.types import TP

from app.classify.assembly import partition_of
from app.classify.codec import Rejected
from app.classify.deadletter import dead_letter
from app.classify.outcome import Outcome, Record, TableWrite
from app.service.metrics import DEAD_LETTERS, HITS, RESULTS, SEND_ERRORS
from app.service.produce import Outbox, Sent
from app.service.tables import Tables

HEADROOM = 64 * 1024  # headers and record overhead
log = logging.getLogger(__name__)


def _headers() -> list[tuple[str, bytes]]:
    # Wall-clock time stays out of the value so a redelivery reproduces the same record.
    return [("classified_at", str(int(time.time() * 1000)).encode())]


class Sink:
    def __init__(self, topics: Mapping[str, faust.TopicT], tables: Tables, max_message_bytes: int,
                 on_failure: Callable[[], None] | None = None):
        self.app = topics["results"].app
        self.results = topics["results"].get_topic_name()
        self.moderation = topics["moderation"].get_topic_name()
        self.deadletter = topics["deadletter"].get_topic_name()
        self.tables = tables
        self.limit = max_message_bytes - HEADROOM
        self.failed = 0
        self.failure: BaseException | None = None  # the first delivery failure; sticky until restart
        self.on_failure = on_failure  # called once, at the first failure (the worker: stop)
        self._unsent: deque[TableWrite] = deque()  # the sweeper's changelog records, not sent yet
        self._sending: asyncio.Lock | None = None  # made on the event loop
        self._drainer: asyncio.Future | None = None
        self._changelogs: dict[str, Any] = {}  # changelog topic -> its table (persisted offsets)

    async def emit(self, batch: Iterable[tuple[Record, Outcome]],
                   also: Iterable[tuple[str, bytes, bytes | None]] = ()) -> None:
        """Send every outcome's outputs, then apply its table writes, in input order (per partition:
        ``app/service/produce.py``), the table writes' changelog records with them."""
        producer = await self.app.maybe_start_producer()
        self._guard(self.app.consumer)
        headers = _headers()
        counts: Counter[tuple[object, str]] = Counter()  # metrics once per batch, not per record
        async with self._lock():
            out = Outbox(producer._ensure_producer())  # noqa: SLF001 - the aiokafka producer
            await out.prepare((self.results, self.moderation, self.deadletter))
            await self._queue_unsent(out)
            for record, outcome in batch:
                for topic, key, value in self._outputs(record, outcome, counts):
                    out.add(topic, key, value, headers)
                for w in outcome.writes:
                    if self._apply(w):
                        await self._queue_changelog(out, w)
            for topic, k, v in also:  # records for another topic (learned examples): same delivery rule
                await out.prepare((topic,))
                out.add(topic, k, v, headers)
            await out.send(self._submitted)
        for (metric, label), n in counts.items():
            metric.labels(label).inc(n)  # type: ignore[attr-defined]

    def _lock(self) -> asyncio.Lock:
        if self._sending is None:
            self._sending = asyncio.Lock()
        return self._sending

    def _apply(self, w: TableWrite) -> bool:
        """The write into the table's store; False when there is nothing to log (deleting a missing key)."""
        data = self.tables.by_name[w.table].data
        if w.value is not None:
            data[w.key] = w.value
        elif w.key in data:
            del data[w.key]
        else:
            return False
        return True

    async def _queue_changelog(self, out: Outbox, w: TableWrite) -> None:
        table = self.tables.by_name[w.table]
        assert table.partitions is not None  # app/service/tables.py always sets them
        topic = table.changelog_topic.get_topic_name()
        if topic not in self._changelogs:
            await out.prepare((topic,))
            self._changelogs[topic] = table
        out.add(topic, w.key, w.value, partition=partition_of(w.key, table.partitions))

    def _submitted(self, sent: Sent) -> None:
        for fut, _ in sent.batches:  # one callback per producer batch, not per record (app/service/produce.py)
            fut.add_done_callback(self._delivered)
        table = self._changelogs.get(sent.topic)
        if table is not None and sent.batches:
            tp = TP(sent.topic, sent.partition)
            last, place = sent.batches[-1]
            last.add_done_callback(lambda f: self._logged(table, tp, f, place))

    def _logged(self, table: Any, tp: TP, fut: asyncio.Future, place: int) -> None:
        # What Faust's Table._on_changelog_sent does (at-least-once): RocksDB remembers the
        # offset its data reaches, so recovery replays only what came after it. (A failure
        # is seen by _delivered: a changelog record lost is table state lost, it stops the commits.)
        if not fut.cancelled() and fut.exception() is None:
            table.data.set_persisted_offset(tp, Sent.last_offset(fut, place))

    async def _queue_unsent(self, out: Outbox) -> None:
        while self._unsent:
            await self._queue_changelog(out, self._unsent.popleft())

    async def _drain(self) -> None:
        producer = await self.app.maybe_start_producer()
        async with self._lock():
            out = Outbox(producer._ensure_producer())  # noqa: SLF001
            await self._queue_unsent(out)
            await out.send(self._submitted)

    async def one(self, record: Record, out: Outcome) -> None:
        await self.emit([(record, out)])

    async def outcomes(self, records: Iterable[Record], outcomes: Iterable[Outcome]) -> None:
        """:meth:`emit` of ``records`` with their ``outcomes`` (a step's output, in input order)."""
        await self.emit(zip(records, outcomes))

    async def publish(self, topic: str, key: bytes, value: bytes | None) -> None:
        """One record (a REST request's job start, a verdict, a worker report; None: a tombstone) to a topic,
        awaited until acknowledged."""
        producer = await self.app.maybe_start_producer()
        await (await producer.send(topic, key, value, partition=None, timestamp=None, headers=_headers()))

    def _outputs(self, record: Record, out: Outcome, counts: Counter) -> list[tuple[str, bytes | None, bytes]]:
        """(topic, key, value) of one outcome: its results and hits, or exactly one dead letter."""
        if out.rejected is None:
            if out.encoded is None or out.encoded_hits is None:
                out.encode()  # a step run outside ``Runtime.run_split`` (media, sweeper)
        if out.rejected is None:
            assert out.encoded is not None and out.encoded_hits is not None
            too_big = next(((r, len(b)) for r, b in zip(out.results, out.encoded) if len(b) > self.limit), None)
            if too_big is not None:
                r, size = too_big
                out.fail(Rejected("result_too_large", f"the result of classifier {r.classifier!r} is {size} bytes, "
                                  f"the limit is {self.limit}"))
        if out.rejected is not None:
            counts[DEAD_LETTERS, out.rejected.reason] += 1
            return [(self.deadletter, record.key, dead_letter(record, out.rejected, self.limit))]
        assert out.encoded is not None and out.encoded_hits is not None
        sends: list[tuple[str, bytes | None, bytes]] = []
        for r, body in zip(out.results, out.encoded, strict=True):
            counts[RESULTS, r.method] += 1
            sends.append((self.results, r.item_id.encode(), body))
        for hit, body in zip(out.hits, out.encoded_hits, strict=True):
            counts[HITS, hit.action] += 1
            sends.append((self.moderation, hit.item_id.encode(), body))
        return sends

    def _delivered(self, fut: asyncio.Future) -> None:
        # Runs before the flush that waited for this batch returns (aiokafka resolves the
        # batch's and the messages' futures together; the flush's waiter wakes after them).
        if not fut.cancelled() and fut.exception() is not None:
            SEND_ERRORS.inc()
            self.failed += 1
            if self.failure is None:
                self.failure = fut.exception()
                log.error("an output could not be delivered: %r; no offset will be committed from now on, "
                          "the worker stops so its records are redelivered after a restart", self.failure)
                if self.on_failure is not None:
                    self.on_failure()

    def _guard(self, consumer: Any) -> None:
        """Refuse the consumer's offset commits once an output has failed (``Consumer._commit``: the
        broker call Faust makes after ``producer.flush()``, whose failures have been seen by then)."""
        if getattr(consumer, "_labelstream_sink", None) is self:
            return
        commit = consumer._commit  # noqa: SLF001

        async def commit_unless_failed(offsets: Mapping[Any, int]) -> bool:
            if self.failure is not None:
                log.warning("offsets not committed: %d output(s) could not be delivered", self.failed)
                return False
            return await commit(offsets)

        consumer._commit = commit_unless_failed  # noqa: SLF001
        consumer._labelstream_sink = self  # noqa: SLF001

    def write(self, writes: Iterable[TableWrite]) -> None:
        """Table writes without an output (the sweeper's deletions): applied now, logged by a task."""
        self._unsent.extend(w for w in writes if self._apply(w))
        if self._unsent and (self._drainer is None or self._drainer.done()):
            self._drainer = asyncio.ensure_future(self._drain())
