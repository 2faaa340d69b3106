"""End-to-end fuzzing through the real broker and a real worker process (issue 9, "Done when").

Hypothesis-drawn objects, media and training records (``fuzz_cases.py``): valid, malformed
(bad JSON, wrong types, missing fields, NaN), huge (13 MB, over the dead-letter limit), a
filter nesting 400 ``Not``, ``Like`` patterns on 1 MB values, objects of mixed dimensions
for a kNN classifier without examples, text, chunked media with bad chunks, all interleaved
with good records whose result is certain. The oracle, per input record (matched by its
source topic, partition and offset):

- exactly one output: its results (one per applicable classifier) or one dead letter with
  a reason from ``REASONS`` (never ``internal_error``: that is a bug), or nothing where
  nothing is due (a waiting chunk, a valid training record: counted by the worker's
  ``training_records_applied``); no output twice, none for an input we did not send;
- every good record its correct labels, every bad one its expected reason;
- the agent-restart counter stays 0 (``/health/ready`` and ``/metrics``);
- the worker answers ``/health/live`` throughout (polled in a thread, 2 s timeout).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections import Counter, defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from app.devtools.process import WorkerProcess
from app.devtools.scenarios import Ledger, settle, until
from app.schemas.deadletter import REASONS
from app.service.admin import bootstrap
from . import fuzz_cases
from .fuzz_cases import Case

pytestmark = pytest.mark.kafka

LIMIT = 180  # hard ceiling: a frozen worker fails the test instead of hanging the suite
ANSWER_TIMEOUT = 75


class SourceLedger(Ledger):
    """The Ledger, plus the result ids seen per input record (topic, partition, offset)."""

    def __init__(self, settings):
        super().__init__(settings)
        self.results_at: dict[tuple[str, int, int], list[str]] = defaultdict(list)

    def _take(self, topic, rec) -> None:
        super()._take(topic, rec)
        if topic == self.results_topic:
            v = orjson.loads(rec.value)
            s = v["source"]
            self.results_at[(s["topic"], s["partition"], s["offset"])].append(v["result_id"])


class LivenessProbe(threading.Thread):
    """GET /health/live every 0.2 s with a short timeout; failures are recorded, not raised."""

    def __init__(self, worker: WorkerProcess, timeout: float = 2.0):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{worker.web_port}/health/live"
        self.timeout, self.stopped = timeout, threading.Event()
        self.ok, self.failures = 0, []

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
                    assert json.loads(r.read())["live"] is True
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - any failure to answer is what we record
                self.failures.append(f"{time.strftime('%X')} after {time.monotonic() - t0:.1f}s: {e!r}")


async def produce_tracked(settings, cases: list[Case]) -> list[tuple[str, int, int]]:
    """Send the cases in order; the (topic, partition, offset) each one got."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings.broker), max_request_size=16 * 1024 * 1024,
                                linger_ms=5, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(settings.topic(c.topic), key=c.key, value=c.value) for c in cases]
        metas = [await f for f in futures]
    finally:
        await producer.stop()
    return [(m.topic, m.partition, m.offset) for m in metas]


def restarts_in_metrics(worker: WorkerProcess) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None  # no answer: the assertion below says so
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("labelstream_agent_restarts_total"))


def groups(cases: list[Case], sources: list) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for c, s in zip(cases, sources):
        if c.expect.group:
            out[c.expect.group].append(s)
    return out


def check(case: Case, src, ledger: SourceLedger) -> list[str]:
    """What is wrong with the output of one input (empty: exactly its one expected output)."""
    dead, rids = ledger.dead.get(src), ledger.results_at.get(src, [])
    want, where = case.expect, f"{case.kind} {case.key[:40]!r} at {src}"
    if dead is not None and rids:
        return [f"{where}: both a dead letter ({dead['reason']}) and results {rids}"]
    if dead is not None:
        if dead["reason"] not in REASONS or dead["reason"] == "internal_error":
            return [f"{where}: dead letter {dead['reason']}: {dead['detail'][:300]}"]
        if dead["reason"] not in want.reasons:  # (an ``either`` case lands here only with a wrong reason)
            got = f"dead letter {dead['reason']} ({dead['detail'][:200]})"
            return [f"{where}: {got}, want {sorted(want.reasons) or want.results or 'nothing'}"]
        return [f"{where}: {p}" for p in (want.check(dead) if want.check else [])]
    if want.none:
        return [f"{where}: want no output, got results {rids}"] if rids else []
    if not rids:
        return [f"{where}: no output (want {sorted(want.reasons) or list(want.results)})"]
    if want.reasons:
        return [f"{where}: results {rids}, want a dead letter {sorted(want.reasons)}"]
    if sorted(rids) != sorted(want.results):
        return [f"{where}: results {sorted(rids)}, want {sorted(want.results)}"]
    problems = []
    for rid, labels in want.results.items():
        got = orjson.loads(ledger.results[rid])
        bad_conf = {k: v for k, v in got["confidence"].items() if not (isinstance(v, float | int) and 0 <= v <= 1)}
        if bad_conf:
            problems.append(f"{where}: {rid} confidence not in [0, 1]: {bad_conf}")
        if got["source"] != {**got["source"], "topic": src[0], "partition": src[1], "offset": src[2]}:
            problems.append(f"{where}: result {rid} has source {got['source']}")
        if labels is not None and got["labels"] != labels:
            problems.append(f"{where}: {rid} labels {got['labels']}, want {labels}")
    return problems


