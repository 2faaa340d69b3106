"""Jobs under faults, two workers: kill -9 and restart mid-job; either worker answers; scope ``all``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

from app.devtools import samples
from app.schemas.vectors import encode_vector
from tests.integration.jobs_helpers import ARTICLE, articles, http, raw_results

N = 6000


async def _until(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(predicate)
        if got:
            return got
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


async def test_kill_and_restart_mid_job_keeps_the_counts(stack):
    env = {"LABELSTREAM_JOB_CHUNK": "20"}  # many small steps: the kill lands mid-job
    w1, w2 = stack.worker("w1", **env), stack.worker("w2", **env)
    training = samples.training_records()[:-1] + [("class:Article", ARTICLE)]
    await stack.produce("training", training)
    await asyncio.gather(stack.wait_ready(w1, min_training=len(training)),
                         stack.wait_ready(w2, min_training=len(training)))
    objects, _ = articles(N, run="faults")
    await stack.produce("objects", objects)
    assert len(await stack.collect("results", N, 90, where=lambda k, v: v["result_id"].endswith("/-"))) == N

    status, job = http(w1.web_port, "POST", "/v1/classifications", {
        "type": "knn", "class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["body"],
        "settings": {"k": 3}})
    assert status == 201 and job["status"] == "running" and job["meta"]["completed"] == "0001-01-01T00:00:00.000Z"
    path = f"/v1/classifications/{job['id']}"

    # progress is visible while it runs, from either worker
    mid = await _until(lambda: (b := http(w2.web_port, "GET", path)[1]) and b["meta"]["countSucceeded"] >= N // 10
                       and b, 60, "progress")
    assert mid["status"] == "running" and mid["meta"]["countSucceeded"] < N and "count" not in mid["meta"], mid
    w2.kill()
    w2 = stack.worker("w2", **env)  # restarted on its data dir while w1 goes on
    done = await _until(lambda: (b := http(w1.web_port, "GET", path)[1]) and b["status"] != "running" and b,
                        120, "the job to finish", every=0.5)
    assert done["status"] == "completed", done
    assert done["meta"]["count"] == done["meta"]["countSucceeded"] == N and "countFailed" not in done["meta"]
    await stack.wait_ready(w2)
    assert http(w2.web_port, "GET", path)[1] == done  # either worker answers, the same

    results = await raw_results(stack.settings, f"job:{job['id']}", N)
    by_id: defaultdict[str, set[bytes]] = defaultdict(set)
    for rid, value in results:
        by_id[rid].add(value)
    assert len(by_id) == N  # nothing lost
    assert len(results) <= N + 8 * 20  # resumed from the progress: at most one chunk per partition redone
    assert all(len(values) == 1 for values in by_id.values())  # redelivered results are the same bytes
    # any worker answers for any object: w2 forwards to the owner of the object's partition
    some = objects[11][0]
    a, b = (http(w.web_port, "GET", f"/v1/objects/Article/{some}?include=classification") for w in (w1, w2))
    assert a == b and a[0] == 200 and a[1]["additional"]["classification"]["id"] == job["id"]


E = np.eye(4)


def taxonomy(version: int, swap: bool) -> dict:
    a, b = (E[1], E[0]) if swap else (E[0], E[1])
    return {"record": "taxonomy", "name": "tone", "version": version, "vectorizer": "none",
            "classes": [{"name": "calm", "prompts": ["a calm remark"], "prompt_vectors": [a.tolist()]},
                        {"name": "toxic", "prompts": ["an insult"], "prompt_vectors": [b.tolist()]}]}


COMMENT = {"record": "class", "class": "Comment", "properties": [
    {"name": "text", "dataType": ["text"]}, {"name": "tone", "dataType": ["Tone"]}]}
ZEROSHOT = {"type": "zeroshot", "class": "Comment", "classifyProperties": ["tone"], "basedOnProperties": ["text"],
            "settings": {"taxonomies": ["tone"]}}


async def test_scope_all_relabels_with_the_new_taxonomy_version(stack):
    w = stack.worker()
    await stack.produce("training", [("taxonomy:tone", taxonomy(1, swap=False)), ("class:Comment", COMMENT)])
    await stack.wait_ready(w, min_training=2)
    n = 200
    await stack.produce("objects", [(f"c{i}", {"id": f"c{i}", "class": "Comment", "properties": {"text": "hi"},
                                               "vector": encode_vector(E[0] + 0.05 * E[2])}) for i in range(n)])
    assert len(await stack.collect("results", n, 60, where=lambda k, v: v["result_id"].endswith("/-"))) == n

    async def run(body: dict) -> dict:
        status, job = http(w.web_port, "POST", "/v1/classifications", body)
        assert status == 201, job
        return await _until(lambda: (b := http(w.web_port, "GET", f"/v1/classifications/{job['id']}")[1])
                            and b["status"] != "running" and b, 60, "the job", every=0.2)

    first = await run(ZEROSHOT)
    assert first["status"] == "completed" and first["meta"]["count"] == n
    await stack.produce("training", [("taxonomy:tone", taxonomy(2, swap=True))])
    await stack.wait_ready(w, min_training=3)
    assert (await run(ZEROSHOT))["status"] == "failed"  # unlabeled: nothing left
    second = await run({**ZEROSHOT, "scope": "all"})
    assert second["status"] == "completed" and second["meta"]["count"] == n and second["scope"] == "all"

    for job, version, label in ((first, 1, "calm"), (second, 2, "toxic")):
        got = await stack.collect("results", n, 30, where=lambda k, v, j=job: v["classifier"] == f"job:{j['id']}")
        assert len(got) == n
        assert {(v["taxonomies"][0]["version"], v["labels"]["tone"]) for _, v in got} == {(version, label)}
    status, obj = http(w.web_port, "GET", "/v1/objects/Comment/c3?include=classification")
    assert status == 200 and obj["properties"]["tone"][0]["label"] == "toxic"
    assert obj["additional"]["classification"]["id"] == second["id"]

    # the CLI (another helper's HTTP client of these endpoints) against the real worker
    url = f"http://127.0.0.1:{w.web_port}"
    cli = [sys.executable, "-m", "app.cli", "jobs"]
    started = await asyncio.to_thread(subprocess.run, cli + [
        "start", "--type", "zeroshot", "--class", "Comment", "--classify", "tone", "--based-on", "text",
        "--taxonomy", "tone", "--scope", "all", "--watch", "--url", url], capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "completed" in started.stdout
    listed = await asyncio.to_thread(subprocess.run, cli + ["list", "--json", "--url", url],
                                     capture_output=True, text=True, timeout=30)
    jobs = json.loads(listed.stdout)
    assert [j["status"] for j in jobs] == ["completed", "failed", "completed", "completed"]
    assert jobs[-1]["meta"]["count"] == n


async def test_jobs_are_removed_after_their_retention(stack):
    w = stack.worker(LABELSTREAM_JOBS_RETENTION="3", LABELSTREAM_SWEEP_INTERVAL="0.5")
    await stack.produce("training", [("taxonomy:tone", taxonomy(1, swap=False)), ("class:Comment", COMMENT)])
    await stack.wait_ready(w, min_training=2)
    await stack.produce("objects", [("c0", {"id": "c0", "class": "Comment", "vector": encode_vector(E[0])})])
    assert await stack.collect("results", 1, 30)
    status, job = http(w.web_port, "POST", "/v1/classifications", ZEROSHOT)
    assert status == 201
    path = f"/v1/classifications/{job['id']}"
    done = await _until(lambda: (b := http(w.web_port, "GET", path)[1]) and b["status"] != "running" and b,
                        30, "the job", every=0.2)
    assert done["status"] == "completed"
    await _until(lambda: http(w.web_port, "GET", path)[0] == 404 and http(w.web_port, "GET", "/v1/classifications")
                 == (200, []), 30, "the job's removal", every=0.5)
