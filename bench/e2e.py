"""`make bench`: Labelstream end to end vs the raw client's and Faust's own ceilings, in one run.

For each workload (bench/workloads.py) four services run in turn as their own processes
against the same real broker, on fresh topics of the same partitions, with the same payloads:
``raw`` (aiokafka consume → decode → produce), ``faust`` (an agent that decodes and forwards),
``lean`` (the same Faust app, its topic delivered in fetched batches as Labelstream's hot
topics are: app/service/lean.py; all three in bench/forwarders.py) and ``labelstream`` (a real
``labelstream worker``); ``--services ... labelstream-agents`` adds a worker whose hot topics go
through plain Faust agents (``LABELSTREAM_LEAN=0``), ``labelstream-x2`` two workers in one group (one
interpreter per core; their events are produced once both are in the group, so this process's producer
runs during their window, and CPU and RSS are the two workers' sums). Per service:

- **events/s**: ``--events`` events are produced before the service starts; the rate runs from
  the first output's arrival at this reader to the N-th (start-up and group join excluded);
- **CPU s / 1k events**: the service process's utime+stime (``/proc/<pid>/stat``) over the same window;
- **latency p50/p95/p99**: then a producer paced at half the measured rate sends events for
  ``--latency-seconds``; latency = the result's arrival here − the send call of its event;
- **peak RSS**: the process's ``VmHWM`` at the end.

``knn-large`` (``--large``) also checks recall@k of the worker's neighbours against exact search.
Writes the ``## End to end, side by side`` section of bench/RESULTS.md (``--no-write``: print only).

    .venv/bin/python bench/e2e.py                       # needs a broker: LABELSTREAM_BROKER, else the local one
    .venv/bin/python bench/e2e.py --scale 5 --large     # 5x the events, plus kNN over 100,000 x 384
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

import measure  # noqa: E402  (bench/measure.py)
import recall  # noqa: E402  (bench/recall.py)
import results  # noqa: E402  (bench/results.py)
import throughput  # noqa: E402  (bench/throughput.py: the py-spy profiler)
from app.devtools import localkafka  # noqa: E402
from app.devtools.clients import produce  # noqa: E402
from app.devtools.process import WorkerProcess  # noqa: E402
from app.service.admin import bootstrap, ensure_topics  # noqa: E402
from app.settings import Settings  # noqa: E402
from workloads import WORKLOADS, Workload  # noqa: E402

SECTION = "## End to end, side by side"
PARTITIONS = 8
#: The readers' long poll. With fetch.min.bytes 1 a record ends the broker's wait at once, so this does not
#: delay a result; a short wait (it was 5 ms) only makes an idle reader ask ~200 times a second, which cost
#: the local broker ~half a core (58 % vs 5.5 % at 500 ms, measured) taken from the services measured here.
READ_WAIT_MS = 500
MAX_BYTES = 16 * 1024 * 1024
#: Labelstream workers under test and their environment: ``labelstream-agents`` consumes the hot
#: topics with plain Faust agents (``take_events``) instead of app/service/lean.py, for comparison.
LABELSTREAM = {"labelstream": {}, "labelstream-agents": {"LABELSTREAM_LEAN": "0"}, "labelstream-x2": {}}
#: Services run as several worker processes in one consumer group (one interpreter per core: how a
#: Faust service scales on one machine); their events are produced once every worker is in the group.
PROCESSES = {"labelstream-x2": 2}
#: events per workload at --scale 1, chosen so one run takes a few minutes on 2 cores
EVENTS = {"knn-small": 20_000, "zeroshot": 10_000, "media": 600, "knn-large": 10_000}
#: A worker's log line for a kNN index over a whole set: built (group 1: its examples) or a snapshot adopted.
INDEX_LINE = re.compile(r"built v\d+ over (\d+) examples|reused saved snapshot")


@dataclass
class Row:
    workload: str
    service: str
    events: int
    seen: int
    rate: float
    cpu_per_1k: float
    paced_rate: float = float("nan")
    lat: tuple[float, float, float] = (float("nan"),) * 3
    lat_missing: int = 0
    rss: int = 0
    note: str = ""


class Stalled(Exception):
    """The service stopped producing outputs (or never finished) before the n-th: its row says so."""

    def __init__(self, seen: int, message: str):
        super().__init__(message)
        self.seen = seen


class Reader:
    """Reads the output topic from the start; notes the first and n-th arrival (with the service's
    CPU at each) and the arrival time of every ``lat-`` key."""

    def __init__(self, settings: Settings, n: int):
        self.settings, self.n = settings, n
        self.seen = 0  # distinct result keys (one result per event here)
        self.keys: set[bytes | None] = set()
        self.duplicates = 0
        self.first = self.nth = None  # (monotonic time, records in that poll, cpu seconds)
        self.arrived: dict[bytes, float] = {}
        self.values: dict[bytes, bytes] = {}  # kept only when keep_values (recall check)
        self.keep_values = False
        self.pid: int | None = None
        self.pids: list[int] = []  # every process of the service (CPU summed); default [pid]
        self.done = asyncio.Event()
        self.on_first = self.on_nth = lambda: None  # the profiler's start and stop (--profile)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(self.settings.topic("results"), bootstrap_servers=bootstrap(self.settings.broker),
                                    group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=READ_WAIT_MS,
                                    max_partition_fetch_bytes=MAX_BYTES, fetch_max_bytes=4 * MAX_BYTES)
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
                now = time.monotonic()
                got = 0
                for recs in batch.values():
                    for r in recs:
                        if r.key in self.keys:
                            self.duplicates += 1  # at-least-once redelivery: counted once
                            continue
                        self.keys.add(r.key)
                        got += 1
                        if r.key and r.key.startswith(b"lat-"):
                            self.arrived.setdefault(r.key, now)
                        elif self.keep_values and r.key:
                            self.values[r.key] = r.value
                if not got:
                    continue
                cpu = self.cpu()
                if self.first is None:
                    self.first = (now, got, cpu)
                    self.on_first()
                self.seen += got
                if self.nth is None and self.seen >= self.n:
                    self.nth = (now, got, cpu)
                    self.on_nth()
                    self.done.set()
        finally:
            await consumer.stop()

    def cpu(self) -> float:
        """CPU seconds the service's processes have used so far."""
        pids = self.pids or ([self.pid] if self.pid else [])
        return sum(measure.cpu_seconds(p) for p in pids) if pids else float("nan")


