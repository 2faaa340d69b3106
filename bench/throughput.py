"""End-to-end throughput through Kafka: a Labelstream worker vs the raw Kafka client's ceiling.

Both sides get the same N pre-produced object events on 8 partitions and must publish one
output record per input:

- **ceiling**: one plain aiokafka consumer (group, manual commits every batch) that
  decodes each value with orjson and produces one small record per event — the most any
  consume→produce service written with this client can do on this machine;
- **labelstream**: a real worker (``labelstream worker``, subprocess) classifying with the
  sample kNN classifier (k=5, 60 examples, 16-d) and publishing full results.

Time runs from the first output record to the N-th, read from the output topic, so the
worker's start-up and group join are excluded on both sides.

    .venv/bin/python bench/throughput.py --events 20000        # needs a broker; starts the local one if none
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

import results  # noqa: E402  (bench/results.py)
from app.devtools import localkafka, samples  # noqa: E402
from app.service.admin import bootstrap, ensure_topics  # noqa: E402
from app.devtools.clients import produce  # noqa: E402
from app.devtools.process import WorkerProcess  # noqa: E402
from app.settings import Settings  # noqa: E402


async def first_to_nth(settings: Settings, topic: str, n: int, timeout: float,
                       on_first: Callable[[], None] | None = None) -> tuple[int, float]:
    """Seconds between the first and the n-th record of ``topic`` (by arrival at this reader);
    ``on_first`` is called when the first arrives (starts the profiler)."""
    consumer = AIOKafkaConsumer(settings.topic(topic), bootstrap_servers=bootstrap(settings.broker), group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=20)
    await consumer.start()
    seen, t0, deadline = 0, None, time.monotonic() + timeout
    try:
        while seen < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = sum(len(v) for v in batch.values())
            if got and t0 is None:
                t0 = time.monotonic()
                if on_first is not None:
                    on_first()
            seen += got
        return seen, (time.monotonic() - t0) if t0 else float("nan")
    finally:
        await consumer.stop()


async def ceiling(settings: Settings, n: int) -> None:
    """The raw-client service: consume objects, decode, produce one record each."""
    servers = bootstrap(settings.broker)
    consumer = AIOKafkaConsumer(settings.topic("objects"), bootstrap_servers=servers, group_id=f"ceiling-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=2000)
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, acks="all")
    await consumer.start()
    await producer.start()
    done = 0
    try:
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for recs in batch.values():
                for r in recs:
                    ev = orjson.loads(r.value)
                    await producer.send(settings.topic("results"), key=r.key,
                                        value=orjson.dumps({"item_id": ev["id"], "labels": {}}))
                    done += 1
            await producer.flush()
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def fresh(broker: str, tag: str) -> tuple[Settings, dict]:
    run = uuid.uuid4().hex[:6]
    env = {"LABELSTREAM_BROKER": broker, "LABELSTREAM_APP_ID": f"bench-{tag}-{run}",
           "LABELSTREAM_TOPIC_PREFIX": f"b{tag}{run}.", "LABELSTREAM_TOPIC_PARTITIONS": "8"}
    return Settings(broker=broker, app_id=env["LABELSTREAM_APP_ID"], topic_prefix=env["LABELSTREAM_TOPIC_PREFIX"],
                    topic_partitions=8), env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (Linux ``/proc``): on a shared machine
    CPU per event is steadier than events/s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profiler(pid: int, out: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """py-spy (the ``dev`` extra) on the worker from the first result to the N-th: (start, stop).
    Collapsed stacks (``--format raw``), one line per stack, so they can be summed by frame.
    ``PYSPY_EXTRA="--gil"`` samples only the thread holding the GIL (CPU, not waits for it)."""
    proc: list[subprocess.Popen] = []

    def start() -> None:
        proc.append(subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-o", out,
                                      "--format", "raw", "--rate", "200", "--threads", "--nonblocking", *os.environ.get("PYSPY_EXTRA", "").split()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop() -> None:
        for p in proc:
            p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            p.wait(30)
    return start, stop


Row = tuple[str, int, float, float | None]  # name, outputs, seconds, worker CPU seconds (first output to N-th)


async def run(broker: str, n: int, timeout: float, profile: str | None = None) -> list[Row]:
    objs = [(k, v) for k, v, _ in samples.objects(n, run="bench")]
    rows = []

    s, _ = fresh(broker, "raw")
    await ensure_topics(s)
    await produce("objects", objs, s)
    service = asyncio.create_task(ceiling(s, n))
    seen, secs = await first_to_nth(s, "results", n, timeout)
    await service
    rows.append(("raw aiokafka consume → decode → produce (ceiling)", seen, secs, None))

    s, env = fresh(broker, "ls")
    await ensure_topics(s)
    await produce("training", samples.training_records(), s)
    await produce("objects", objs, s)
    with tempfile.TemporaryDirectory() as tmp:
        w = WorkerProcess({**env, "LABELSTREAM_DATA_DIR": tmp}, Path(tmp) / "worker.log").start()
        assert w.proc is not None
        pid, cpu0 = w.proc.pid, [0.0]
        start_profile, stop_profile = profiler(pid, profile) if profile else (lambda: None, lambda: None)

        def on_first() -> None:
            cpu0[0] = cpu_seconds(pid)
            start_profile()
        try:
            seen, secs = await first_to_nth(s, "results", n, timeout, on_first=on_first)
            cpu = cpu_seconds(pid) - cpu0[0]
        finally:
            stop_profile()
            w.stop()
    rows.append(("labelstream worker, kNN (k=5) full results", seen, secs, cpu))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--profile", metavar="FILE", help="py-spy the worker (collapsed stacks to FILE); see bench/profile.py")
    a = ap.parse_args()
    with localkafka.configured_or_local(os.environ.get("LABELSTREAM_BROKER")) as broker:
        rows = asyncio.run(run(broker, a.events, a.timeout, a.profile))
    base = rows[0][1] / rows[0][2]
    lines = ["| pipeline | outputs | seconds | events/s | vs ceiling | worker CPU s / 1k events |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, seen, secs, cpu in rows:
        rate = seen / secs
        per_k = f"{cpu / seen * 1000:.2f}" if cpu is not None and seen else "–"
        lines.append(f"| {name} | {seen:,} | {secs:.2f} | {rate:,.0f} | {rate / base:.2f}x | {per_k} |")
    lines += ["", f"{a.events:,} object events (16-d base64 vectors), 8 partitions, one local broker, 2 CPUs shared "
              "by broker, worker and this reader; first output to the N-th.",
              f"Command: `.venv/bin/python bench/throughput.py --events {a.events}`"]
    body = "\n".join(lines)
    print(body)
    if not a.no_write:
        results.write_section("## End-to-end throughput", body)
    return 0 if all(row[1] == a.events for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
