"""Fault scenarios against the real broker: the one place their logic lives.

``tests/integration/test_faults.py`` asserts on the stats these functions return and
``bench/reliability.py`` prints them as a table; neither repeats the logic. Each scenario
takes a ``Stack`` (``app/devtools/stack.py``: an isolated app id and topic prefix
on a shared broker), runs real worker processes, injects one fault and returns::

    {"scenario", "events_in", "results", "dead_letters", "duplicates", "lost", "recovery_s", ...}

- ``results``: distinct ``result_id``s on the results topic; ``dead_letters``: distinct
  dead letters (by source topic/partition/offset);
- ``duplicates``: result (and dead-letter) records beyond the first per id, i.e. the
  redeliveries of at-least-once; ``mismatched`` counts duplicates whose value differs from
  the first record (idempotency says it must be 0);
- ``lost``: input events with neither a result nor a dead letter;
- ``recovery_s``: seconds from the fault (kill -9, or the broker reachable again) until
  every partition that still had work produces results again, measured with the
  ``classified_at`` header the worker stamps on each result.

Nothing here sleeps in place of synchronisation: every wait polls a condition with a
deadline, and a scenario that runs out of time returns its stats (``lost`` > 0) instead of
hanging.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.devtools import localkafka, samples
from app.service.admin import bootstrap, ensure_topics
from app.settings import Settings
from app.schemas.vectors import encode_vector

log = logging.getLogger(__name__)
CHUNK = 5_000  # events per produce call


# -- waiting ---------------------------------------------------------------------------
async def until(cond: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Poll ``cond`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


# -- the output side: results and dead letters, read from the beginning ----------------------
class Ledger:
    """Tails a stack's results and deadletter topics in the background (``async with``).

    Reads ``read_committed`` so transactional (exactly_once) output is counted as
    consumers see it. aiokafka's consumer retries through a broker outage by itself; an
    error escaping it is counted and the loop carries on.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.results_topic = settings.topic("results")
        self.dead_topic = settings.topic("deadletter")
        self.results: dict[str, bytes] = {}  # result_id -> first value seen
        self.items: set[str] = set()  # item ids with at least one result
        self.result_records = 0
        self.duplicates = 0
        self.mismatched: list[str] = []  # result ids whose redelivery differed
        self.dead: dict[tuple[str, int, int], dict] = {}  # source (topic, partition, offset) -> dead letter
        self.dead_keys: dict[str, list[dict]] = defaultdict(list)  # record key -> dead letters
        self.dead_duplicates = 0
        self.flow: list[tuple[int, int]] = []  # (classified_at ms, source partition) per result record
        self.positions: dict[TopicPartition, int] = {}
        self.errors = 0
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "Ledger":
        started = asyncio.Event()
        self._task = asyncio.create_task(self._run(started))
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({self._task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # raises the reader's error
        if not started.is_set():
            raise TimeoutError("could not start the results reader within 30 s")
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None, "set by __aenter__"
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self, started: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self.results_topic, self.dead_topic, bootstrap_servers=bootstrap(self.settings.broker),
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed", fetch_max_wait_ms=100,
            max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        await consumer.start()
        started.set()
        try:
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
                    for tp, records in batches.items():
                        for rec in records:
                            self._take(tp.topic, rec)
                    for tp in consumer.assignment():
                        self.positions[tp] = await consumer.position(tp)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - keep reading through broker trouble
                    self.errors += 1
                    await asyncio.sleep(0.2)
        finally:
            await consumer.stop()

    def _take(self, topic: str, rec) -> None:
        value = orjson.loads(rec.value)
        if topic == self.results_topic:
            self.result_records += 1
            rid = value["result_id"]
            first = self.results.get(rid)
            if first is None:
                self.results[rid] = rec.value
                self.items.add(value["item_id"])
            else:
                self.duplicates += 1
                if first != rec.value:
                    self.mismatched.append(rid)
            headers = dict(rec.headers or ())
            at = headers.get("classified_at")
            if at is not None:
                self.flow.append((int(at), value["source"]["partition"]))
        else:
            src = value["source"]
            where = (src["topic"], src["partition"], src["offset"])
            if where in self.dead:
                self.dead_duplicates += 1
                return
            self.dead[where] = value
            self.dead_keys[value.get("key") or ""].append(value)

    def answered(self, ids: Iterable[str]) -> set[str]:
        """The ids (record keys) with a result or a dead letter."""
        return {i for i in ids if i in self.items or i in self.dead_keys}

    async def drain(self, timeout: float) -> bool:
        """Wait until this reader has read both topics up to their current end offsets."""
        end = await end_offsets(self.settings, [self.results_topic, self.dead_topic])
        return await until(lambda: all(self.positions.get(tp, 0) >= off for tp, off in end.items() if off), timeout)

    def recovery_seconds(self, t_fault: float) -> float | None:
        """Seconds from ``t_fault`` (epoch s) until the last partition with work after it flows again."""
        t0 = int(t_fault * 1000)
        first: dict[int, int] = {}
        for at, part in self.flow:
            if at >= t0 and (part not in first or at < first[part]):
                first[part] = at
        return round((max(first.values()) - t0) / 1000, 2) if first else None


# -- Kafka helpers ---------------------------------------------------------------------
async def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(settings.broker), group_id=None,
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = []
        for t in topics:
            parts = consumer.partitions_for_topic(t)
            while not parts:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
                parts = consumer.partitions_for_topic(t)
            tps += [TopicPartition(t, p) for p in parts]
        return await consumer.end_offsets(tps)
    finally:
        await consumer.stop()


async def committed_offsets(settings: Settings) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        got = await admin.list_consumer_group_offsets(settings.app_id)
        return {tp: om.offset for tp, om in got.items()}
    finally:
        await admin.close()


async def settle(stack, ledger: Ledger, topics: Iterable[str] = ("objects", "training"), timeout: float = 60) -> bool:
    """Wait until the worker group has committed every input record, then drain the output.

    Only then are the duplicate counts final: nothing uncommitted is left to be redelivered.
    """
    names = [stack.settings.topic(t) for t in topics]
    deadline = time.monotonic() + timeout
    end = await end_offsets(stack.settings, names)
    while True:
        try:
            committed = await committed_offsets(stack.settings)
        except Exception:  # noqa: BLE001 - coordinator moving after a fault: ask again
            committed = {}
        behind = {f"{tp.topic}-{tp.partition}": (committed.get(tp), off)
                  for tp, off in end.items() if committed.get(tp, 0) < off}
        if not behind:
            break
        if time.monotonic() >= deadline:
            log.warning("not committed after %.0f s, partition: (committed, end): %s", timeout, behind)
            return False
        await asyncio.sleep(0.25)
    return await ledger.drain(max(1.0, deadline - time.monotonic()))


# -- the input side ----------------------------------------------------------------------
async def produce_chunks(stack, topic: str, records: list, chunk: int = CHUNK) -> int:
    n = 0
    for i in range(0, len(records), chunk):
        n += await stack.produce(topic, records[i:i + chunk])
    return n


async def trained_worker(stack, name: str = "w", **env: str):
    """A ready worker with the sample training set applied."""
    training = samples.training_records()
    w = stack.worker(name, **env)
    await stack.wait_ready(w)
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))
    return w, training


