"""The longest gap in the result stream while a 100k x 384-d kNN index rebuilds under load.

A real ``labelstream worker`` on the real broker, the knn-large classifier (``--examples``
training vectors, default 100,000, 384-d, k=5; written straight to the training changelog by
bench/fill.py, as the training agent would have). Once it is ready and its index version has
settled, a producer sends objects at a steady ``--rate``; after ``--before`` seconds a burst of
``--burst`` new training examples goes to the training topic, which (above the index's
``rebuild_after_changes``) triggers the live background rebuild (app/index/builder.py). The
stream goes on until results carry the new index version, then ``--after`` seconds more.

Per phase (before the burst / burst → first result of the new version / after), from the
results read here: the largest gap between consecutive result arrivals, and p50/p99 latency
(send call → result read here). Target (issue 10): no gap > 100 ms.

    .venv/bin/python bench/rebuild_gap.py --write          # LABELSTREAM_BROKER, else the local one
"""

from __future__ import annotations

import argparse
import bisect
import asyncio
import logging
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

import fill  # noqa: E402  (bench/fill.py)
import gaps  # noqa: E402  (bench/gaps.py)
import measure  # noqa: E402
from app.devtools import localkafka  # noqa: E402
from app.devtools.clients import produce  # noqa: E402
from app.devtools.process import WorkerProcess  # noqa: E402
from app.schemas.vectors import encode_vector  # noqa: E402
from app.service.admin import bootstrap, ensure_topics  # noqa: E402
from e2e import PARTITIONS, READ_WAIT_MS, fresh  # noqa: E402
from workloads import DIM, knn_large  # noqa: E402

SECTION = "## Result gaps while a 100k index rebuilds"
BUILT = re.compile(r"built v(\d+) over (\d+) examples")


