"""Classification jobs on the workers: the start agent, every worker's view of all jobs, the runner.

- **Start**: the ``jobs`` agent validates each start record (``app.classify.jobs.start_step``) and
  writes the job to the ``jobs`` table, or dead-letters it. ``POST /v1/classifications``
  publishes such a record (``app/service/web_weaviate.py``).
- **View**: every worker tails the ``jobs`` and ``job-progress`` changelogs (as the training
  replica does), so any worker answers for any job, and each worker's runner sees every job.
- **Runner**: a task on each worker walks the stored-objects partitions it owns, one chunk of
  ``job_chunk`` keys per (job, partition) at a time: the chunk is classified in the pool, its
  results and stored-object updates go through the sink and are **acknowledged** (producer
  flush) before the partition's progress is written. A worker killed mid-chunk loses at most
  that chunk's progress write: its new owner redoes the chunk, producing the same results
  (same ``result_id``, same bytes) and the same counts. A job walks the keys its partition held
  when the job first ran there (objects stored later are not waited for, as in Weaviate, which
  lists the unclassified objects when a job starts).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections import defaultdict
from typing import Any

import orjson

from app.classify.assembly import partition_of
from app.classify.expiry import now_ms
from app.classify.jobs import Progress, chunk_step, job_body, progress_key, start_step
from app.classify.outcome import Record, TableWrite
from app.schemas.deadletter import Source
from app.service.metrics import INPUTS
from app.service.replica import ChangelogReplica
from app.service.runtime import Runtime
from app.service.tables import JOB_PROGRESS, JOBS, STORED_OBJECTS

log = logging.getLogger(__name__)
IDLE = 0.5  # s between passes when no job has work here


class JobsView:
    """All jobs and all their progress, from the changelogs (applied in the replica's thread)."""

    def __init__(self, partitions: int):
        self.partitions = partitions
        self._lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.progress: defaultdict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self.pending: dict[str, dict[str, Any]] = {}  # started through this worker, not in the changelog yet
        self.replicas: list[ChangelogReplica] = []

    @property
    def caught_up(self) -> bool:
        """Both changelogs read up to where they were when the worker started (else a job may be missing)."""
        return all(r.caught_up.is_set() for r in self.replicas)

    async def wait_caught_up(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.gather(*(r.caught_up.wait() for r in self.replicas)), timeout)
        except asyncio.TimeoutError:
            pass
        return self.caught_up

    def apply_job(self, key: str, value: bytes | None) -> None:
        with self._lock:
            if value is None:
                self.jobs.pop(key, None)
                self.progress.pop(key, None)
            else:
                self.jobs[key] = orjson.loads(value)
                self.pending.pop(key, None)

    def apply_progress(self, key: str, value: bytes | None) -> None:
        job_id, partition = orjson.loads(key)[:2]
        with self._lock:
            if value is None:
                self.progress.get(job_id, {}).pop(partition, None)
            else:
                self.progress[job_id][partition] = orjson.loads(value)

    def add_pending(self, doc: dict[str, Any], ttl_ms: int) -> None:
        """A job this worker just published: shown until the changelog has it (or ``ttl_ms`` passed:
        its record was refused after all, e.g. the class was deleted in between)."""
        with self._lock:
            self.pending = {k: v for k, v in self.pending.items() if doc["started"] - v["started"] < ttl_ms}
            if doc["id"] not in self.jobs:
                self.pending[doc["id"]] = doc

    def running(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j for j in self.jobs.values()
                    if job_body(j, self.progress.get(j["id"], {}), self.partitions)["status"] == "running"]

    def body(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self.jobs.get(job_id) or self.pending.get(job_id)
            return None if job is None else job_body(job, dict(self.progress.get(job_id, {})), self.partitions)

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            ids = sorted({**self.pending, **self.jobs}.items(), key=lambda kv: (kv[1]["started"], kv[0]))
        return [b for b in (self.body(i) for i, _ in ids) if b is not None]


class JobRunner:
    def __init__(self, rt: Runtime, view: JobsView):
        self.rt, self.view = rt, view
        self.stored = rt.tables.by_name[STORED_OBJECTS]
        self.progress = rt.tables.by_name[JOB_PROGRESS]
        self.read = rt.tables.reader(STORED_OBJECTS)
        self.partitions = view.partitions
        self.keys: dict[str, dict[int, list[bytes]]] = {}  # job -> partition -> its sorted keys (this worker's)
        self.assigned: frozenset[int] = frozenset()

    def _active(self) -> frozenset[int]:
        topic = self.stored.changelog_topic.get_topic_name()
        return frozenset(tp.partition for tp in self.rt.app.assignor.assigned_actives() if tp.topic == topic)

    def _ready(self) -> bool:
        app = self.rt.app
        return not (app.rebalancing or app.in_recovery
                    or not app.tables.recovery.completed.is_set())  # type: ignore[attr-defined]

    async def _partition_keys(self, job_id: str) -> dict[int, list[bytes]]:
        """Keys of the stored objects by partition, sorted: the order a job walks (stable across restarts)."""
        if job_id not in self.keys:
            def split() -> dict[int, list[bytes]]:
                out: defaultdict[int, list[bytes]] = defaultdict(list)
                for k in list(self.stored.data.keys()):
                    out[partition_of(k, self.partitions)].append(k)
                return {p: sorted(ks) for p, ks in out.items()}
            self.keys[job_id] = await asyncio.to_thread(split)
        return self.keys[job_id]

    async def tick(self) -> int:
        """One pass: a chunk of every running (job, partition) this worker owns; the chunks done."""
        if not self._ready():
            return 0
        active = self._active()
        if active != self.assigned:  # partitions moved: their key lists are rebuilt
            self.keys.clear()
            self.assigned = active
        jobs = self.view.running()
        for gone in set(self.keys) - {j["id"] for j in jobs}:
            del self.keys[gone]
        work = 0
        for job in jobs:
            for p in sorted(active):
                if not self._ready() or self._active() != active:
                    return work
                work += await self._chunk(job, p)
        return work

    async def _chunk(self, job: dict[str, Any], p: int) -> int:
        pk = progress_key(job["id"], p, self.partitions)
        prog = Progress.load(self.progress.data.get(pk))
        if prog.done or prog.error:
            return 0
        keys = (await self._partition_keys(job["id"])).get(p, [])
        start = bisect.bisect_right(keys, prog.cursor.encode(errors="surrogateescape")) if prog.cursor else 0
        chunk = keys[start:start + self.rt.settings.job_chunk]
        last = start + len(chunk) >= len(keys)
        source = Source(topic=self.stored.changelog_topic.get_topic_name(), partition=p, offset=0)
        now = now_ms()
        try:
            pairs, new = await self.rt.run(chunk_step, self.rt.state, job, chunk, self.read, source, prog, now, last)
        except Exception as e:  # noqa: BLE001 - a bug: the job fails with it rather than looping on it
            log.exception("job %s partition %d failed", job["id"], p)
            new = Progress(prog.cursor, prog.count, prog.countSucceeded, prog.countFailed, True, now,
                           f"classification failed: {type(e).__name__}: {e}")
            pairs = []
        if not self._owns(p):  # the partition moved while the chunk was classified: its new owner does it
            return 0
        INPUTS.labels("job-items").inc(len(pairs))
        await self.rt.sink.emit(pairs)
        # results and stored objects acknowledged first: progress never runs ahead of its outputs
        await self.rt.app.producer.flush()
        if self._owns(p):  # else the new owner redoes the chunk (same results), from the progress it recovered
            self.rt.sink.write([TableWrite(JOB_PROGRESS, pk, new.value(job["id"], p, now))])
        return 1

    def _owns(self, p: int) -> bool:
        return self._ready() and p in self._active()

    async def run(self) -> None:
        while True:
            try:
                work = await self.tick()
            except Exception:  # noqa: BLE001 - a failed pass must not stop the runner; the next one retries
                log.exception("job runner pass failed")
                work = 0
            await asyncio.sleep(0 if work else IDLE)


def register(rt: Runtime, bootstrap: str) -> JobsView:
    view = JobsView(rt.settings.topic_partitions or rt.tables.by_name[STORED_OBJECTS].partitions or 8)
    jobs_replica = ChangelogReplica(bootstrap, rt.tables.changelog(JOBS), view.apply_job)
    progress_replica = ChangelogReplica(bootstrap, rt.tables.changelog(JOB_PROGRESS), view.apply_progress)
    view.replicas = [jobs_replica, progress_replica]
    runner = JobRunner(rt, view)

    @rt.agent("jobs", "jobs")
    async def jobs(stream):
        await rt.replica.caught_up.wait()  # class declarations and taxonomies are checked
        async for batch in stream.take_events(rt.settings.batch_size, rt.settings.batch_within):
            records = [Record.of(e.message) for e in batch]
            INPUTS.labels("jobs").inc(len(records))
            outcomes = await rt.run(start_step, rt.state, records, now_ms())
            await rt.sink.emit(zip(records, outcomes))

    @rt.app.task
    async def jobs_view() -> None:
        await asyncio.gather(jobs_replica.run(), progress_replica.run())

    @rt.app.task
    async def job_runner() -> None:
        await rt.replica.caught_up.wait()
        await runner.run()

    return view