class Service:
    """One service under test as child processes: a forwarder or real workers (``PROCESSES``)."""

    def __init__(self, kind: str, settings: Settings, env: dict, workdir: Path, topic: str):
        self.kind = kind
        log = workdir / f"{kind}.log"
        if kind in LABELSTREAM:
            n = PROCESSES.get(kind, 1)
            dirs = [workdir] if n == 1 else [_copy_data(workdir, workdir / f"w{i}") for i in range(n)]
            self.workers = [WorkerProcess({**env, "LABELSTREAM_DATA_DIR": str(d), **LABELSTREAM[kind]},
                                          log if n == 1 else workdir / f"{kind}-{i}.log") for i, d in enumerate(dirs)]
            self.proc = None
        else:
            self.workers = []
            self.env = {**os.environ, "BENCH_BROKER": settings.broker, "BENCH_IN": settings.topic(topic),
                        "BENCH_OUT": settings.topic("results"), "BENCH_GROUP": settings.app_id,
                        "BENCH_DATADIR": str(workdir / "faust")}
            self.log = log

    @property
    def worker(self) -> WorkerProcess | None:
        """The (first) worker; None for a forwarder."""
        return self.workers[0] if self.workers else None

    def start(self) -> int:
        if self.worker:
            for w in self.workers:
                w.start()
            assert self.worker.proc
            return self.worker.proc.pid
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "forwarders.py"), self.kind], env=self.env,
                                     cwd=ROOT, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        return self.proc.pid

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc] if self.worker else [self.proc.pid] if self.proc else []

    def alive(self) -> bool:
        return all(w.alive for w in self.workers) if self.worker else bool(self.proc and self.proc.poll() is None)

    def stop(self) -> None:
        if self.worker:
            for w in self.workers:
                w.stop()
        elif self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self) -> str:
        path = self.worker.log_path if self.worker else self.log
        return "\n".join(path.read_text(errors="replace").splitlines()[-15:])


def _copy_data(src: Path, dst: Path) -> Path:
    """A worker's own data dir, seeded with what the training worker left (its index snapshots)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.log", "w[0-9]*"))
    return dst


async def group_members(settings: Settings) -> int:
    """Members of the service's consumer group with partitions assigned, when the group is stable."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([settings.app_id])
        _, _, state, _, _, members, *_ = response.groups[0]
        return len(members) if state == "Stable" else 0
    finally:
        await admin.close()


