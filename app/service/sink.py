"""The one way out: results, moderation hits, dead letters and table writes of each outcome.

The sink is the only place that produces to Kafka and writes tables. Nothing it sends can
exceed the producer's message limit: a dead letter carries a bounded prefix of an oversized
value (``app/classify/deadletter.py``), and an outcome whose result would not fit becomes a
``result_too_large`` dead letter instead.

**At-least-once.** Records go straight to the app's producer (``app.producer.send``: the
aiokafka producer's buffer, no Faust ``FutureMessage`` per record, which cost more than the
send itself). An agent's batch is acked only after ``emit`` returns, i.e. after every output
is in that buffer; Faust's commit (``Consumer._commit_offsets``, non-transactional) awaits
``app.producer.flush()`` -- Faust's own buffer, then aiokafka's ``flush()``, which waits for
every batch in the accumulator to be acknowledged -- before it commits an offset. So an
input's offset is committed only after its outputs are acknowledged.

**A send that fails stops the commits.** aiokafka retries a send until its delivery timeout;
what still fails (broker gone for longer than that, a topic whose ``max.message.bytes`` is below
ours, no authorization) is recorded, and every later ``flush`` -- the one Faust awaits before
each commit -- raises ``DeliveryFailed``: the commit does not happen, the worker crashes and
stops, and its records are redelivered when it is restarted (Kafka Streams' default
production exception handler does the same). Faust's own ``Topic.send`` logs and commits
anyway, which loses the output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping

import faust

from app.classify.codec import Rejected
from app.classify.deadletter import dead_letter
from app.classify.outcome import Outcome, Record, TableWrite
from app.service.metrics import DEAD_LETTERS, HITS, RESULTS, SEND_ERRORS
from app.service.tables import Tables

HEADROOM = 64 * 1024  # headers and record overhead
log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """An output could not be delivered: nothing more may be committed."""


def _headers() -> list[tuple[str, bytes]]:
    # Wall-clock time stays out of the value so a redelivery reproduces the same record.
    return [("classified_at", str(int(time.time() * 1000)).encode())]


class Sink:
    def __init__(self, topics: Mapping[str, faust.TopicT], tables: Tables, max_message_bytes: int):
        self.app = topics["results"].app
        self.results = topics["results"].get_topic_name()
        self.moderation = topics["moderation"].get_topic_name()
        self.deadletter = topics["deadletter"].get_topic_name()
        self.tables = tables
        self.limit = max_message_bytes - HEADROOM
        self.failed = 0
        self.failure: BaseException | None = None  # the first delivery failure; sticky until restart

    async def emit(self, batch: Iterable[tuple[Record, Outcome]]) -> None:
        """Send every outcome's outputs, then apply its table writes, in input order."""
        producer = await self.app.maybe_start_producer()
        self._guard(producer)
        headers = _headers()
        counts: Counter[tuple[object, str]] = Counter()  # metrics once per batch, not per record
        for record, out in batch:
            for topic, key, value in self._outputs(record, out, counts):
                fut = await producer.send(topic, key, value, partition=None, timestamp=None, headers=headers)
                fut.add_done_callback(self._delivered)
            self.write(out.writes)
        for (metric, label), n in counts.items():
            metric.labels(label).inc(n)  # type: ignore[attr-defined]

    async def one(self, record: Record, out: Outcome) -> None:
        await self.emit([(record, out)])

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """One command record (a REST request's job start) to a catalog topic, awaited until acknowledged."""
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

    def check(self) -> None:
        """Raise ``DeliveryFailed`` once any output has failed (called after each flush)."""
        if self.failure is not None:
            raise DeliveryFailed(f"{self.failed} output(s) could not be delivered, the first: {self.failure!r}; "
                                 "offsets are not committed") from self.failure

    def _guard(self, producer: object) -> None:
        """Make the producer's ``flush`` -- awaited by Faust before every commit -- fail after a failure."""
        if getattr(producer, "_labelstream_sink", None) is self:
            return
        flush = producer.flush  # type: ignore[attr-defined]

        async def flush_then_check() -> None:
            await flush()
            self.check()

        producer.flush = flush_then_check  # type: ignore[attr-defined]
        producer._labelstream_sink = self  # type: ignore[attr-defined]  # noqa: SLF001

    def write(self, writes: Iterable[TableWrite]) -> None:
        """Table writes without an output (the sweeper's deletions)."""
        for w in writes:
            self.tables.apply(w)
