"""Outputs of one sink call appended to the producer's per-partition batches, in input order.

``AIOKafkaProducer.send`` costs, per record, a metadata wait, a partitioner call (with a
metadata lookup that builds a set), a ``TopicPartition``, and Faust's ``Producer.send``
wrapper with its sensors around it: on the hot path that was about a fifth of the event
loop's time. Here a sink call learns each topic's partitions once, picks partitions with the
producer's own partitioner (murmur2 of the key, like every Kafka client, so keys land where
``send`` would have put them) and appends straight to the producer's accumulator -- the step
``send`` ends with.

Not ``send_batch``: it waits until the partition has no batch pending, i.e. one linger per
partition per call, which halved the throughput. Delivery is unchanged: the records sit in the
same accumulator, so ``producer.flush()`` -- which Faust's commit awaits -- waits for them too.

No future per record either: the accumulator's ``add_message`` makes one, and when the batch is
acknowledged it builds a ``RecordMetadata`` for each and resolves it, and each resolution
schedules the sink's callback on the event loop -- together about a fifth of the loop's time
under load (``bench/RESULTS.md``, issue 10). A batch is delivered or fails as a whole (aiokafka
resolves every record of it alike), so :func:`append` adds the record to the batch's builder, as
``MessageBatch.append`` does, and returns the *batch's* future with the record's place in it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaTimeoutError, ProducerClosed
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from app.core.murmur2 import partition

Headers = Sequence[tuple[str, bytes]]


@dataclass
class Sent:
    """What one call appended to one partition: the delivery future of each producer batch the
    records went into, in order (its base offset when delivered, its error otherwise: a batch
    fails whole, and another batch of the same call may not), with the place of the call's last
    record in that batch (so its offset is the batch's base offset plus that)."""

    topic: str
    partition: int
    batches: list[tuple[Any, int]]

    @staticmethod
    def last_offset(batch_future: Any, place: int) -> int:
        """The offset of the record at ``place`` of a delivered batch."""
        return int(batch_future.result().offset) + place


@dataclass
class Outbox:
    """Records queued per partition, then appended to ``producer`` (the aiokafka producer) by :meth:`send`."""

    producer: Any
    _records: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, Headers]]] = field(default_factory=dict)
    _parts: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)

    async def prepare(self, topics: Sequence[str]) -> None:
        """Wait for the topics' metadata (as ``send`` does) and note their partitions once."""
        for topic in topics:
            if topic not in self._parts:
                await self.producer.client._wait_on_metadata(topic)  # noqa: SLF001 - what send() awaits
                meta = self.producer._metadata  # noqa: SLF001
                self._parts[topic] = (sorted(meta.partitions_for_topic(topic)),
                                      list(meta.available_partitions_for_topic(topic)))

    def partition(self, topic: str, key: bytes | None) -> int:
        every, available = self._parts[topic]
        partitioner = self.producer._partitioner  # noqa: SLF001
        if key is not None and isinstance(partitioner, DefaultPartitioner):
            return every[partition(key, len(every))]  # its murmur2, memoized (app/core/murmur2.py)
        return int(partitioner(key, every, available))

    def add(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None,
            partition: int | None = None) -> tuple[str, int]:
        """Queue one record (``partition`` None: the partitioner's choice for ``key``); returns its (topic, partition)."""
        tp = (topic, self.partition(topic, key) if partition is None else partition)
        self._records.setdefault(tp, []).append((key, value, headers or []))
        return tp

    async def send(self, on_sent: Callable[[Sent], None]) -> int:
        """Append every queued record to the producer's accumulator; ``on_sent`` sees each partition's
        share. Returns the number of records appended."""
        records, self._records = self._records, {}
        acc = self.producer._message_accumulator  # noqa: SLF001
        timeout = self.producer._request_timeout_ms / 1000  # noqa: SLF001 - what send() passes
        total = 0
        for (topic, partition), rows in records.items():
            tp = TopicPartition(topic, partition)
            batches: list[tuple[Any, int]] = []
            for key, value, headers in rows:
                fut, place = await append(acc, tp, key, value, headers, timeout)
                if batches and batches[-1][0] is fut:
                    batches[-1] = (fut, place)
                else:
                    batches.append((fut, place))
            on_sent(Sent(topic, partition, batches))
            total += len(rows)
        return total


async def append(acc: Any, tp: TopicPartition, key: bytes | None, value: bytes | None, headers: Headers,
                 timeout: float) -> tuple[Any, int]:
    """``MessageAccumulator.add_message`` (aiokafka 0.14) without the record's own future: the future
    of the batch the record went into, and the record's place in that batch."""
    while True:
        if acc._closed:  # noqa: SLF001 - as add_message checks
            raise ProducerClosed()
        if acc._exception is not None:  # noqa: SLF001
            raise copy.copy(acc._exception)  # noqa: SLF001
        pending = acc._batches.get(tp)  # noqa: SLF001
        batch = pending[-1] if pending else acc._append_batch(acc.create_builder(), tp)  # noqa: SLF001
        meta = batch._builder.append(timestamp=None, key=key, value=value, headers=headers)  # noqa: SLF001
        if meta is not None:
            return batch.future, meta.offset
        # The batch is full: wake the sender and wait until it has taken the batch (as add_message).
        if not acc._waiter_future.done():  # noqa: SLF001
            acc._waiter_future.set_result(None)  # noqa: SLF001
        start = time.monotonic()
        await batch.wait_drain(timeout)
        timeout -= time.monotonic() - start
        if timeout <= 0:
            raise KafkaTimeoutError()
