"""Media on request over two workers (real broker, two real worker processes).

Eight videos sit two per media partition, so each worker holds only its half of the media
store. Classify by index and by video ids on worker A (the official SDK pages through), then read
A's page token on worker B, B's on A, and an async Hive task made on A from B: every answer is the
one the pure core gives on all the videos, whichever worker holds a video or an answer.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from app.classify.assembly import partition_of
from app.core.frames import frame_scores
from app.core.media import MediaClass, classify_media
from app.core.segments import SegmentArrays
from app.schemas.vectors import encode_vector
from tests.integration import jobs_helpers

twelvelabs = pytest.importorskip("twelvelabs")  # the `test` extra pins it
pytestmark = pytest.mark.kafka

KEY, P, DIM = "fanout-key-0123456789abcdef", 4, 8
CLASSES = [{"name": "Cooking", "prompts": ["a kitchen", "a recipe"]}, {"name": "Sports", "prompts": ["a match"]}]
MOVES = ("Dance", "Other")


def video_ids() -> list[str]:
    """Two ids per partition: the media store is spread over every partition, so over both workers."""
    by_partition: dict[int, list[str]] = {p: [] for p in range(P)}
    n = 0
    while any(len(v) < 2 for v in by_partition.values()):
        vid = f"vid-{n}"
        if len(by_partition[partition_of(vid.encode(), P)]) < 2:
            by_partition[partition_of(vid.encode(), P)].append(vid)
        n += 1
    return sorted(v for ids in by_partition.values() for v in ids)


def http(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    return jobs_helpers.http(port, method, path, body, KEY, headers)


async def until(cond, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await asyncio.to_thread(cond):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def expected(segs: list[dict], vid: str, prompts: dict[str, np.ndarray]) -> dict:
    """The pure core on one video, every video's segments in the one (precomputed) visual space."""
    arr = SegmentArrays.from_segments([{**s, "vector": np.asarray(s["vector"], np.float32)} for s in segs], dim=DIM)
    classes = [MediaClass(c["name"], c["prompts"], np.stack([prompts[p] for p in c["prompts"]])) for c in CLASSES]
    return classify_media(arr, 8.0, classes, video_id=vid, options=["visual"], include_clips=True,
                          threshold={"min_clip_score": 10})


def sdk(monkeypatch, port: int):
    monkeypatch.setenv("TWELVELABS_BASE_URL", f"http://127.0.0.1:{port}")
    return twelvelabs.TwelveLabs(api_key=KEY)  # reads the base URL now: one client per worker