def fresh(broker: str, tag: str) -> tuple[Settings, dict]:
    run = uuid.uuid4().hex[:6]
    env = {"LABELSTREAM_BROKER": broker, "LABELSTREAM_APP_ID": f"bench-{tag}-{run}",
           "LABELSTREAM_TOPIC_PREFIX": f"e2e-{tag}-{run}.", "LABELSTREAM_TOPIC_PARTITIONS": str(PARTITIONS)}
    return Settings(broker=broker, app_id=env["LABELSTREAM_APP_ID"], topic_prefix=env["LABELSTREAM_TOPIC_PREFIX"],
                    topic_partitions=PARTITIONS), env


async def paced(settings: Settings, topic: str, events: list[tuple[bytes, bytes]], rate: float) -> dict[bytes, float]:
    """Send ``events`` at ``rate``/s; returns each key's send time (monotonic)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(settings.broker), linger_ms=0, acks="all",
                                max_request_size=MAX_BYTES)
    await producer.start()
    sent: dict[bytes, float] = {}
    try:
        t0, i = time.monotonic(), 0
        while i < len(events):
            target = measure.due(time.monotonic() - t0, rate, len(events))
            while i < target:
                key, value = events[i]
                sent[key] = time.monotonic()
                await producer.send(settings.topic(topic), key=key, value=value)
                i += 1
            await asyncio.sleep(0.001)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def dead_letters(settings: Settings) -> int:
    """Records on the dead-letter topic (its end offsets: nothing is read)."""
    topic = settings.topic("deadletter")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap(settings.broker), group_id=None)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def committed(settings: Settings, topic: str) -> int:
    """The service group's committed offsets on its input topic, summed (= records it calls done)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
        return sum(m.offset for tp, m in offsets.items() if tp.topic == settings.topic(topic) and m.offset > 0)
    finally:
        await admin.close()


async def load_training(w: Workload, env: dict, settings: Settings, workdir: Path, timeout: float) -> None:
    """Training goes in through a first worker, stopped once it has applied every record, so the
    measured worker starts from the changelogs like any restarted worker. (Events produced
    together with the training would race it: an object can be classified before its class's
    classifier record has been applied, and be dead-lettered as ``unknown_class``.)"""
    await produce("training", w.training, settings)
    warm = WorkerProcess({**env, "LABELSTREAM_DATA_DIR": str(workdir)}, workdir / "training.log").start()
    try:
        await asyncio.to_thread(warm.wait_ready, timeout, len(w.training))
        if "train" in w.extra:  # knn-large: its index snapshot, so the measured worker serves from Annoy
            await built(workdir / "training.log", len(w.extra["train"]), timeout)  # at once (not exact while it builds)
    finally:
        warm.stop()


async def built(log: Path, examples: int, timeout: float) -> None:
    """Wait until a worker's log says it built an index over all ``examples`` (and saved its snapshot)."""
    deadline = time.monotonic() + timeout
    while not any(m.group(1) == str(examples) for m in INDEX_LINE.finditer(log.read_text(errors="replace"))):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no index over {examples:,} examples in {timeout:.0f} s ({log})")
        await asyncio.sleep(0.5)


