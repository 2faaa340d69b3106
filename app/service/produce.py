"""Outputs of one sink call as one record batch per partition, handed to aiokafka whole.

``AIOKafkaProducer.send`` costs one partitioner call (with a metadata lookup that builds a set),
one future and one accumulator append per record, behind Faust's own ``Producer.send`` wrapper
and its sensors: on the hot path that was about a fifth of the event loop's time. Here each
(topic, partition) gets one ``BatchBuilder`` (``producer.create_batch()``) filled in input order
and submitted with ``send_batch``: one future per batch. Partitions are chosen by the
producer's own partitioner (murmur2 of the key, like every Kafka client), so keys land where
``send`` would have put them. Delivery is unchanged: the batches sit in the same accumulator,
so ``producer.flush()`` -- which Faust's commit awaits -- waits for them too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Headers = Sequence[tuple[str, bytes]]


@dataclass
class Sent:
    """One submitted batch: where it went, how many records, and its delivery future
    (resolved with the batch's base offset, or failed with the batch's error)."""

    topic: str
    partition: int
    count: int
    future: Any


@dataclass
class PartitionBatches:
    """Collect records per partition, then :meth:`send` them; ``producer`` is the aiokafka producer."""

    producer: Any
    _open: dict[tuple[str, int], Any] = field(default_factory=dict)
    _counts: dict[tuple[str, int], int] = field(default_factory=dict)
    _full: list[tuple[tuple[str, int], Any, int]] = field(default_factory=list)
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
        return int(self.producer._partitioner(key, every, available))  # noqa: SLF001

    def add(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None,
            partition: int | None = None) -> tuple[str, int]:
        """Append one record (``partition`` None: the partitioner's choice for ``key``); returns its (topic, partition)."""
        tp = (topic, self.partition(topic, key) if partition is None else partition)
        builder = self._open.get(tp)
        if builder is None:
            builder = self._open[tp] = self.producer.create_batch()
            self._counts[tp] = 0
        if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:  # full
            self._full.append((tp, builder, self._counts[tp]))
            builder = self._open[tp] = self.producer.create_batch()
            self._counts[tp] = 0
            if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes does not fit an empty batch")
        self._counts[tp] += 1
        return tp

    async def send(self, on_sent: Callable[[Sent], None]) -> int:
        """Submit every batch, full ones first (per partition in the order they were filled); ``on_sent``
        sees each. Returns the number of records submitted."""
        batches = self._full + [(tp, b, self._counts[tp]) for tp, b in self._open.items()]
        self._full, self._open, self._counts = [], {}, {}
        total = 0
        for (topic, partition), builder, count in batches:
            if not count:
                continue
            fut = await self.producer.send_batch(builder, topic, partition=partition)
            on_sent(Sent(topic, partition, count, fut))
            total += count
        return total