def _stats(name: str, ledger: Ledger, ids: list[str], *, t_fault: float | None = None, **extra) -> dict:
    answered = ledger.answered(ids)
    missing = [i for i in ids if i not in answered]
    return {
        "scenario": name,
        "events_in": len(ids),
        "results": len(ledger.results),
        "dead_letters": len(ledger.dead),
        "duplicates": ledger.duplicates + ledger.dead_duplicates,
        "lost": len(missing),
        "recovery_s": ledger.recovery_seconds(t_fault) if t_fault is not None else None,
        "mismatched": len(ledger.mismatched),
        "missing_sample": missing[:10],
        "reader_errors": ledger.errors,
        **extra,
    }


# -- scenario 1: kill -9 mid-stream, restart --------------------------------------------------
async def _fault_mid_stream(stack, ledger, objs, at: float, timeout: float,
                            fault: Callable[[], None]) -> tuple[bool, float, int]:
    """Produce ``objs`` in the background; once ``at`` of them have results, inject ``fault``.

    Returns (kill point reached, wall time of the fault, results seen before it)."""
    producing = asyncio.create_task(produce_chunks(stack, "objects", [(k, v) for k, v, _ in objs]))
    try:
        reached = await until(lambda: len(ledger.items) >= len(objs) * at, timeout)
        before, t_fault = len(ledger.items), time.time()
        fault()
        await producing
    finally:
        if not producing.done():
            producing.cancel()
    return reached, t_fault, before


