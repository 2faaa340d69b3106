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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition

from app.core.murmur2 import partition

Headers = Sequence[tuple[str, bytes]]


@dataclass
class Sent:
    """What one call appended to one partition: each record's delivery future, in order (its
    offset when delivered, its batch's error otherwise: a batch fails whole, and another batch
    of the same call may not)."""

    topic: str
    partition: int
    futures: list[Any]


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
            futures = [await acc.add_message(tp, key, value, timeout, timestamp_ms=None, headers=headers)
                       for key, value, headers in rows]
            on_sent(Sent(topic, partition, futures))
            total += len(rows)
        return total