class Reader:
    """Every result's arrival time, its key's send time and the index version it used."""

    def __init__(self, topic: str, broker: str):
        self.topic, self.broker = topic, broker
        self.arrivals: list[float] = []
        self.versions: list[int] = []
        self.keys: list[bytes] = []
        self.sent_at: list[float] = []  # the result's Kafka timestamp: when the worker's sink sent it (this clock)
        self.value_bytes = 0  # for the mean result size (Scale on paper)
        self.late: list[tuple[float, float]] = []  # (when, how late) this process's own event loop woke up

    async def tick(self, every: float = 0.01) -> None:
        """How late this process's loop runs: a gap seen here while it was late is ours, not the worker's."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(every)
            now = time.monotonic()
            self.late.append((now, now - t - every))

    async def run(self) -> None:
        c = AIOKafkaConsumer(self.topic, bootstrap_servers=bootstrap(self.broker), group_id=None,
                             auto_offset_reset="earliest", fetch_max_wait_ms=READ_WAIT_MS)
        await c.start()
        offset = time.time() - time.monotonic()  # Kafka timestamps are wall clock
        try:
            while True:
                batch = await c.getmany(timeout_ms=50, max_records=5000)
                now = time.monotonic()
                for recs in batch.values():
                    for r in recs:
                        v = orjson.loads(r.value).get("index_version") or {}
                        self.arrivals.append(now)
                        self.versions.append(max(v.values(), default=0))
                        self.keys.append(r.key)
                        self.sent_at.append(r.timestamp / 1000 - offset)
                        self.value_bytes += len(r.value)
        finally:
            await c.stop()

    def version_since(self) -> tuple[int, float]:
        """The latest version and when it was first seen."""
        if not self.versions:
            return 0, time.monotonic()
        v = self.versions[-1]
        return v, gaps.first_at_least(self.arrivals, self.versions, v)


def burst_examples(n: int, run: str, seed: int = 11) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(50, DIM)).astype(np.float32)[rng.integers(0, 50, n)]
         + 1.5 * rng.standard_normal((n, DIM), dtype=np.float32))
    return [(f"{run}-{i}", {"record": "example", "id": f"{run}-{i}", "class": "Doc", "vector": encode_vector(v),
                            "properties": {}, "labels": {"topic": f"t{i % 50}"}}) for i, v in enumerate(x)]


async def stream(settings, events, rate: float, sent: dict, stop: asyncio.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings.broker), linger_ms=0, acks=1)
    await producer.start()
    try:
        t0, i = time.monotonic(), 0
        while i < len(events) and not stop.is_set():
            target = measure.due(time.monotonic() - t0, rate, len(events))
            while i < target:
                key, value = events[i]
                sent[key] = time.monotonic()
                await producer.send(settings.topic("objects"), key=key, value=value)
                i += 1
            await asyncio.sleep(0.002)
    finally:
        await producer.stop()


def phase(name: str, r: Reader, sent: dict, start: float, end: float) -> dict:
    gap, at = gaps.largest_gap(r.arrivals, start, end)
    pairs = [(t, t - sent[k]) for t, k in zip(r.arrivals, r.keys) if k in sent]
    lat = gaps.in_window(pairs, start, end)
    p50, p99 = measure.percentiles(lat, (50, 99)) if lat else (float("nan"),) * 2
    worker_gap, worker_at = gaps.largest_gap(sorted(r.sent_at), start, end)
    own_late = max((late for t, late in r.late if start <= t < end), default=float("nan"))
    return {"phase": name, "seconds": end - start, "results": len(lat), "sent": gaps.count_in(sent.values(), start, end),
            "gap_ms": gap * 1000, "worker_gap_ms": worker_gap * 1000, "worker_gap_at": worker_at,
            "own_late_ms": own_late * 1000,
            "p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "gap_at": at}


async def run(broker: str, a: argparse.Namespace) -> tuple[list[dict], dict]:
    settings, env = fresh(broker, "gap")
    await ensure_topics(settings)
    w = knn_large(a.examples)
    info: dict = {"load_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-gap-") as tmp:
        info.update(await fill.fill(settings, PARTITIONS, w.training, 0))  # straight to the changelog
        spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-r", "50", "-f", "raw", "-o", a.profile, "--threads", "--"] if a.profile else None
        worker = WorkerProcess({**env, "LABELSTREAM_DATA_DIR": tmp}, Path(a.worker_log or Path(tmp) / "worker.log"),
                               prefix=spy).start()
        reader = Reader(settings.topic("results"), broker)
        rtask = asyncio.create_task(reader.run())
        ticker = asyncio.create_task(reader.tick())
        stop = asyncio.Event()
        sent: dict[bytes, float] = {}
        try:
            t = time.monotonic()
            await asyncio.to_thread(worker.wait_ready, a.timeout, len(w.training))
            info["ready_s"] = time.monotonic() - t
            events = w.events(int(a.rate * a.timeout), "gap")
            stask = asyncio.create_task(stream(settings, events, a.rate, sent, stop))
            # settled: the worker's log shows a build over the whole set, and results have carried that
            # version for `settle` seconds (the start-up builds of growing parts of the set are over)
            # and the backlog is gone (every result of the last 2 s came within --drained s of its send)
            while True:
                v, since = reader.version_since()
                full = [int(ver) for ver, n in BUILT.findall(worker.tail(400)) if int(n) >= a.examples]
                now = time.monotonic()
                recent = [t - sent[k] for t, k in zip(reader.arrivals[-200:], reader.keys[-200:])
                          if k in sent and t > now - 2]
                if (full and v >= full[-1] and now - since > a.settle and recent and max(recent) < a.drained):
                    break
                if time.monotonic() - t > 2 * a.timeout:
                    raise TimeoutError(f"index never settled (version {v}):\n{worker.tail()}")
                await asyncio.sleep(0.2)
            t_steady = time.monotonic()
            await asyncio.sleep(a.before)
            t_burst = time.monotonic()
            info["load_burst"] = os.getloadavg()[0]
            await produce("training", burst_examples(a.burst, "burst"), settings)
            t_swap = float("inf")
            while t_swap == float("inf"):
                i0 = bisect.bisect_left(reader.arrivals, t_burst)
                t_swap = gaps.first_at_least(reader.arrivals[i0:], reader.versions[i0:], v + 1)
                if time.monotonic() - t_burst > a.timeout:
                    raise TimeoutError(f"no rebuild within {a.timeout:.0f} s:\n{worker.tail()}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(a.after)
            t_end = time.monotonic()
            stop.set()
            await stask
            info.update(version_before=v, version_after=reader.versions[-1], rebuild_s=t_swap - t_burst,
                        build_log=[ln for ln in worker.tail(200).splitlines() if "built v" in ln][-3:],
                        peak_rss_mib=measure.peak_rss(worker.proc.pid) / 2**20 if worker.proc else 0,
                        load_end=os.getloadavg()[0], result_bytes=reader.value_bytes / max(1, len(reader.keys)),
                        event_bytes=sum(len(v) for _, v in events[:1000]) / min(1000, len(events)))
            rows = [phase("steady, before the burst", reader, sent, t_steady, t_burst),
                    phase("burst sent → first result of the new index", reader, sent, t_burst, t_swap),
                    phase("after the swap", reader, sent, t_swap, t_end)]
            for r in rows:
                r["gap_at"] = r["gap_at"] - t_burst  # seconds after the burst was sent
                r["worker_gap_at"] = r["worker_gap_at"] - t_burst
            return rows, info
        finally:
            stop.set()
            rtask.cancel()
            ticker.cancel()
            await asyncio.gather(rtask, ticker, return_exceptions=True)
            if a.profile and worker.alive and worker.proc is not None:  # py-spy writes its file on SIGINT
                os.killpg(worker.proc.pid, signal.SIGINT)
                await asyncio.to_thread(worker.proc.wait, 60)
            worker.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--burst", type=int, default=2000, help="new training examples (> rebuild_after_changes)")
    ap.add_argument("--rate", type=float, default=200.0, help="objects per second")
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--drained", type=float, default=1.0, help="settled: latency below this (s) for 2 s")
    ap.add_argument("--before", type=float, default=10.0)
    ap.add_argument("--after", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--worker-log", metavar="FILE", help="keep the worker's log here")
    ap.add_argument("--profile", metavar="FILE", help="run the worker under py-spy record (raw stacks, from its start)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with localkafka.configured_or_local(os.environ.get("LABELSTREAM_BROKER")) as broker:
        rows, info = asyncio.run(run(broker, a))
    lines = ["| phase | seconds | events sent | results | largest gap ms (at s after burst) | same, by the worker's "
             "send time | p50 ms | p99 ms | this process's loop, latest wake-up ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
             *[f"| {r['phase']} | {r['seconds']:.1f} | {r['sent']:,} | {r['results']:,} | {r['gap_ms']:.0f} ({r['gap_at']:+.1f}) "
               f"| {r['worker_gap_ms']:.0f} ({r['worker_gap_at']:+.1f}) "
               f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['own_late_ms']:.0f} |" for r in rows], "",
             f"{a.examples:,} examples x 384-d (knn-large, k=5), objects at {a.rate:g}/s, a burst of {a.burst:,} new "
             f"examples; index v{info['version_before']} → v{info['version_after']} {info['rebuild_s']:.1f} s after "
             f"the burst was sent (worker log: {'; '.join(s.split('] ')[-1] for s in info['build_log'])}). "
             f"Worker ready {info['ready_s']:.0f} s after start, peak RSS {info['peak_rss_mib']:,.0f} MiB; an event "
             f"{info['event_bytes']:,.0f} B, a result {info['result_bytes']:,.0f} B. Gap = "
             f"time between consecutive results read here (one reader long-polling, fetch_max_wait {READ_WAIT_MS} ms, in the "
             "producer's process), and between their Kafka timestamps (when the worker's sink sent them); latency = send call → result read. Load average at start "
             f"{info['load_start']:.1f}, at the burst {info['load_burst']:.1f}, at the end {info['load_end']:.1f} "
             "(2 CPUs shared by broker, worker, this process and other people's benchmarks).",
             "", "Command: `" + " ".join([".venv/bin/python bench/rebuild_gap.py", *sys.argv[1:]]) + "`"]
    body = "\n".join(lines)
    print(body)
    if a.write:
        import results
        results.write_section(SECTION, body)
    return 0 if all(r["gap_ms"] <= 100 for r in rows[1:2]) else 1


if __name__ == "__main__":
    sys.exit(main())
