"""Incremental fetch sessions (app/service/fetchsession.py) on the real broker: a consumer in a session
gets every record once and in order, through pauses, seeks and a session the broker refuses, while its
requests name only the partitions that changed."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.service import fetchsession
from app.service.admin import bootstrap

PARTITIONS = 8


async def _topics(servers: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def _take(consumer: AIOKafkaConsumer, n: int, timeout: float = 30.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"timed out with {len(got)} of {n} records"
        batch = await consumer.getmany(timeout_ms=200)
        got += [r for recs in batch.values() for r in recs]
    return got


async def test_a_session_delivers_every_record_and_names_only_changed_partitions(broker):
    servers = bootstrap(broker)
    busy, idle = f"fs-busy-{uuid.uuid4().hex[:8]}", f"fs-idle-{uuid.uuid4().hex[:8]}"
    await _topics(servers, busy, idle)
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None, auto_offset_reset="earliest",
                                fetch_max_wait_ms=50)
    await producer.start()
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in (busy, idle) for p in range(PARTITIONS)]
        consumer.assign(tps)
        sessions = fetchsession.attach(consumer)

        async def send(p: int, values: list[bytes]) -> None:
            for v in values:
                await producer.send(busy, v, partition=p)
            await producer.flush()

        # Rounds of records on two partitions of one topic: each arrives once, in order.
        counts = None
        for rnd in range(6):
            if rnd == 2:  # every partition has its position by now: the session is settled
                counts = (sessions.full, sessions.incremental, sessions.partitions_wanted, sessions.partitions_sent)
            await send(rnd % 2, [f"{rnd}-{i}".encode() for i in range(10)])
            got = await _take(consumer, 10)
            assert [r.value for r in got] == [f"{rnd}-{i}".encode() for i in range(10)]
        assert sessions.full >= 1 and sessions.resets == 0
        full, incremental, wanted, sent = (now - then for now, then in zip(
            (sessions.full, sessions.incremental, sessions.partitions_wanted, sessions.partitions_sent), counts))
        # 16 partitions wanted per fetch, but only a partition whose position moved is named: one per round here.
        assert full == 0 and incremental >= 4 and wanted == 16 * incremental
        assert 4 <= sent <= incremental
        node = next(iter(sessions.by_node))
        assert sessions.by_node[node].session_id != 0

        # A paused partition is forgotten by the session: its new records stay on the broker until resumed.
        paused = TopicPartition(busy, 3)
        consumer.pause(paused)
        await send(3, [b"while-paused"])
        await send(4, [b"other"])
        got = await _take(consumer, 1)
        assert [r.value for r in got] == [b"other"]
        assert not await consumer.getmany(timeout_ms=500)
        consumer.resume(paused)
        assert [r.value for r in await _take(consumer, 1)] == [b"while-paused"]

        # A seek back is a changed position: the records are fetched again.
        consumer.seek(TopicPartition(busy, 0), 0)
        again = await _take(consumer, 30)
        assert [r.value for r in again] == [f"{rnd}-{i}".encode() for rnd in (0, 2, 4) for i in range(10)]

        # A session the broker no longer accepts (a wrong epoch): the next fetch is full, and nothing is lost.
        resets = sessions.resets
        sessions.by_node[node].epoch += 7
        await send(5, [b"after-reset"])
        assert [r.value for r in await _take(consumer, 1)] == [b"after-reset"]
        assert sessions.resets == resets + 1
        await send(6, [b"next"])
        assert [r.value for r in await _take(consumer, 1)] == [b"next"]
        assert sessions.resets == resets + 1, "a new session was opened"

        # Implied partitions keep a recent fetch time (Faust's event-path check reads it).
        before = time.time() * 1000
        await asyncio.sleep(1.5 * fetchsession.STAMP_EVERY)
        await send(7, [b"stamp"])
        await _take(consumer, 1)
        stamp = consumer.last_poll_timestamp(TopicPartition(idle, 5))
        assert stamp is not None and stamp >= before
    finally:
        await consumer.stop()
        await producer.stop()
