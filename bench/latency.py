"""Latency at a fixed rate, and where a worker's event loop stopped: one worker (or two commits' workers) side by side.

``--services raw labelstream`` adds the raw aiokafka forwarder paced at the same rate: what the
broker and this harness cost on their own, the floor under a worker's figures.

``bench/e2e.py`` paces each service at half of its *own* measured maximum, so two commits with
different maxima are measured at different rates. This paces every service at the *same*
``--rate`` for ``--seconds`` (after a short warm-up), and reports p50/p95/p99 of send call →
result read here, the worst 0.5-s window's p50, and the worker's CPU seconds over the paced phase;
before that, the worker's CPU over ``IDLE`` seconds with no input (share of one core).

    .venv/bin/python bench/latency.py --workloads knn-small zeroshot --rates 1000 1800
    .venv/bin/python bench/latency.py --before DIR ...   # DIR: `git archive` of another commit

Needs a broker: ``LABELSTREAM_BROKER``, else the local one (started and stopped). Prints a
Markdown table; ``--write`` puts it in the ``## Latency at a fixed rate`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import e2e  # noqa: E402  (bench/e2e.py)
import measure  # noqa: E402
import results  # noqa: E402
import throughput  # noqa: E402  (its py-spy profiler)
from app.devtools import localkafka  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

SECTION = "## Latency at a fixed rate"
IDLE = 10.0  # s of no input after the warm-up: the idle worker's own CPU
WARM = 200  # events sent at 200/s before the measured phase (first-batch costs out of the figures)


async def one(broker: str, kind: str, workload: str, rate: float, seconds: float, timeout: float,
              profile: str | None = None) -> list[str]:
    w = WORKLOADS[workload]()
    settings, env = e2e.fresh(broker, f"lat-{workload}-{kind}")
    await e2e.ensure_topics(settings)
    reader = e2e.Reader(settings, 10**9)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        await e2e.load_training(w, env, settings, Path(tmp), timeout)
        svc = e2e.Service(kind, settings, env, Path(tmp), w.topic)
        reader.pid = svc.start()
        task = asyncio.create_task(reader.run())
        try:
            if svc.worker is not None:  # a forwarder (raw) is ready once it forwards the warm-up
                await asyncio.to_thread(svc.worker.wait_ready, timeout, len(w.training))
            await e2e.paced(settings, w.topic, w.events(WARM, "warm"), WARM)
            deadline = time.monotonic() + timeout
            while reader.seen < WARM and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            bpid = broker_pid()
            pids = [reader.pid] + ([bpid] if bpid else [])
            idle0 = [measure.cpu_seconds(p) for p in pids]
            await asyncio.sleep(IDLE)  # nothing to do: what the worker (and the broker) cost anyway
            cpu0 = [measure.cpu_seconds(p) for p in pids]
            idle = [(b - a) / IDLE for a, b in zip(idle0, cpu0)]
            spy_start, spy_stop = throughput.profiler(reader.pid, f"{profile}-{workload}-{kind}-{rate:.0f}.txt") \
                if profile else (lambda: None, lambda: None)
            spy_start()
            sent = await e2e.paced(settings, w.topic, w.events(int(rate * seconds), "lat"), rate)
            deadline = time.monotonic() + max(30.0, 4 * seconds)
            while len(reader.arrived) < len(sent) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            cpu = [measure.cpu_seconds(p) - a for p, a in zip(pids, cpu0)]
            spy_stop()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            svc.stop()
    lat, missing = measure.latencies(sent, reader.arrived)
    p50, p95, p99 = measure.percentiles(lat)
    t0 = min(sent.values())
    windows: dict[int, list[float]] = {}
    for key, at in sent.items():
        if key in reader.arrived:
            windows.setdefault(int((at - t0) / 0.5), []).append(reader.arrived[key] - at)
    worst = max(measure.percentile(v, 50) for v in windows.values())
    return [workload, kind, f"{rate:,.0f}", f"{len(sent):,}", f"{p50 * 1000:.0f}", f"{p95 * 1000:.0f}",
            f"{p99 * 1000:.0f}", f"{worst * 1000:.0f}", *(f"{c / len(sent) * 1000:.3f}" for c in cpu),
            *(["-"] if not bpid else []), *(f"{100 * i:.1f} %" for i in idle), *(["-"] if not bpid else []),
            f"{missing}"]


def broker_pid() -> int | None:
    """The local broker this benchmark started (None for a configured one). It serves this process's
    producer and reader too, the same for every service, so a difference is the worker's."""
    return None if os.environ.get("LABELSTREAM_BROKER") else localkafka.Broker.from_env().pid()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["knn-small"], choices=["knn-small", "zeroshot"])
    ap.add_argument("--rates", nargs="+", type=float, default=[1000.0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--before", metavar="DIR", help="a source tree of another commit: its worker runs first (--before-last: second), as labelstream-before")
    ap.add_argument("--partitions", type=int, default=e2e.PARTITIONS, help="partitions of every topic (a worker is "
                    "assigned five consumed topics' worth)")
    ap.add_argument("--services", nargs="+", default=["labelstream"], choices=["raw", "lean", "labelstream"],
                    help="raw: plain aiokafka consume -> decode -> produce (bench/forwarders.py) at the same rate: "
                    "the latency of the broker and this harness alone")
    ap.add_argument("--before-last", action="store_true", help="run the --before tree after this one (order effects)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--profile", metavar="PREFIX", help="py-spy each worker over its paced phase: "
                    "PREFIX-<workload>-<service>-<rate>.txt (bench/profile.py reads them)")
    a = ap.parse_args()
    e2e.PARTITIONS = a.partitions
    kinds = list(a.services)
    if a.before:
        e2e.LABELSTREAM["labelstream-before"] = {"PYTHONSAFEPATH": "1", "PYTHONPATH": str(Path(a.before).resolve())}
        kinds.insert(len(kinds) if a.before_last else 0, "labelstream-before")
    logging.basicConfig(level=logging.ERROR)
    load = os.getloadavg()
    rows = []
    with localkafka.configured_or_local(os.environ.get("LABELSTREAM_BROKER")) as broker:
        for workload in a.workloads:
            for rate in a.rates:
                for kind in kinds:
                    rows.append(asyncio.run(one(broker, kind, workload, rate, a.seconds, a.timeout, a.profile)))
                    print("| " + " | ".join(rows[-1]) + " |", flush=True)
    body = "\n".join([
        "| workload | service | paced /s | events | p50 ms | p95 ms | p99 ms | worst 0.5-s p50 ms | worker CPU ms / event "
        "| broker CPU ms / event | idle worker CPU | idle broker CPU | missing |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"Send call → result read here, {a.seconds:g} s at each rate after {WARM} warm-up events and {IDLE:g} s idle "
        f"(idle worker and broker CPU: their share of one core then, the worker connected and idle; broker CPU: the local broker's over the paced phase, "
        f"serving this process's producer and reader as well); {a.partitions} partitions, one "
        f"broker (worker CPU of raw: the forwarder's); load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}. {e2e.versions()}.",
        "",
        "Command: `" + measure.env_prefix() + ".venv/bin/python bench/latency.py " + " ".join(sys.argv[1:]) + "`",
    ])
    print(body)
    if a.write:
        results.write_section(SECTION, body)
    return 0 if all(r[-1] == "0" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