async def run_one(broker: str, w: Workload, kind: str, n: int, latency_seconds: float, timeout: float,
                  fraction: float = 0.5, stall: float = 60.0, profile: str | None = None,
                  profile_kinds: tuple[str, ...] = ("labelstream",)) -> Row:
    settings, env = fresh(broker, f"{w.name}-{kind}")
    await ensure_topics(settings)
    reader = Reader(settings, n)
    reader.keep_values = kind in LABELSTREAM and "train" in w.extra
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        if kind in LABELSTREAM:
            await load_training(w, env, settings, Path(tmp), timeout)
        several = PROCESSES.get(kind, 1) > 1
        if not several:
            await produce(w.topic, w.events(n, "tp"), settings)
        svc = Service(kind, settings, env, Path(tmp), w.topic)
        reader.pid = svc.start()
        reader.pids = svc.pids
        if profile and kind in profile_kinds:
            out = f"{profile}-{w.name}-{kind}.txt"
            reader.on_first, reader.on_nth = throughput.profiler(reader.pid, out)
        task = asyncio.create_task(reader.run())
        try:
            if several:  # all in the group before any event: a rebalance mid-run would be measured
                for wp in svc.workers:
                    await asyncio.to_thread(wp.wait_ready, timeout, len(w.training))
                deadline = time.monotonic() + timeout
                while await group_members(settings) != len(svc.workers):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{kind}: the group never settled with {len(svc.workers)} members")
                    await asyncio.sleep(0.5)
                await produce(w.topic, w.events(n, "tp"), settings)
            deadline = time.monotonic() + timeout
            last, last_seen = time.monotonic(), 0
            while not reader.done.is_set():
                if not svc.alive():
                    raise RuntimeError(f"{kind} exited early:\n{svc.tail()}")
                if reader.seen != last_seen:
                    last, last_seen = time.monotonic(), reader.seen
                stalled = reader.seen and time.monotonic() - last > stall
                if time.monotonic() > deadline or stalled:
                    dead = await dead_letters(settings)
                    done = await committed(settings, w.topic)
                    raise Stalled(reader.seen, f"{kind}/{w.name}: {reader.seen:,} of {n:,} outputs"
                                  + (f", none for {stall:.0f} s" if stalled else f" in {timeout:.0f} s")
                                  + f", dead letters {dead or 0}, input offsets committed {done:,}:\n{svc.tail()}")
                await asyncio.sleep(0.05)
            assert reader.first and reader.nth
            (t1, got1, cpu1), (t2, _, cpu2) = reader.first, reader.nth
            counted = reader.seen - got1  # the first poll's records arrived before the clock started
            row = Row(w.name, kind, n, reader.seen, counted / (t2 - t1), measure.per_thousand(cpu2 - cpu1, counted))
            if reader.keep_values:
                row.note = recall.check(reader.values, w.extra)
            row.paced_rate = row.rate * fraction
            m = max(100, int(row.paced_rate * latency_seconds))
            sent = await paced(settings, w.topic, w.events(m, "lat"), row.paced_rate)
            deadline = time.monotonic() + max(30.0, latency_seconds * 4)
            while len(reader.arrived) < m and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            lat, row.lat_missing = measure.latencies(sent, reader.arrived)
            p50, p95, p99 = measure.percentiles(lat)
            row.lat = (p50, p95, p99)
            row.rss = sum(measure.peak_rss(p) for p in svc.pids)
            dead = await dead_letters(settings)
            if dead:  # a benchmark of rejected events would measure the wrong thing: say so
                row.note = "; ".join(filter(None, [row.note, f"{dead:,} dead letters"]))
            return row
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            svc.stop()


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor() or "?")
    mem = measure.peak_rss_from_status("VmHWM: " + Path("/proc/meminfo").read_text().split()[1] + " kB")
    return f"{os.cpu_count()} CPUs ({model}), {mem / 2**30:.1f} GiB RAM, Linux {platform.release()}"


def versions() -> str:
    pkgs = ("faust-streaming", "aiokafka", "numpy", "annoy", "pydantic", "orjson")
    return ", ".join([f"Python {platform.python_version()}"] + [f"{p} {metadata.version(p)}" for p in pkgs]
                     + [f"Kafka {localkafka.KAFKA_VERSION} (local KRaft broker)"])


