"""Commits keep moving over offset holes (issue 9, item 8).

A compacted topic has holes in its offsets once the log cleaner has run: the records it
removed never come back. faust-streaming only commits a partition past a hole of 2 or more
if it knows the hole is one (its "gap" tracking); without that the group's committed offset
stops at the first hole for the life of the worker, and every restart or takeover
reprocesses the rest of the partition. This test compacts the real training topic on the
real broker, then lets a real worker consume it and waits for the group's committed offset
to reach the end of the partition.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.devtools import clients, samples
from app.service.admin import bootstrap
from app.devtools.scenarios import committed_offsets, end_offsets

pytestmark = pytest.mark.kafka

LIMIT = 180  # compaction waits for the log cleaner (up to log.cleaner.backoff.ms, 15 s by default)
ROUNDS = 6  # each round: one example that survives compaction, then 3 updates of one key (2 of them removed)

# Roll segments quickly and clean whatever is rolled: compaction never touches the active segment.
FAST_COMPACTION = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
                   "min.compaction.lag.ms": "0"}


def holed_training_records() -> list[tuple[str, dict]]:
    """``u0 d d d u1 d d d ...``: after compaction only the u's and the last d are left."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(ROUNDS):
        out.append((f"ex-keep-{i}", samples.example(f"ex-keep-{i}", rng.normal(size=samples.DIM), samples.LABELS[0])))
        for _ in range(3):
            out.append(("ex-dup", samples.example("ex-dup", rng.normal(size=samples.DIM), samples.LABELS[1])))
    return out


async def offsets_present(settings, tp: TopicPartition, end: int) -> list[int]:
    """Every offset the partition still holds below ``end``, read from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(settings.broker), group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen: list[int] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                seen += [r.offset for r in records if r.offset < end]
        return seen
    finally:
        await consumer.stop()


def big_holes(offsets: list[int]) -> list[tuple[int, int]]:
    """Holes of 2 or more offsets between records that are still there, as (first, last) missing.

    >>> big_holes([0, 4, 5, 7, 10])
    [(1, 3), (8, 9)]
    """
    return [(a + 1, b - 1) for a, b in zip(offsets, offsets[1:]) if b - a > 2]


async def compact(settings, topic: str, tp: TopicPartition, timeout: float) -> list[int]:
    """Produce the holed records, then tick until the log cleaner has removed the duplicates.

    Each tick is one more (unique) record: appending after ``segment.ms`` rolls the segment,
    which makes the records before it cleanable. Returns the offsets left.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(topic), FAST_COMPACTION)])
    finally:
        await admin.close()
    await clients.produce(topic, holed_training_records(), settings)
    deadline = time.monotonic() + timeout
    rng = np.random.default_rng(4)
    tick = 0
    while True:
        tick += 1
        await clients.produce(topic, [(f"ex-tick-{tick}", samples.example(
            f"ex-tick-{tick}", rng.normal(size=samples.DIM), samples.LABELS[0]))], settings)
        end = (await end_offsets(settings, [settings.topic(topic)]))[tp]
        left = await offsets_present(settings, tp, end)
        if len(big_holes(left)) >= ROUNDS - 1:
            return left
        assert time.monotonic() < deadline, f"the log cleaner did not compact {tp} in {timeout} s: offsets {left}"
        await asyncio.sleep(0.5)  # poll interval, not a wait for something to happen


async def wait_committed(settings, tp: TopicPartition, end: int, timeout: float) -> int | None:
    """Poll the group's committed offset for ``tp`` until it reaches ``end``; returns the last one seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = (await committed_offsets(settings)).get(tp, last)
        except Exception:  # noqa: BLE001 - coordinator not ready yet: ask again
            pass
        if last is not None and last >= end:
            return last
        await asyncio.sleep(0.25)
    return last


@pytest.mark.parametrize("stack", [1], indirect=True)
async def test_committed_offset_moves_over_compaction_holes(stack):
    settings = stack.settings
    topic = settings.topic("training")
    tp = TopicPartition(topic, 0)

    left = await asyncio.wait_for(compact(settings, "training", tp, timeout=90), LIMIT)
    end = (await end_offsets(settings, [topic]))[tp]
    holes = big_holes(left)
    print(f"offsets left after compaction: {left} (end {end}); holes of 2+: {holes}")
    assert left[-1] == end - 1, "the last record is live, so committing everything means committing the end offset"

    w = stack.worker("w")
    await stack.wait_ready(w)
    committed = await wait_committed(settings, tp, end, timeout=60)
    print(f"committed {committed} of end offset {end}")
    assert w.alive
    assert committed == end, (f"the group's committed offset stopped at {committed} (end offset {end}, holes {holes}): "
                              "commits do not move over offset holes")
