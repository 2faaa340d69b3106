"""Worker start-up to ready with N stored objects and 100k training examples: memory store vs RocksDB.

Fill (once per run, on fresh topics): the knn-large training set (``--examples``, default
100,000 x 384-d, plus its classifier) goes through the real pipeline (training topic → a first
worker validates it into the training table); then ``--objects`` stored objects are produced
straight to the ``stored-objects`` table's changelog topic (the same key bytes and partitioner
the sink uses, values in the sink's format from :func:`app.classify.objects.stored`: a 384-d
base64 vector, ``properties``, one classifier's labels; about 2.3 kB each). Classifying a
million objects through a worker would take longer than this whole benchmark is allowed.

Measured, one fresh worker process at a time, from process start:
- ``ready``: ``/health/ready`` answers 200 (tables recovered, training replica caught up)
  with every training record applied and all stored objects in the table;
- ``index``: the worker's log says the kNN index over the whole set was built or a saved
  snapshot reused (the index serves exactly from the overlay before that);
- peak RSS (VmHWM) at ready and at the end.

Runs: ``memory`` (fresh data dir), ``rocksdb cold`` (fresh data dir: recovers everything from
the changelogs), ``rocksdb warm`` (restart on the cold run's data dir: tables from local
RocksDB, index snapshot adopted).

    .venv/bin/python bench/startup.py --objects 100000 --write    # LABELSTREAM_BROKER, else the local one
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

import measure  # noqa: E402
from app.classify.expiry import stamped  # noqa: E402
from app.devtools import localkafka  # noqa: E402
from app.devtools.clients import produce  # noqa: E402
from app.devtools.process import WorkerProcess  # noqa: E402
from app.schemas.vectors import encode_vector  # noqa: E402
from app.service.admin import bootstrap, ensure_topics  # noqa: E402
from e2e import fresh  # noqa: E402
from workloads import DIM, knn_large  # noqa: E402

SECTION = "## Worker start-up with stored objects"
INDEX_LINE = re.compile(r"built v\d+ over (\d+) examples|reused saved snapshot")


def stored_value(i: int, vec: np.ndarray, at_ms: int) -> bytes:
    """A stored-objects value as the sink writes it (app/classify/objects.py ``stored``).

    >>> import orjson; v = orjson.loads(stored_value(3, np.zeros(2, np.float32), 5))
    >>> v["at"], v["object"]["id"], sorted(v["results"]["bench-large"])
    (5, 'obj-3', ['confidence', 'labels'])
    """
    obj = {"id": f"obj-{i}", "class": "Doc", "properties": {"title": f"object {i}"}, "vector": encode_vector(vec)}
    return stamped(at_ms, {"object": obj, "results": {"bench-large": {"labels": {"topic": f"t{i % 50}"},
                                                                      "confidence": {"topic": 0.8}}}})


async def changelog_topic(broker: str, app_id: str, table: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(broker))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(app_id) and t.endswith(f"{table}-changelog")]
    finally:
        await admin.close()
    if len(names) != 1:
        raise RuntimeError(f"changelog of {table} for {app_id}: {names}")
    return names[0]


async def fill_objects(broker: str, topic: str, n: int) -> float:
    """Produce ``n`` stored objects to the changelog; returns the seconds it took."""
    t = time.monotonic()
    p = AIOKafkaProducer(bootstrap_servers=bootstrap(broker), linger_ms=20, acks=1, max_batch_size=1 << 20,
                         compression_type=None)
    await p.start()
    try:
        rng = np.random.default_rng(9)
        at = int(time.time() * 1000)
        for s in range(0, n, 10_000):
            vecs = rng.standard_normal((min(n, s + 10_000) - s, DIM), dtype=np.float32)
            futs = [await p.send(topic, key=f"obj-{s + j}".encode(), value=stored_value(s + j, v, at))
                    for j, v in enumerate(vecs)]
            await asyncio.gather(*futs)
    finally:
        await p.stop()
    return time.monotonic() - t


def start_and_time(env: dict, datadir: Path, log: Path, training: int, objects: int, examples: int,
                   timeout: float) -> dict:
    w = WorkerProcess({**env, "LABELSTREAM_DATA_DIR": str(datadir)}, log)
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    w.start()
    assert w.proc
    out: dict = {"load": load}
    try:
        while "index_s" not in out or "ready_s" not in out:
            now = time.monotonic() - t0
            if now > timeout:
                raise TimeoutError(f"not ready/indexed in {timeout:.0f} s ({out}):\n{w.tail()}")
            if not w.alive:
                raise RuntimeError(f"worker exited:\n{w.tail()}")
            if "ready_s" not in out:
                h = w.health()
                if (h and h.get("ready") and h.get("training_records_applied", 0) >= training
                        and h.get("tables", {}).get("stored-objects", 0) >= objects):
                    out["ready_s"] = now
                    out["rss_ready_mib"] = measure.peak_rss(w.proc.pid) / 2**20
            if "index_s" not in out:
                for m in INDEX_LINE.finditer(log.read_text(errors="replace")):
                    if m.group(1) is None or int(m.group(1)) >= examples:
                        out["index_s"] = now
                        out["index_how"] = "reused snapshot" if m.group(1) is None else "built"
                        break
            time.sleep(0.1)
        out["peak_rss_mib"] = measure.peak_rss(w.proc.pid) / 2**20
    finally:
        w.stop(60)
    return out


async def run(broker: str, a: argparse.Namespace) -> tuple[list[tuple[str, dict]], dict]:
    settings, env = fresh(broker, "startup")
    await ensure_topics(settings)
    w = knn_large(a.examples)
    info: dict = {"load_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        d = Path(tmp)
        t = time.monotonic()
        await produce("training", w.training, settings)
        warm = WorkerProcess({**env, "LABELSTREAM_DATA_DIR": str(d / "fill")}, d / "fill.log").start()
        try:
            await asyncio.to_thread(warm.wait_ready, a.timeout, len(w.training))
        finally:
            warm.stop()
        info["training_fill_s"] = time.monotonic() - t
        topic = await changelog_topic(broker, settings.app_id, "stored-objects")
        info["objects_fill_s"] = await fill_objects(broker, topic, a.objects)
        args = (len(w.training), a.objects, a.examples, a.timeout)
        rows = []
        runs = (("memory", "memory://", "mem"), ("rocksdb, cold (empty data dir)", "rocksdb://", "rdb"),
                ("rocksdb, warm (restart on its data dir)", "rocksdb://", "rdb"))
        for i, (name, store, datadir) in enumerate(runs):  # a log per run: the index line is looked up in it
            r = await asyncio.to_thread(start_and_time, {**env, "LABELSTREAM_STORE": store}, d / datadir,
                                        d / f"run{i}.log", *args)
            print(name, r, flush=True)
            rows.append((name, r))
    info["load_end"] = os.getloadavg()[0]
    return rows, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--write", action="store_true", help="add this run's rows to bench/RESULTS.md")
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with localkafka.configured_or_local(os.environ.get("LABELSTREAM_BROKER")) as broker:
        rows, info = asyncio.run(run(broker, a))
    lines = [f"| {a.objects:,} | {a.examples:,} | {name} | {r['ready_s']:.1f} | {r['index_s']:.1f} ({r['index_how']}) "
             f"| {r['rss_ready_mib']:,.0f} | {r['peak_rss_mib']:,.0f} | {r['load']:.1f} |" for name, r in rows]
    note = (f"- {a.objects:,} objects: filled in {info['objects_fill_s']:.0f} s (straight to the changelog), "
            f"training through a worker in {info['training_fill_s']:.0f} s; load average {info['load_start']:.1f} "
            f"at start, {info['load_end']:.1f} at the end. Command: `.venv/bin/python bench/startup.py "
            f"--objects {a.objects}" + (f" --examples {a.examples}" if a.examples != 100_000 else "") + " --write`")
    print("\n".join(lines + [note]))
    if a.write:
        import results
        results.add_rows(SECTION, HEADER, lines, note)
    return 0


HEADER = ("Seconds from process start; ready = `/health/ready` 200 with every training record applied and every "
          "stored object in the table; index = the worker's log shows the kNN index over the whole training set "
          "built (or a saved snapshot reused). Peak RSS = VmHWM. One worker, 8 partitions, one local broker, "
          "2 CPUs shared with other people's benchmarks (load average per run in the last column).\n\n"
          "| stored objects | examples | store | ready s | index s | RSS at ready MiB | peak RSS MiB | load avg |\n"
          "|---:|---:|---|---:|---:|---:|---:|---:|")


if __name__ == "__main__":
    sys.exit(main())
