"""Every worker's full copy of the training state, tailed from the training table's changelog.

The training table is partitioned like any Faust table, but every worker needs *all*
examples, classifiers and taxonomies to classify its share of the objects. Faust's
``GlobalTable`` would do this but loses updates with several workers (faust-streaming
issue #283), so each worker reads the changelog itself: a group-less consumer assigned
every partition, from the beginning, applying each record to the model state. It is
``caught_up`` once it has read up to the end offsets it saw at start (readiness); ``settle``
(if given) runs in a thread just before that, e.g. to compact what bulk loading built.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)
#: How long the broker holds a fetch of a topic with nothing new. New records end the wait at
#: once (fetch.min.bytes is 1), so this is not a delay for them; it is how often an idle tail asks
#: again. At 20 ms, three replicas and the console feed made ~170 fetches/s: 16 % of an idle
#: worker's CPU, on the event loop (bench/RESULTS.md, "Latency, GC and memory").
IDLE_FETCH_WAIT_MS = 500

Apply = Callable[[str, bytes | None], None]


class ChangelogReplica:
    def __init__(self, bootstrap: str, topic: str, apply: Apply, *, fetch_wait_ms: int = IDLE_FETCH_WAIT_MS,
                 upstream: Callable[[], Awaitable[None]] | None = None, settle: Callable[[], None] | None = None):
        self.bootstrap, self.topic, self.apply, self.settle = bootstrap, topic, apply, settle
        # Caught up means: with the changelog's end *after* ``upstream()`` returned (the training
        # replica: after the group's training agent has processed the training topic's backlog).
        self.upstream = upstream
        self.fetch_wait_ms = fetch_wait_ms
        self.caught_up = asyncio.Event()
        self.applied = 0
        self.failed = 0

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        # The changelog topic is created by Faust when the table starts: wait for it.
        while True:
            parts = consumer.partitions_for_topic(self.topic)
            if parts:
                return [TopicPartition(self.topic, p) for p in sorted(parts)]
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=self.fetch_wait_ms,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            tps = await self._partitions(consumer)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            upstream = asyncio.ensure_future(self.upstream()) if self.upstream is not None else None
            pending: set[TopicPartition] | None = None
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                if batches:  # compiling a taxonomy or embedding prompts takes a while: not on the event loop
                    await asyncio.to_thread(self._apply_all, [r for records in batches.values() for r in records])
                if pending is None and (upstream is None or upstream.done()):
                    if upstream is not None:
                        upstream.result()  # raises what it raised
                    end = await consumer.end_offsets(tps)  # taken after the upstream backlog is in the changelog
                    pending = {tp for tp, off in end.items() if off > 0}
                    if not pending:
                        await self._caught_up()
                if pending:
                    for tp in list(pending):
                        if await consumer.position(tp) >= end[tp]:
                            pending.discard(tp)
                    if not pending:
                        log.info("replica of %s caught up: %d records", self.topic, self.applied)
                        await self._caught_up()
        finally:
            await consumer.stop()

    async def _caught_up(self) -> None:
        if self.settle is not None:
            try:
                await asyncio.to_thread(self.settle)
            except Exception:  # the state stays correct, only slower to search: never block readiness
                log.exception("settling %s after catch-up failed", self.topic)
        self.caught_up.set()

    def _apply_all(self, records: list[Any]) -> None:
        for rec in records:
            self._apply(rec.key, rec.value)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        try:
            self.apply(key.decode(), value)
            self.applied += 1
        except Exception:  # a bad state record must not stop the replica
            self.failed += 1
            log.exception("could not apply training record %r", key[:200])
