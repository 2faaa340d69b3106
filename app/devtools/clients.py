"""Plain aiokafka producers and consumers for the CLI, the demo, tests and benchmarks."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, AsyncIterator, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.service.admin import bootstrap
from app.settings import Settings, get_settings


def _bytes(v: Any) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    return orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY)


async def produce(topic: str, records: Iterable[tuple[Any, Any]], settings: Settings | None = None) -> int:
    """Send ``(key, value)`` pairs (dicts are JSON-encoded) to a catalog topic; returns the count."""
    s = settings or get_settings()
    # Idempotent: a retry after a broker failover must not write an input twice (a second record
    # at another offset would read as a worker redelivery that differs from the first).
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(s.broker), max_request_size=16 * 1024 * 1024,
                                linger_ms=5, acks="all", enable_idempotence=True)
    await producer.start()
    n = 0
    try:
        futures = []
        for key, value in records:
            futures.append(await producer.send(s.topic(topic), key=_bytes(key), value=_bytes(value)))
            n += 1
        await producer.flush()
        for f in futures:
            await f
    finally:
        await producer.stop()
    return n


async def records(topic: str, *, settings: Settings | None = None, from_beginning: bool = True,
                  idle_timeout: float | None = None) -> AsyncIterator[tuple[bytes | None, Any]]:
    """Yield ``(key, decoded JSON value)`` of a catalog topic; stops after ``idle_timeout`` s of silence."""
    s = settings or get_settings()
    consumer = AIOKafkaConsumer(s.topic(topic), bootstrap_servers=bootstrap(s.broker), group_id=None,
                                auto_offset_reset="earliest" if from_beginning else "latest",
                                enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        last = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch and idle_timeout is not None and time.monotonic() - last > idle_timeout:
                return
            for recs in batch.values():
                for r in recs:
                    last = time.monotonic()
                    yield r.key, (orjson.loads(r.value) if r.value is not None else None)
    finally:
        await consumer.stop()


async def collect(topic: str, n: int, timeout: float, *, settings: Settings | None = None,
                  where=lambda key, value: True) -> list[tuple[bytes | None, Any]]:
    """Read a topic from the beginning until ``n`` matching records or ``timeout`` seconds."""
    out: list[tuple[bytes | None, Any]] = []

    async def _read() -> None:
        async for key, value in records(topic, settings=settings):
            if where(key, value):
                out.append((key, value))
                if len(out) >= n:
                    return

    try:
        await asyncio.wait_for(_read(), timeout)
    except asyncio.TimeoutError:
        pass
    return out


async def tail_topic(topic: str, limit: int | None = None, from_beginning: bool = False) -> None:
    n = 0
    async for key, value in records(topic, from_beginning=from_beginning):
        sys.stdout.write(orjson.dumps({"key": key.decode(errors="replace") if key else None, "value": value}).decode() + "\n")
        sys.stdout.flush()
        n += 1
        if limit and n >= limit:
            return