async def _finish(stack, ledger, ids, timeout: float) -> tuple[bool, bool]:
    """Wait until every id is answered, then until the group has committed everything."""
    complete = await until(lambda: len(ledger.answered(ids)) == len(ids), timeout)
    return complete, await settle(stack, ledger)


async def kill_and_restart(stack, n: int = 50_000, kill_after: float = 0.3, timeout: float = 150) -> dict:
    """One worker, ``n`` events; kill -9 it once ``kill_after`` of them have results, restart it."""
    w, _ = await trained_worker(stack)
    objs = samples.objects(n, run=f"kill-{uuid.uuid4().hex[:6]}")
    ids = [k for k, _, _ in objs]
    async with Ledger(stack.settings) as ledger:
        restarted = []

        def crash() -> None:
            w.kill()
            restarted.append(stack.worker("w"))  # same data dir, as a supervisor would restart it

        reached, t_fault, before_kill = await _fault_mid_stream(stack, ledger, objs, kill_after, timeout, crash)
        w2 = restarted[0]
        complete, settled = await _finish(stack, ledger, ids, timeout)
        return _stats("kill -9 one worker mid-stream, restart it", ledger, ids, t_fault=t_fault,
                      killed_at_results=before_kill, kill_point_reached=reached, complete=complete,
                      settled=settled, worker_alive=w2.alive)


# -- scenario 2: two workers, one dies, the other takes over ----------------------------------
async def takeover(stack, n: int = 20_000, kill_after: float = 0.3, timeout: float = 150) -> dict:
    """Two workers in one group; kill -9 one mid-stream; the survivor classifies everything.

    Afterwards the survivor owns every partition, so its tables must hold every key of the
    changelogs: all training records and all stored objects, the dead worker's share included.
    """
    a, training = await trained_worker(stack, "a")
    b = stack.worker("b")
    await stack.wait_ready(b, min_training=len(training))
    await stack.wait_ready(a, min_training=len(training))  # rebalanced over both
    objs = samples.objects(n, run=f"take-{uuid.uuid4().hex[:6]}")
    ids = [k for k, _, _ in objs]
    async with Ledger(stack.settings) as ledger:
        reached, t_fault, _ = await _fault_mid_stream(stack, ledger, objs, kill_after, timeout, a.kill)
        complete, settled = await _finish(stack, ledger, ids, timeout)
        health = await asyncio.to_thread(_ready_health, b, 60)
        tables = (health or {}).get("tables", {})
        return _stats("two workers, kill -9 one: the other takes over", ledger, ids, t_fault=t_fault,
                      kill_point_reached=reached, complete=complete, settled=settled, survivor_alive=b.alive,
                      survivor_ready=bool(health and health.get("ready")),
                      training_table=tables.get("training"), training_expected=len(training),
                      objects_table=tables.get("stored-objects"), objects_expected=n)


def _ready_health(w, timeout: float) -> dict | None:
    try:
        return w.wait_ready(timeout)
    except (TimeoutError, RuntimeError):
        return w.health()


# -- scenario 3: the broker stops and comes back -----------------------------------------------
def owned_broker(settings: Settings) -> localkafka.Broker | None:
    """The local broker this environment names, if it is the stack's broker and ours to restart."""
    b = localkafka.Broker.from_env()
    port = int(bootstrap(settings.broker).rsplit(":", 1)[1])
    if b.port != port or not b.pid():
        return None
    return b