@pytest.mark.parametrize("stack", [P], indirect=True)
async def test_any_worker_answers_from_every_workers_media(stack, monkeypatch):
    rng = np.random.default_rng(11)
    centres = {c["name"]: rng.normal(size=DIM) for c in CLASSES}
    prompts = {"a kitchen": centres["Cooking"], "a recipe": centres["Cooking"] + rng.normal(size=DIM),
               "a match": centres["Sports"]}
    pv = rng.normal(size=(len(MOVES), DIM))
    training = [("index:fan", {"record": "index", "id": "fan", "options": {"visual": {"vectorizer": "precomputed",
                                                                                      "dim": DIM}}})]
    training += [(f'prompt:{json.dumps(["fan", "visual", p], separators=(",", ":"))}',
                  {"record": "prompt_vector", "index_id": "fan", "option": "visual", "prompt": p, "vector": v.tolist()})
                 for p, v in prompts.items()]
    training += [("taxonomy:moves", {"record": "taxonomy", "name": "moves", "version": 1, "vectorizer": "none",
                                     "temperature": 0.1, "classes": [{"name": n, "prompts": [n.lower()],
                                                                      "prompt_vectors": [pv[i].tolist()]}
                                                                     for i, n in enumerate(MOVES)]}),
                 ("classifier:moves", {"record": "classifier", "name": "moves", "type": "media",
                                       "taxonomies": ["moves"], "media": {"index_id": "clips", "output": "hive"}})]
    a, b = (stack.worker(name, LABELSTREAM_API_KEYS=KEY) for name in ("a", "b"))
    await stack.produce("training", training)
    await asyncio.gather(*(stack.wait_ready(w, min_training=len(training)) for w in (a, b)))
    await asyncio.gather(*(stack.wait_ready(w, min_training=len(training)) for w in (a, b)))  # both in the group

    ids = video_ids()
    segments = {}
    for n, vid in enumerate(ids):
        topic = CLASSES[n % 2]["name"]
        segments[vid] = [{"start": float(t), "end": float(t + 2), "option": "visual",
                          "vector": (centres[topic] + rng.normal(0, 0.7, DIM)).astype(np.float32)} for t in range(0, 8, 2)]
    await stack.produce("media", [(vid, {"media_id": vid, "index_id": "fan", "kind": "video", "duration": 8,
                                         "segments": [{**s, "vector": encode_vector(s["vector"])} for s in segs]})
                                  for vid, segs in segments.items()])

    def held() -> tuple[int, int] | None:
        sizes = tuple(((w.health() or {}).get("tables") or {}).get("media-store", 0) for w in (a, b))
        return sizes if sum(sizes) == len(ids) and all(sizes) else None

    held_a, held_b = await until(held, "the media spread over both workers")
    assert held_a < len(ids) and held_b < len(ids)  # neither worker holds every video
    want = {vid: expected(segs, vid, prompts) for vid, segs in segments.items()}

    # 1. the whole index on A, 3 per page, through the SDK's iterator: every video, the pure core's scores
    client_a, client_b = sdk(monkeypatch, a.web_port), sdk(monkeypatch, b.web_port)
    opts = {"options": ["visual"], "classes": CLASSES, "include_clips": True, "threshold": {"min_clip_score": 10}}
    first = await asyncio.to_thread(client_a.classify.index, index_id="fan", page_limit=3, **opts)
    assert (first.page_info.total_results, first.page_info.limit_per_page) == (len(ids), 3)
    token = first.page_info.next_page_token
    pages = [list(first.data)]
    while (page := await asyncio.to_thread(next, first, None)) is not None:
        pages.append(list(page))
    assert [len(p) for p in pages] == [3, 3, 2]
    got = [v.model_dump(exclude_none=True) for p in pages for v in p]
    assert [v["video_id"] for v in got] == ids  # the single-worker order: by media_id
    assert got == [drop_none(want[vid]) for vid in ids]

    # 2. A's page token read on B (its home partition is A's: B forwards the read)
    middle = await asyncio.to_thread(client_b.classify.by_page_token, token)
    assert [v.model_dump(exclude_none=True) for v in middle.data] == got[3:6]
    assert middle.page_info.prev_page_token and middle.page_info.next_page_token

    # 3. videos by id on A, in the request's order, whichever worker holds them; and a bulk made on B read on A
    chosen = [ids[7], ids[0], ids[4], ids[1]]
    res = await asyncio.to_thread(client_a.classify.videos, video_ids=chosen, page_limit=2, **opts)
    assert [v.model_dump(exclude_none=True) for v in res.data] == [drop_none(want[v]) for v in chosen[:2]]
    status, rest = http(b.web_port, "GET", f"/v1.2/classify/{res.page_info.next_page_token}")
    assert status == 200 and drop_none(rest["data"]) == [drop_none(want[v]) for v in chosen[2:]]
    status, on_b = http(b.web_port, "POST", "/v1.2/classify/bulk", {"index_id": "fan", "page_limit": 5, **opts})
    assert status == 200 and drop_none(on_b["data"]) == got[:5]
    assert drop_none(http(a.web_port, "GET", f"/v1.2/classify/{on_b['page_info']['next_page_token']}")[1]["data"]) \
        == got[5:]
    assert http(b.web_port, "POST", "/v1.2/classify", {"video_ids": [ids[2], "ghost"], **opts}) == (
        404, {"code": "resource_not_exist", "message": "The video ghost does not exist."})
    status, doc = http(b.web_port, "GET", "/v1.2/classify/unknown_token-1")
    assert status == 400 and doc["code"] == "parameter_invalid" and "unknown or has expired" in doc["message"]

    # 4. a Hive async task made on A, followed on B; its output is the pure core's frames
    segs = [{"start": float(t), "end": float(t + 1), "option": "visual",
             "vector": (pv[t // 5] + rng.normal(0, 0.3, DIM)).tolist()} for t in range(10)]
    hive = {"Authorization": f"Token {KEY}"}
    status, task = http(a.web_port, "POST", "/api/v2/task/async", {
        "media_id": "dance-1", "index_id": "clips", "kind": "video", "duration": 10, "segments": segs,
        "model": "moves"}, hive)
    assert status == 200 and task["status"]["status"]["message"] == "PENDING", task
    done = await until(lambda: (d := http(b.web_port, "GET", f"/api/v2/task/{task['id']}", headers=hive)[1])
                       and d["status"]["status"]["message"] != "PENDING" and d, "the task on B")
    unit = (pv / np.linalg.norm(pv, axis=1, keepdims=True)).astype(np.float32)
    frames = frame_scores(SegmentArrays.from_segments(segs), [MediaClass(n, [n.lower()], unit[i:i + 1])
                                                              for i, n in enumerate(MOVES)],
                          temperature=0.1, options=("visual", "conversation", "text_in_video"))
    assert done["id"] == task["id"] and done["status"]["status"]["message"] == "SUCCESS"
    assert done["status"]["response"]["output"] == frames
    assert http(a.web_port, "GET", f"/api/v2/task/{task['id']}", headers=hive)[1] == done
    assert http(b.web_port, "GET", "/api/v2/task/no-such-task", headers=hive) == (
        404, {"code": 404, "status": {"status": {"code": 404, "message": "task no-such-task does not exist (or has "
                                                                        "expired)"}}})


def drop_none(x):
    """The SDK's models hold an absent optional field and a null alike (thumbnail_url): compare without them."""
    if isinstance(x, dict):
        return {k: drop_none(v) for k, v in x.items() if v is not None}
    return [drop_none(v) for v in x] if isinstance(x, list) else x
