"""``labelstream demo``: the whole flow on this machine, results printed as they arrive."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

from app.devtools import localkafka, samples
from app.devtools.clients import produce, records
from app.devtools.process import WorkerProcess


def run_demo(n_objects: int = 12, timeout: float = 90.0, broker: str | None = None) -> int:
    """``broker`` None: the local broker (started, and stopped afterwards, if not running)."""
    started_at = time.monotonic()
    with localkafka.configured_or_local(broker) as url:
        worker = WorkerProcess({"LABELSTREAM_BROKER": url, "LABELSTREAM_DATA_DIR": "var/demo-worker"},
                               Path("var/demo-worker.log"))
        os.environ["LABELSTREAM_BROKER"] = url  # for this process's producer and reader
        try:
            print(f"starting a worker (log: {worker.log_path}) ...", flush=True)
            worker.start().wait_ready(timeout)
            return asyncio.run(_publish_and_print(worker, n_objects, timeout, started_at))
        finally:
            worker.stop()


async def _publish_and_print(worker: WorkerProcess, n: int, timeout: float, t0: float) -> int:
    training = samples.training_records() + samples.comment_records()
    await produce("training", training)
    worker.wait_ready(timeout, min_training=len(training))
    run = uuid.uuid4().hex[:6]
    objs = samples.objects(n, run=run) + samples.comments(run=run)
    expected = {oid: label for oid, _, label in objs}
    texts = {oid: v.get("text") for oid, v, _ in objs}
    n = len(objs)
    print(f"published {len(training)} training records; classifying {n} objects (run {run})", flush=True)
    correct = seen = 0

    async def _read() -> None:
        nonlocal correct, seen
        async for _, r in records("results", from_beginning=True):
            if r.get("item_id") not in expected:
                continue
            seen += 1
            want = expected[r["item_id"]]
            if r["method"] == "knn":
                label = r["labels"]["topic"]
                meta = r["detail"]["knn"]["topic"]["meta"]
                print(f"  knn       {r['item_id']:<18} topic={label:<9} confidence={r['confidence']['topic']:.2f} "
                      f"winning={meta['winningCount']}/{meta['overallCount']} expected={want:<9} "
                      f"index v{r['index_version']['topic']}", flush=True)
            else:
                label = r["labels"]["tone"]
                tax = r["taxonomies"][0]
                action = r["detail"]["policy"][tax["name"]]["action"]
                print(f"  zeroshot  {r['item_id']:<18} tone={label:<9} p={r['confidence']['tone']:.2f} "
                      f"action={action:<6} expected={want:<9} {tax['name']} v{tax['version']}  "
                      f"{texts[r['item_id']]!r}", flush=True)
            correct += label == want
            if seen == n:
                return

    reader = asyncio.create_task(_read())
    await asyncio.sleep(0.5)  # the reader is positioned before the objects go out
    await produce("objects", [(key, value) for key, value, _ in objs])
    try:
        await asyncio.wait_for(reader, timeout)
    except asyncio.TimeoutError:
        print(f"only {seen}/{n} results within {timeout:.0f}s: see {worker.log_path}")
        return 1
    print(f"{seen} results, {correct} as expected, in {time.monotonic() - t0:.1f}s from start")
    return 0