async def broker_restart(stack, n: int = 30_000, stop_after: float = 0.2, timeout: float = 150) -> dict:
    """Stop the broker mid-stream and start it again; the worker carries on by itself.

    Half the events are produced before the outage, half after. The broker is running again
    when this returns, also when it fails.
    """
    b = owned_broker(stack.settings)
    if b is None:
        raise RuntimeError("the broker is not a local broker this environment may restart "
                           "(LABELSTREAM_KAFKA_PORT must name the port of LABELSTREAM_BROKER, started by scripts/kafka)")
    w, _ = await trained_worker(stack)
    objs = samples.objects(n, run=f"brk-{uuid.uuid4().hex[:6]}")
    ids = [k for k, _, _ in objs]
    first, second = [(k, v) for k, v, _ in objs[: n // 2]], [(k, v) for k, v, _ in objs[n // 2:]]
    async with Ledger(stack.settings) as ledger:
        await produce_chunks(stack, "objects", first)
        reached = await until(lambda: len(ledger.items) >= n * stop_after, timeout)
        t_stop = time.monotonic()
        try:
            await asyncio.to_thread(localkafka.stop, b)
        finally:
            await asyncio.to_thread(localkafka.start, b)
        t_back = time.time()
        down_s = round(time.monotonic() - t_stop, 2)
        await produce_chunks(stack, "objects", second)
        complete, settled = await _finish(stack, ledger, ids, timeout)
        return _stats("broker stopped and restarted mid-stream", ledger, ids, t_fault=t_back,
                      stop_point_reached=reached, broker_down_s=down_s, complete=complete, settled=settled,
                      worker_alive=w.alive)


# -- scenario 4: malformed records interleaved with good ones ------------------------------------
MAX_PAYLOAD = 64 * 1024  # the burst worker's LABELSTREAM_MAX_PAYLOAD_BYTES


def _obj(i: int, **over) -> dict:
    return {"id": f"bad-{i}", "class": samples.CLASS, "properties": {"n": i},
            "vector": encode_vector(np.ones(samples.DIM)), **over}


def bad_objects() -> list[tuple[str, bytes | None, str, str | None]]:
    """``(key, value, expected reason, expected path)`` for each kind of bad object event."""
    dumps = orjson.dumps
    kinds: list[tuple[bytes | None, str, str | None]] = [
        (b"{not json", "invalid_json", None),
        (b"\xff\xfe\x00binary", "invalid_json", None),
        (b"", "invalid_json", None),
        (b"[1, 2, 3]", "invalid_json", None),
        (b'"just a string"', "invalid_json", None),
        (None, "empty_value", None),
        (dumps({"class": samples.CLASS, "vector": [1.0] * samples.DIM}), "schema_violation", "id"),
        (dumps({"id": "x", "vector": [1.0] * samples.DIM}), "schema_violation", "class"),
        (dumps(_obj(0, vector=[1.0, "x"])), "schema_violation", "vector"),
        (dumps(_obj(0, vector="not base64!")), "schema_violation", "vector"),
        (dumps(_obj(0, vector=[])), "schema_violation", "vector"),
        (dumps(_obj(0, properties=[1, 2])), "schema_violation", "properties"),
        (dumps(_obj(0, id=7)), "schema_violation", "id"),
        (dumps(_obj(0, vector=None)), "schema_violation", None),  # neither vector nor text
        (dumps(_obj(0, vector=encode_vector([1.0, float("nan")] * 8))), "vector_not_finite", "vector"),
        (dumps(_obj(0, vector=encode_vector([float("inf")] * samples.DIM))), "vector_not_finite", "vector"),
        (dumps(_obj(0, vector=encode_vector(np.ones(8)))), "vector_dimension_mismatch", "vector"),
        (dumps(_obj(0, vector=[0.5] * 24)), "vector_dimension_mismatch", "vector"),
        (dumps(_obj(0, vector=encode_vector(np.ones(5000)))), "vector_too_large", "vector"),
        (dumps(_obj(0, properties={"body": "x" * (MAX_PAYLOAD + 10)})), "payload_too_large", None),
        (dumps(_obj(0, **{"class": "NoSuchClass"})), "unknown_class", "class"),
    ]
    out = []
    for i, (value, reason, path) in enumerate(kinds):
        out.append((f"bad-{i}-{reason}", value, reason, path))
    return out


def bad_training() -> list[tuple[str, bytes | None, str, str | None]]:
    """Bad records on the training topic: filters, classifiers, taxonomies, examples."""
    dumps = orjson.dumps
    clf = samples.classifier
    kinds = [
        (dumps(clf(name="bad-filter", filters={"sourceWhere": {"path": ["n"], "operator": "Bogus", "valueInt": 1}})),
         "invalid_filter", "filters.sourceWhere.operator"),
        (dumps(clf(name="bad-filter-2", filters={"trainingSetWhere": {"path": ["n"], "operator": "Equal", "valueInt": "one"}})),
         "invalid_filter", "filters.trainingSetWhere.valueInt"),
        (dumps({**clf(name="bad-clf"), "classifyProperties": []}), "invalid_classifier", None),
        (dumps({**clf(name="bad-clf-2"), "filters": {"targetWhere": {"path": ["n"], "operator": "Equal", "valueInt": 1}}}),
         "invalid_classifier", None),
        (dumps({"record": "taxonomy", "name": "bad-tax", "version": 1,
                "classes": [{"name": "a", "prompts": ["x"], "parent": "nobody"}]}), "invalid_taxonomy", "classes"),
        (dumps({"record": "example", "id": "bad-ex", "class": samples.CLASS, "vector": [1.0] * samples.DIM}),
         "schema_violation", None),  # no labels
        (dumps(samples.example("bad-ex-dim", np.ones(8), "sport")), "vector_dimension_mismatch", "vector"),
        (dumps({"record": "nonsense", "id": "x"}), "schema_violation", "record"),
        (b"{{{", "invalid_json", None),
    ]
    return [(f"badtrain-{i}-{reason}", value, reason, path) for i, (value, reason, path) in enumerate(kinds)]


async def malformed_burst(stack, n_good: int = 3_000, repeat: int = 10, timeout: float = 120) -> dict:
    """Bad records of every kind, ``repeat`` times each, interleaved with ``n_good`` good ones.

    Every good one must be classified, every bad one dead-lettered with its expected reason
    and field path, and the worker must stay up.
    """
    w, _ = await trained_worker(stack, LABELSTREAM_MAX_PAYLOAD_BYTES=str(MAX_PAYLOAD))
    good = samples.objects(n_good, run=f"burst-{uuid.uuid4().hex[:6]}")
    bad = [(f"{k}-r{r}", v, reason, path) for r in range(repeat) for k, v, reason, path in bad_objects()]
    stream: list[tuple[str, Any]] = []
    step = max(1, n_good // max(1, len(bad)))
    bi = iter(bad)
    for i, (k, v, _) in enumerate(good):
        stream.append((k, v))
        if i % step == 0:
            nxt = next(bi, None)
            if nxt:
                stream.append((nxt[0], nxt[1]))
    stream += [(k, v) for k, v, _, _ in bi]
    tbad = bad_training()
    expected = {k: (reason, path) for k, _, reason, path in bad + tbad}
    ids = [k for k, _, _ in good] + list(expected)
    async with Ledger(stack.settings) as ledger:
        await stack.produce("training", [(k, v) for k, v, _, _ in tbad])
        await produce_chunks(stack, "objects", stream)
        complete, settled = await _finish(stack, ledger, ids, timeout)
        good_ids = {k for k, _, _ in good}
        wrong = []
        for key, (reason, path) in expected.items():
            got = ledger.dead_keys.get(key, [])
            if len(got) != 1 or got[0]["reason"] != reason or got[0]["path"] != path:
                wrong.append({"key": key, "want": [reason, path], "got": [[d["reason"], d["path"]] for d in got]})
        sent = dict(stream) | {k: v for k, v, _, _ in tbad}
        bytes_mismatch = [k for k in expected if ledger.dead_keys.get(k) and
                          _unb64(ledger.dead_keys[k][0]["value_b64"]) != _as_bytes(sent[k])]
        good_dead = sorted(good_ids & set(ledger.dead_keys))
        return _stats("burst of malformed records among good ones", ledger, ids,
                      good_in=len(good), bad_in=len(expected), good_classified=len(good_ids & ledger.items),
                      good_dead_lettered=len(good_dead), wrong_reasons=wrong, original_bytes_mismatch=bytes_mismatch,
                      reasons=dict(Counter(d["reason"] for d in ledger.dead.values())),
                      complete=complete, settled=settled, worker_alive=w.alive)


# -- scenario 5: poison records that used to stop an agent, among good ones -------------------

def poison_records() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes | None, str | None]]]:
    """``(training records, [(key, value, expected dead-letter reason or None for a result)])``.

    Each kind once took a batch down with it before per-item isolation and bounded work: mixed
    vector dimensions for a class without examples, a value over the dead-letter limit, a
    400-deep ``Not`` filter, a backtracking ``Like`` on a 1 MB value, properties nested 300
    deep, text over the length limit."""
    import json

    deep: dict[str, Any] = {"path": ["n"], "operator": "Equal", "valueInt": 1}
    for _ in range(400):
        deep = {"operator": "Not", "operands": [deep]}
    like = "*" + "*".join("abcdefghijklmnopqrstuvwxy") + "*"
    training = [
        ("classifier:fresh", orjson.dumps({"record": "classifier", "name": "fresh", "type": "knn", "class": "Fresh",
                                           "classifyProperties": ["topic"]})),
        ("classifier:liked", orjson.dumps({"record": "classifier", "name": "liked", "type": "knn", "class": "Liked",
                                           "classifyProperties": ["topic"], "filters": {"sourceWhere": {
                                               "path": ["body"], "operator": "Like", "valueText": like}}})),
        ("classifier:deep", json.dumps({"record": "classifier", "name": "deep", "type": "knn", "class": "Deep",
                                        "classifyProperties": ["t"], "filters": {"sourceWhere": deep}}).encode()),
    ]
    nested: Any = 1
    for _ in range(300):
        nested = {"a": nested}
    poison: list[tuple[str, bytes | None, str | None]] = []
    for d in (2, 3, 5, 8, 13):  # one batch: a class with a classifier and no example yet
        poison.append((f"p-dims-{d}", orjson.dumps({"id": f"p-dims-{d}", "class": "Fresh", "vector": [1.0] * d}), None))
    poison.append(("p-huge", orjson.dumps(_obj(0, id="p-huge", properties={"body": "x" * 13_000_000})),
                   "payload_too_large"))
    poison.append(("p-like", orjson.dumps({"id": "p-like", "class": "Liked", "vector": [1.0, 0.0],
                                           "properties": {"body": "a" * 1_000_000}}), None))
    poison.append(("p-nested", json.dumps({"id": "p-nested", "class": samples.CLASS, "vector": [1.0] * samples.DIM,
                                           "properties": {"n": nested}}).encode(), "schema_violation"))
    poison.append(("p-text", orjson.dumps({"id": "p-text", "class": samples.CLASS, "text": "w " * 60_000}),
                   "text_too_long"))
    return training, poison


