"""The sweeper: a Faust timer that keeps the worker's tables bounded.

Every ``sweep_interval`` seconds it examines at most ``sweep_batch`` keys of each table that has
a TTL (``app/settings.py``: ``stored_objects_retention``, ``media_incomplete_ttl``,
``media_done_ttl``, ``media_cache_ttl``, ``media_store_retention``, twice ``classify_page_ttl``
for ``request-results``; 0 = forever) and removes what the pure decisions of
``app/classify/expiry.py`` and ``app.classify.assembly.expire`` say has expired, through the sink
(deletions, and a ``media_incomplete`` dead letter per dropped media item).

- **Bounded work on the event loop.** A pass over a table starts from a snapshot of its keys,
  taken in a thread (for the memory store a list of references to keys already in memory; for
  RocksDB a copy of the keys), then works through it ``sweep_batch`` keys per tick; values are
  read, decided and deleted on the loop, so no table changes under a decision. A key written
  after the snapshot waits for the next pass: an entry lives at most its TTL plus one pass.
- **Only what this worker owns.** A key is considered only when its changelog partition is
  one of this worker's active partitions (a memory table may still hold keys of partitions
  that moved away), and nothing is swept during a rebalance or table recovery.
- **Media assembly takes turns with the media agent** (``Tables.locks``): an item is never
  dropped between the read and the write of a chunk's step.
- Timer writes work with our tables: they use the partitioner, so Faust needs no current
  event (checked against the real broker by ``tests/integration/test_bounded_state.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import faust
from faust.types import TableT

from app.classify.assembly import expire as expire_assembly
from app.classify.assembly import partition_of
from app.classify.expiry import Expiry, expire_plain, now_ms
from app.classify.outcome import Outcome
from app.service.metrics import EXPIRED
from app.service.runtime import Runtime
from app.service.tables import (JOB_PROGRESS, JOBS, MEDIA_ASSEMBLY, MEDIA_CACHE, MEDIA_STORE, REQUEST_RESULTS,
                                STORED_OBJECTS)

log = logging.getLogger(__name__)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Sweeper:
    def __init__(self, rt: Runtime):
        self.rt = rt
        s = rt.settings
        self.ttl = {STORED_OBJECTS: _ms(s.stored_objects_retention), MEDIA_CACHE: _ms(s.media_cache_ttl),
                    JOBS: _ms(s.jobs_retention), JOB_PROGRESS: _ms(s.jobs_retention),
                    MEDIA_STORE: _ms(s.media_store_retention),
                    # an expired page token or task still says so for one more TTL (app/classify/requeststore.py)
                    REQUEST_RESULTS: _ms(2 * s.classify_page_ttl)}
        self.assembly_ttls = (_ms(s.media_incomplete_ttl), _ms(s.media_done_ttl))
        self.names = [n for n, t in self.ttl.items() if t > 0] + ([MEDIA_ASSEMBLY] if any(self.assembly_ttls) else [])
        self.read_assembly = rt.tables.reader(MEDIA_ASSEMBLY)
        self.passes: dict[str, tuple[list[bytes], int]] = {}  # table -> (key snapshot, next position)
        self.first_seen: defaultdict[str, dict[bytes, int]] = defaultdict(dict)  # values without "at"

    async def sweep(self, now: int | None = None) -> dict[str, int]:
        """One tick: entries removed per table."""
        app = self.rt.app
        if app.rebalancing or app.in_recovery or not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return {}
        now = now_ms() if now is None else now
        return {name: await self._sweep(name, now) for name in self.names}

    async def _sweep(self, name: str, now: int) -> int:
        table = self.rt.tables.by_name[name]
        partitions = table.partitions
        assert partitions is not None  # app/service/tables.py always sets them
        keys, pos = self.passes.get(name, ([], 0))
        if pos >= len(keys):
            keys, pos = await self._snapshot(name, table), 0
        batch = keys[pos:pos + self.rt.settings.sweep_batch]
        self.passes[name] = (keys, pos + len(batch))
        topic = table.changelog_topic.get_topic_name()
        active = {tp.partition for tp in self.rt.app.assignor.assigned_actives() if tp.topic == topic}
        seen, removed = self.first_seen[name], 0
        async with self.rt.tables.locks[name]:
            for key in batch:
                if partition_of(key, partitions) not in active:
                    continue
                value = table.data.get(key)
                if value is None:
                    seen.pop(key, None)
                    continue
                exp = self._decide(name, key, value, now, partitions)
                if exp is None:
                    continue
                seen.pop(key, None)
                if exp.dead_letter is not None:
                    record, why = exp.dead_letter
                    await self.rt.sink.one(record, Outcome.reject(why, exp.writes))
                else:
                    self.rt.sink.write(exp.writes)
                EXPIRED.labels(name).inc()
                removed += 1
        return removed

    def _decide(self, name: str, key: bytes, value: bytes, now: int, partitions: int) -> Expiry | None:
        if name == MEDIA_ASSEMBLY:
            incomplete, done = self.assembly_ttls
            return expire_assembly(key, value, self.read_assembly, now=now, incomplete_ttl=incomplete, done_ttl=done,
                                   first_seen=self.first_seen[name], partitions=partitions,
                                   topic=self.rt.settings.topic("media"))
        writes = expire_plain(name, key, value, now=now, ttl=self.ttl[name], first_seen=self.first_seen[name])
        return Expiry(writes) if writes else None

    async def _snapshot(self, name: str, table: TableT) -> list[bytes]:
        try:  # off the loop: a RocksDB table's keys are read from disk
            keys: list[bytes] = await asyncio.to_thread(lambda: list(table.data.keys()))
        except Exception as e:  # noqa: BLE001 - e.g. a rebalance closed a partition's database: next tick
            log.warning("sweeper: could not list the keys of %s (%r); retrying next tick", name, e)
            return []
        seen = self.first_seen[name]
        if seen:  # forget legacy keys that are gone
            present = set(keys)
            self.first_seen[name] = {k: t for k, t in seen.items() if k in present}
        return keys


def register(rt: Runtime) -> Sweeper:
    sweeper = Sweeper(rt)

    @rt.app.timer(interval=rt.settings.sweep_interval, name="sweeper")
    async def sweep() -> None:
        try:
            removed = await sweeper.sweep()
        except Exception:  # a failed tick must not stop the timer; the next one retries
            log.exception("sweeper tick failed")
            return
        if any(removed.values()):
            log.info("sweeper removed %s", {k: v for k, v in removed.items() if v})

    return sweeper
