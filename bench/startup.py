"""Worker start-up to ready with N stored objects and 100k training examples: memory store vs RocksDB.

Fill (once per run, on fresh topics): ``--examples`` knn-large training examples (default
100,000 x 384-d, plus its classifier) and ``--objects`` stored objects (a 384-d base64 vector,
``properties``, one classifier's labels: about 2.3 kB each) are produced straight to the
``training`` and ``stored-objects`` changelogs, as the worker would have written them
(bench/fill.py: the training agent's own validator, the sink's value format, the same
partitioner).

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
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import fill  # noqa: E402  (bench/fill.py)
import measure  # noqa: E402
from app.devtools import localkafka  # noqa: E402
from app.devtools.process import WorkerProcess  # noqa: E402
from app.service.admin import ensure_topics  # noqa: E402
from e2e import INDEX_LINE, PARTITIONS, fresh  # noqa: E402
from workloads import knn_large  # noqa: E402

SECTION = "## Worker start-up with stored objects"


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
                # the stored objects counted for this request, once ready (a count walks a RocksDB table's keys)
                if (h and h.get("ready") and h.get("training_records_applied", 0) >= training
                        and ((w.health(fresh=True) or {}).get("tables", {}).get("stored-objects", 0) >= objects)):
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
    info.update(await fill.fill(settings, PARTITIONS, w.training, a.objects))
    args = (len(w.training), a.objects, a.examples, a.timeout)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        d = Path(tmp)
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
    note = (f"- {a.objects:,} objects: changelogs filled in {info['objects_s']:.0f} s (objects) and "
            f"{info['training_s']:.0f} s (training); load average {info['load_start']:.1f} "
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