async def test_fuzzed_stream_every_input_leaves_exactly_one_correct_output(stack):
    await asyncio.wait_for(_run(stack), LIMIT)


async def _run(stack) -> None:
    t_start = time.monotonic()
    cases = fuzz_cases.stream()
    base = fuzz_cases.base_training()
    w = stack.worker()
    await stack.wait_ready(w)
    await stack.produce("training", base)
    await stack.wait_ready(w, min_training=len(base))
    t_ready = time.monotonic()

    probe = LivenessProbe(w)
    probe.start()
    try:
        async with SourceLedger(stack.settings) as ledger:
            sources = await produce_tracked(stack.settings, cases)
            t_sent = time.monotonic()
            due = [(c, s) for c, s in zip(cases, sources) if not c.expect.none]  # (``either`` cases: settle waits)

            def answered() -> bool:
                return all(s in ledger.dead or len(ledger.results_at.get(s, ())) >= len(c.expect.results or [1])
                           for c, s in due)

            complete = await until(answered, ANSWER_TIMEOUT, every=0.25)
            t_answered = time.monotonic()
            settled = await settle(stack, ledger, topics=("objects", "media", "training"), timeout=30)

            valid_training = sum(1 for c in cases if c.topic == "training" and c.expect.none and not c.expect.group)
            valid_training += len(groups(cases, sources))
            applied_want = len(base) + valid_training
            await until(lambda: ((w.health() or {}).get("training_records_applied", 0) >= applied_want), 20, every=0.5)
            health = w.health() or {}
            metric_restarts = restarts_in_metrics(w)
    finally:
        probe.stopped.set()
        probe.join(5)

    problems = [p for c, s in zip(cases, sources) for p in check(c, s, ledger)]
    for group, members in groups(cases, sources).items():  # exactly one accepted, the others refused
        accepted = [s for s in members if s not in ledger.dead]
        if len(accepted) != 1:
            problems.append(f"group {group}: {len(accepted)} of {len(members)} accepted, want exactly 1")
    sent = set(sources)
    strays = [s for s in set(ledger.dead) | set(ledger.results_at) if s not in sent]
    kinds = Counter(f"{c.topic}/{c.kind}" for c in cases)
    reasons = Counter(d["reason"] for d in ledger.dead.values())
    print(f"\nfuzz: {len(cases)} records {dict(sorted(kinds.items()))}"
          f"\n  results {len(ledger.results)}, dead letters {len(ledger.dead)} {dict(reasons)}"
          f"\n  worker ready {t_ready - t_start:.1f}s, sent {t_sent - t_ready:.1f}s, "
          f"answered {t_answered - t_sent:.1f}s, total {time.monotonic() - t_start:.1f}s; "
          f"/health/live ok {probe.ok}, failed {len(probe.failures)}")

    assert w.alive, f"the worker died:\n{w.tail()}"
    assert complete, f"not every input was answered within {ANSWER_TIMEOUT}s:\n" + "\n".join(problems[:40])
    assert settled, "the group did not commit every input, or the output could not be drained"
    assert not probe.failures, f"/health/live failed {len(probe.failures)} times: {probe.failures[:10]}"
    assert health.get("agent_restarts") == 0 and metric_restarts == 0, \
        f"agents crashed: health {health.get('agent_restarts')}, metrics {metric_restarts}\n{w.tail()}"
    assert not problems, f"{len(problems)} inputs without their one correct output:\n" + "\n".join(problems[:60])
    assert not strays, f"outputs for inputs never sent: {strays[:10]}"
    assert ledger.duplicates == 0 and ledger.dead_duplicates == 0, \
        f"outputs sent twice (no fault was injected): {ledger.duplicates} results, {ledger.dead_duplicates} dead letters"
    assert health.get("training_records_applied") == applied_want, \
        f"training records applied {health.get('training_records_applied')}, want {applied_want} " \
        f"({len(base)} before the stream + {valid_training} valid in it): an invalid one got in, or a valid one is lost"