def table(rows: list[Row]) -> list[str]:
    out = ["| workload | service | events | events/s | vs raw | p50 ms | p95 ms | p99 ms | paced at /s "
           "| CPU s / 1k events | peak RSS MB |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    raw = {r.workload: r.rate for r in rows if r.service == "raw"}
    for r in rows:
        ratio = f"{r.rate / raw[r.workload]:.2f}x" if r.workload in raw else "-"
        lat = [f"{x * 1000:.1f}" for x in r.lat]
        miss = f" ({r.lat_missing} late)" if r.lat_missing else ""
        out.append(f"| {r.workload} | {r.service} | {r.seen:,} | {r.rate:,.0f} | {ratio} | {lat[0]} | {lat[1]} "
                   f"| {lat[2]}{miss} | {r.paced_rate:,.0f} | {r.cpu_per_1k:.3f} | {r.rss / 2**20:,.0f} |")
    return out


async def run_all(broker: str, a: argparse.Namespace) -> list[Row]:
    rows = []
    names = a.workloads or [w for w in EVENTS if w != "knn-large" or a.large]
    for name in names:
        w = WORKLOADS[name]() if name != "knn-large" else WORKLOADS[name](a.large_examples)
        n = int(EVENTS[name] * a.scale)
        for kind in a.services:
            t = time.monotonic()
            try:
                row = await run_one(broker, w, kind, n, a.latency_seconds, a.timeout, a.paced_fraction, a.stall,
                                    a.profile, tuple(a.profile_services))
            except Stalled as e:  # keep measuring the others; the table and the exit code carry the failure
                print(e, flush=True)
                nan = float("nan")
                row = Row(w.name, kind, n, e.seen, nan, nan, note=str(e).split(":\n")[0])
            rows.append(row)
            print(table([row])[-1], f"  ({time.monotonic() - t:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's event count")
    ap.add_argument("--workloads", nargs="*", choices=list(WORKLOADS), help="default: all but knn-large")
    ap.add_argument("--services", nargs="*", default=["raw", "faust", "lean", "labelstream"])
    ap.add_argument("--large", action="store_true", help="also knn-large (100,000 x 384 examples by default)")
    ap.add_argument("--large-examples", type=int, default=100_000)
    ap.add_argument("--latency-seconds", type=float, default=5.0, help="length of the paced phase")
    ap.add_argument("--paced-fraction", type=float, default=0.5, help="paced rate / measured events/s")
    ap.add_argument("--timeout", type=float, default=300.0, help="per service, for the throughput phase")
    ap.add_argument("--stall", type=float, default=60.0, help="give up when no output arrives for this long")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--profile", metavar="PREFIX", help="py-spy each profiled service from its first output to the "
                    "N-th: PREFIX-<workload>-<service>.txt (bench/profile.py reads them)")
    ap.add_argument("--profile-services", nargs="*", default=["labelstream"])
    ap.add_argument("--before", metavar="DIR", help="a source tree of another commit (git archive): adds the "
                    "service labelstream-before, a worker running that tree's app/ (compare commits in one run)")
    a = ap.parse_args()
    if a.before:  # PYTHONSAFEPATH: the cwd (this tree) does not shadow PYTHONPATH for `python -m app.cli`
        LABELSTREAM["labelstream-before"] = {"PYTHONSAFEPATH": "1", "PYTHONPATH": str(Path(a.before).resolve())}
    # new topics' leaders move for a moment: aiokafka logs each retried produce as a warning
    logging.basicConfig(level=logging.ERROR)
    load_before = os.getloadavg()
    started = time.monotonic()
    with localkafka.configured_or_local(os.environ.get("LABELSTREAM_BROKER")) as broker:
        rows = asyncio.run(run_all(broker, a))
    wall = time.monotonic() - started
    counts = ", ".join(f"{k} {int(v * a.scale):,}" for k, v in EVENTS.items() if k != "knn-large" or a.large)
    notes = [r for r in rows if r.note]
    lines = table(rows) + [
        "",
        *[f"- {line}" for line in measure.cpu_split({(r.workload, r.service): r.cpu_per_1k for r in rows})],
        *[f"- {r.workload} / {r.service}: {r.note}" for r in notes],
        "",
        f"Events per workload: {counts}; {PARTITIONS} partitions, one broker, every service a child process "
        "reading the same pre-produced events; events/s from the first output to the N-th as read here; "
        "latency = send call → result read here, with a producer paced at "
        f"{a.paced_fraction:.0%} of the measured rate for {a.latency_seconds:g} s; CPU = the service process's utime+stime over the events/s window; "
        "peak RSS = its VmHWM. vs raw = the raw aiokafka service on the same payloads."
        + ("".join(f" {k}: {n} workers in one group, their events produced once all were in it (this process's "
                   "producer runs during their window), CPU and RSS summed over the workers."
                   for k, n in PROCESSES.items() if k in a.services)),
        f"Machine: {machine()}; load average before the run {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f} (1/5/15 min; broker, services and this reader share the CPUs with anything else "
        f"running), after {os.getloadavg()[0]:.2f}. {versions()}. Wall time {wall:.0f} s.",
        "",
        ("Command: `make bench` (= `.venv/bin/python bench/e2e.py" + (f" --scale {a.scale:g}" if a.scale != 1 else "")
         + (" --large" if a.large else "") + "`)") if len(sys.argv) <= 1 or sys.argv[1:] in (["--large"],) else
        "Command: `" + measure.env_prefix() + ".venv/bin/python bench/e2e.py " + " ".join(sys.argv[1:]) + "`",
    ]
    body = "\n".join(lines)
    print(body)
    if not a.no_write:
        results.write_section(SECTION, body)
    return 0 if all(r.seen >= r.events and not r.lat_missing and "dead letters" not in r.note for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
