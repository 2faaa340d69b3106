"""A classification job over many stored objects (issue 11): real workers, the real broker.

Declares the sample class, stores ``--objects`` unlabelled articles (a declared class without a
classifier: stored for jobs), starts one kNN job over REST and polls it to the end, printing the
job's counts, its duration, objects/s, and (with ``--kill``) the counts after one worker was
killed with -9 and restarted mid-job.

    LABELSTREAM_BROKER=kafka://127.0.0.1:41092 .venv/bin/python bench/jobs.py --objects 100000 --workers 2 --kill

The broker must be running (``LABELSTREAM_BROKER``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from app.devtools import samples  # noqa: E402
from app.devtools.stack import deployment  # noqa: E402
from tests.integration.jobs_helpers import ARTICLE, articles, http  # noqa: E402


async def main(n: int, workers: int, kill: bool) -> dict:
    broker = os.environ["LABELSTREAM_BROKER"]
    with tempfile.TemporaryDirectory() as tmp:
        async with deployment(broker, Path(tmp), name="ls-bench-jobs") as stack:
            ws = [stack.worker(f"w{i}") for i in range(workers)]
            training = samples.training_records()[:-1] + [("class:Article", ARTICLE)]
            await stack.produce("training", training)
            await asyncio.gather(*(stack.wait_ready(w, min_training=len(training)) for w in ws))
            objects, _ = articles(n, run="bench")
            t0 = time.monotonic()
            for i in range(0, n, 20_000):
                await stack.produce("objects", objects[i:i + 20_000])
            stored = await stack.collect("results", n, 600, where=lambda k, v: v["result_id"].endswith("/-"))
            store_s = time.monotonic() - t0
            assert len(stored) == n, f"only {len(stored)} of {n} stored"
            status, job = http(ws[0].web_port, "POST", "/v1/classifications", {
                "type": "knn", "class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["body"],
                "settings": {"k": 3}})
            assert status == 201, job
            path, t1, killed_at, body = f"/v1/classifications/{job['id']}", time.monotonic(), None, job
            while body["status"] == "running":
                await asyncio.sleep(0.2)
                body = http(ws[0].web_port, "GET", path)[1]
                if kill and killed_at is None and body["meta"]["countSucceeded"] >= n // 3:
                    killed_at = body["meta"]["countSucceeded"]
                    ws[-1].kill()
                    ws[-1] = stack.worker(f"w{workers - 1}")
            job_s = time.monotonic() - t1
            return {"objects": n, "workers": workers, "store_s": round(store_s, 1), "job_s": round(job_s, 1),
                    "objects_per_s": round(n / job_s), "killed_at": killed_at, "status": body["status"],
                    **body["meta"]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--kill", action="store_true", help="kill -9 and restart the last worker a third of the way in")
    args = ap.parse_args()
    print(asyncio.run(main(args.objects, args.workers, args.kill)))
