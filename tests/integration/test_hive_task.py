"""Hive's task API on a real worker (real broker): a 2-minute video in one sync request, the repeat
served from the cache, the async form (the result on the results topic and at GET), error paths.
Expected frames come from the pure core (``app.core.frames.frame_scores``) on the same segments."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest

from app.core.frames import frame_scores
from tests.integration import jobs_helpers
from app.core.media import MediaClass
from app.core.segments import SegmentArrays, merge_chunks

pytestmark = pytest.mark.kafka

KEY, RATE_KEY, DIM, SECONDS, RATE = "hive-main-key-0123456789", "hive-rate-key-0123456789", 8, 120, 20
CLASSES = ("Dance", "Cooking", "Other")


def http(port: int, method: str, path: str, body: bytes | None = None, key: str | None = KEY) -> tuple[int, Any]:
    return jobs_helpers.http(port, method, path, body, headers={"Authorization": f"Token {key}"} if key else None)


def hive_error(status: int, message: str) -> dict:
    return {"code": status, "status": {"status": {"code": status, "message": message}}}


async def test_hive_sync_and_async_tasks(stack):
    rng = np.random.default_rng(3)
    pv = rng.normal(size=(len(CLASSES), DIM))
    tax = {"record": "taxonomy", "name": "moves", "version": 1, "vectorizer": "none", "temperature": 0.1,
           "classes": [{"name": n, "prompts": [n.lower()], "prompt_vectors": [pv[i].tolist()]}
                       for i, n in enumerate(CLASSES)]}
    clf = {"record": "classifier", "name": "moves", "type": "media", "taxonomies": ["moves"],
           "media": {"index_id": "clips", "output": "hive"}}
    w = stack.worker(LABELSTREAM_API_KEYS=f"{KEY},{RATE_KEY}", LABELSTREAM_CLASSIFY_RATE_LIMIT=str(RATE),
                     LABELSTREAM_MAX_REQUEST_BYTES="200000")
    await stack.produce("training", [("taxonomy:moves", tax), ("classifier:moves", clf)])
    await stack.wait_ready(w, min_training=2)
    port = w.web_port

    segs = [{"start": float(t), "end": float(t + 1), "option": "visual",
             "vector": (pv[(t // 40) % 3] + rng.normal(0, 0.3, DIM)).tolist()} for t in range(SECONDS)]
    video = {"media_id": "dance-1", "index_id": "clips", "kind": "video", "mimetype": "video/mp4",
             "duration": SECONDS, "segments": segs, "model": "moves"}
    arr = SegmentArrays.from_segments(merge_chunks([{"segments": segs}]))
    unit = (pv / np.linalg.norm(pv, axis=1, keepdims=True)).astype(np.float32)
    frames = frame_scores(arr, [MediaClass(n, [n.lower()], unit[i:i + 1]) for i, n in enumerate(CLASSES)],
                          temperature=0.1, options=("visual", "conversation", "text_in_video"))

    # sync: the whole 2-minute video, per-frame output in one response
    status, env = http(port, "POST", "/api/v2/task/sync", json.dumps(video).encode())
    assert status == 200, env
    out = env["status"]["response"]["output"]
    assert env["status"]["status"] == {"code": 0, "message": "SUCCESS"} and env["from_cache"] is False
    assert len(out) == SECONDS and out == frames
    assert env["status"]["response"]["input"]["model"] == "moves"
    assert env["status"]["response"]["input"]["media"]["duration"] == SECONDS
    # the repeat: from the cache, same output
    status, again = http(port, "POST", "/api/v2/task/sync", json.dumps(video).encode())
    assert status == 200 and again["from_cache"] is True and again["status"]["response"]["output"] == frames

    # async: the id at once, then the envelope at GET and the result on the results topic
    other = {**video, "media_id": "dance-2", "segments": segs[:30], "duration": 30}
    status, task = http(port, "POST", "/api/v2/task/async", json.dumps(other).encode())
    assert status == 200 and task["status"]["status"]["message"] == "PENDING", task
    deadline = time.monotonic() + 30
    while (doc := http(port, "GET", f"/api/v2/task/{task['id']}")[1])["status"]["status"]["message"] == "PENDING":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert doc["id"] == task["id"] and doc["status"]["status"]["message"] == "SUCCESS"
    assert doc["status"]["response"]["output"] == frames[:30]
    [(key, result)] = await stack.collect("results", 1, timeout=30, where=lambda k, v: v["item_id"] == "dance-2")
    assert key == b"dance-2" and result["detail"]["hive"]["status"]["response"]["output"] == frames[:30]

    # error paths, in Hive's shape
    assert http(port, "POST", "/api/v2/task/sync", b'{"media_id": ') [0] == 400
    assert http(port, "POST", "/api/v2/task/sync", json.dumps({**video, "model": "nope"}).encode()) == (
        404, hive_error(404, "unknown_classifier: no media classifier named 'nope'"))
    assert http(port, "POST", "/api/v2/task/sync", json.dumps({**video, "kind": "hologram"}).encode())[0] == 400
    assert http(port, "POST", "/api/v2/task/sync", json.dumps({**video, "chunk": {"seq": 0}}).encode()) == (
        400, hive_error(400, "a task takes a whole media item: send chunks to the media topic instead"))
    no_key = "no API key: send Authorization: Bearer <key> or x-api-key"
    assert http(port, "POST", "/api/v2/task/sync", json.dumps(video).encode(), key=None) == (401, hive_error(401, no_key))
    assert http(port, "POST", "/api/v2/task/sync", json.dumps(video).encode(), key="wrong-key-0123456789") == (
        401, hive_error(401, "invalid API key"))
    big = {**video, "segments": segs * 10}
    assert http(port, "POST", "/api/v2/task/sync", json.dumps(big).encode())[0] == 413
    assert http(port, "GET", "/api/v2/task/sync") == (405, hive_error(405, "method GET is not allowed on /api/v2/task/sync"))
    assert http(port, "GET", "/api/v2/task/no-such-task") == (
        404, hive_error(404, "task no-such-task does not exist (or has expired)"))
    codes = [http(port, "GET", "/api/v2/task/x", key=RATE_KEY)[0] for _ in range(RATE + 1)]
    assert codes == [404] * RATE + [429]
    assert http(port, "GET", "/api/v2/task/x", key=RATE_KEY)[1] == hive_error(429, "rate limit exceeded: try again later")