async def poison(stack, n_good: int = 3_000, timeout: float = 120) -> dict:
    """Poison records of every kind among ``n_good`` good ones: each leaves exactly one output
    (its result or its dead letter with the expected reason), every good one is classified,
    no agent restarts and the worker stays up."""
    w, _ = await trained_worker(stack)
    training, bad = poison_records()
    good = samples.objects(n_good, run=f"poison-{uuid.uuid4().hex[:6]}")
    stream: list[tuple[str, Any]] = [(k, v) for k, v, _ in good]
    for j, (k, v, _) in enumerate(bad):  # spread over the stream, the mixed dimensions side by side
        stream.insert(min(len(stream), 500 + 200 * j), (k, v))
    ids = [k for k, _, _ in good] + [k for k, _, _ in bad]
    async with Ledger(stack.settings) as ledger:
        await stack.produce("training", training)
        await stack.wait_ready(w, min_training=len(samples.training_records()) + 2)
        await produce_chunks(stack, "objects", stream, chunk=200)
        complete, settled = await _finish(stack, ledger, ids, timeout)
        wrong = []
        for k, _, reason in bad:
            got = [d["reason"] for d in ledger.dead_keys.get(k, [])]
            want = [reason] if reason else []
            if got != want or (reason is None and k not in ledger.items):
                wrong.append({"key": k, "want": reason or "result", "got": got or sorted(ledger.items & {k})})
        deep = [d for d in ledger.dead_keys.get("classifier:deep", [])]
        health = w.health() or {}
        return _stats("poison records among good ones", ledger, ids, good_in=len(good), poison_in=len(bad),
                      good_classified=len({k for k, _, _ in good} & ledger.items), wrong=wrong,
                      deep_filter_reason=[d["reason"] for d in deep], agent_restarts=health.get("agent_restarts"),
                      complete=complete, settled=settled, worker_alive=w.alive)


def _unb64(s: str | None) -> bytes | None:
    return base64.b64decode(s) if s is not None else None


def _as_bytes(v: Any) -> bytes | None:
    return v if v is None or isinstance(v, bytes) else orjson.dumps(v)


SCENARIOS = {
    "kill9": kill_and_restart,
    "takeover": takeover,
    "broker": broker_restart,
    "burst": malformed_burst,
    "poison": poison,
}
