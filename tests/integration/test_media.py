"""Media through the real broker: a 2-hour video in chunks, the result cache, an image.

The video is 7,200 one-second steps x 3 options = 21,600 segments of 32-d base64 vectors,
sent as 10 chunks (~0.55 MB each) with one chunk duplicated and two pairs out of order.
Expected numbers are computed here with the pure core on the same segments.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from app.core.frames import frame_scores
from app.core.media import MediaClass, classify_media
from app.core.segments import OPTIONS, SegmentArrays, merge_chunks
from app.schemas.vectors import encode_vector

DIM, SECONDS, CHUNKS = 32, 7200, 10
CLASSES = ("Sports", "Cooking", "Dance")
SETTINGS = {"options": list(OPTIONS), "show_detailed_score": True, "threshold": {"min_clip_score": 40},
            "output": "both"}


def prompt_vectors(rng) -> np.ndarray:
    return rng.normal(size=(len(CLASSES), 2, DIM))  # two prompts per class


def taxonomy(pv: np.ndarray) -> dict:
    return {"record": "taxonomy", "name": "genres", "version": 1, "vectorizer": "none", "temperature": 0.05,
            "classes": [{"name": n, "prompts": [f"{n} a", f"{n} b"], "prompt_vectors": pv[i].tolist()}
                        for i, n in enumerate(CLASSES)]}


CLASSIFIER = {"record": "classifier", "name": "genre", "type": "media", "taxonomies": ["genres"], "media": SETTINGS}


def video_segments(rng, pv: np.ndarray) -> list[dict]:
    """Sports for the first hour, Cooking for 30 min, Dance for the last 30 min; noisier
    conversation and text, so scores differ by option."""
    t = np.arange(SECONDS)
    cls = np.where(t < 3600, 0, np.where(t < 5400, 1, 2))
    segs = []
    for code, option in enumerate(OPTIONS):
        base = pv[cls, rng.integers(0, 2, SECONDS)]
        v = base / np.linalg.norm(base, axis=1, keepdims=True) + rng.normal(0, 0.12 * (1 + code), (SECONDS, DIM))
        segs += [{"start": float(s), "end": float(s + 1), "option": option, "vector": v[s].astype(np.float32)}
                 for s in range(SECONDS)]
    return segs


def chunk_records(media_id: str, segs: list[dict], seconds: int = SECONDS) -> list[tuple[str, dict]]:
    per = seconds // CHUNKS
    out = []
    for seq in range(CHUNKS):
        part = [s for s in segs if seq * per <= s["start"] < (seq + 1) * per]
        out.append((media_id, {
            "media_id": media_id, "index_id": "idx", "kind": "video", "mimetype": "video/mp4", "duration": seconds,
            "chunk": {"seq": seq, "final": seq == CHUNKS - 1, "total": CHUNKS},
            "segments": [{**s, "vector": encode_vector(s["vector"])} for s in part]}))
    return out


def expected(segs: list[dict], pv: np.ndarray) -> tuple[dict, list]:
    arr = SegmentArrays.from_segments(merge_chunks([{"segments": segs}]))
    unit = (pv / np.linalg.norm(pv, axis=-1, keepdims=True)).astype(np.float32)  # as the compiled taxonomy holds them
    classes = [MediaClass(n, [f"{n} a", f"{n} b"], unit[i]) for i, n in enumerate(CLASSES)]
    tl = classify_media(arr, SECONDS, classes, video_id="vid-1", options=OPTIONS, show_detailed_score=True,
                        threshold=SETTINGS["threshold"])
    return tl, frame_scores(arr, classes, temperature=0.05, options=OPTIONS)


async def test_chunked_two_hour_video_cache_and_image(stack):
    rng = np.random.default_rng(11)
    pv = prompt_vectors(rng)
    w = stack.worker()
    await stack.produce("training", [("taxonomy:genres", taxonomy(pv)), ("classifier:genre", CLASSIFIER)])
    await stack.wait_ready(w, min_training=2)

    segs = video_segments(rng, pv)
    chunks = chunk_records("vid-1", segs)
    # one chunk twice, two pairs swapped; the final chunk (9) arrives before 8
    order = [0, 1, 2, 4, 3, 5, 6, 6, 7, 9, 8]
    t0 = time.monotonic()
    await stack.produce("media", [chunks[i] for i in order])
    is_video = lambda k, v: v["item_id"] == "vid-1"  # noqa: E731
    got = await stack.collect("results", 1, timeout=60, where=is_video)
    latency = time.monotonic() - t0
    assert len(got) == 1, w.tail()
    key, r = got[0]
    tl, frames = expected(segs, pv)
    assert key == b"vid-1" and r["result_id"] == "vid-1/genre" and r["item_kind"] == "media"
    assert r["method"] == "media" and r["class"] == "video" and r["from_cache"] is False
    assert r["detail"]["segments"] == 3 * SECONDS and r["taxonomies"] == [{"name": "genres", "version": 1}]
    assert r["detail"]["twelvelabs"] == tl, "classes, scores and duration ratios as the pure core computes them"
    assert r["labels"] == {"class": "Sports"} and tl["classes"][0]["name"] == "Sports"
    assert 0.45 < tl["classes"][0]["duration_ratio"] < 0.55
    hive = r["detail"]["hive"]
    assert hive["status"]["response"]["output"] == frames and len(frames) == SECONDS
    assert hive["status"]["response"]["input"]["media"]["duration"] == SECONDS

    # The same video again (all chunks, in order): served from the cache.
    await stack.produce("media", chunks)
    again = await stack.collect("results", 2, timeout=60, where=is_video)
    assert len(again) == 2, w.tail()
    r2 = again[1][1]
    assert r2["from_cache"] is True and r2["detail"]["hive"]["from_cache"] is True
    assert r2["detail"]["twelvelabs"] == tl and r2["labels"] == r["labels"]
    assert r2["detail"]["hive"]["id"] == hive["id"] and r2["source"]["offset"] > r["source"]["offset"]

    # An image: one frame at time 0 in the Hive output.
    img = {"media_id": "img-1", "index_id": "idx", "kind": "image", "mimetype": "image/jpeg", "width": 640,
           "height": 480, "segments": [{"start": 0, "end": 0, "option": "visual", "vector": encode_vector(pv[2, 0])}]}
    await stack.produce("media", [("img-1", img)])
    [(_, ri)] = await stack.collect("results", 1, timeout=30, where=lambda k, v: v["item_id"] == "img-1")
    out = ri["detail"]["hive"]["status"]["response"]["output"]
    assert len(out) == 1 and out[0]["time"] == 0 and ri["labels"] == {"class": "Dance"}
    assert ri["detail"]["hive"]["status"]["response"]["input"]["media"]["type"] == "image"

    # Exactly one result per media item, and nothing dead-lettered.
    assert len(await stack.collect("results", 4, timeout=3)) == 3
    assert not await stack.collect("deadletter", 1, timeout=1)
    print(f"\n2-hour video (21,600 segments, 10 chunks): first result {latency:.2f}s after producing")


async def test_media_dead_letters(stack):
    w = stack.worker()
    pv = prompt_vectors(np.random.default_rng(1))
    await stack.produce("training", [("taxonomy:genres", taxonomy(pv)), ("classifier:genre", CLASSIFIER)])
    await stack.wait_ready(w, min_training=2)
    seg = {"start": 0, "end": 1, "option": "visual", "vector": encode_vector(pv[0, 0])}
    base = {"index_id": "idx", "kind": "video", "duration": 1, "segments": [seg]}
    await stack.produce("media", [
        ("m-named", {**base, "media_id": "m-named", "classifier": "nope"}),
        ("m-dim", {**base, "media_id": "m-dim", "segments": [{**seg, "vector": encode_vector(np.ones(DIM + 1))}]}),
        ("wrong-key", {**base, "media_id": "m-key", "chunk": {"seq": 0}}),
        ("m-inc", {**base, "media_id": "m-inc", "chunk": {"seq": 1, "final": True}}),
        ("m-inc", {**base, "media_id": "m-inc", "chunk": {"seq": 3}}),  # after the final one: never complete
        ("m-wait", {**base, "media_id": "m-wait", "chunk": {"seq": 1, "final": True}}),  # waits for seq 0
        ("m-bad", b"{not json"),
        ("m-ok", {**base, "media_id": "m-ok"}),
    ])
    got = await stack.collect("deadletter", 5, timeout=30)
    assert sorted(v["reason"] for _, v in got) == sorted(["unknown_classifier", "vector_dimension_mismatch",
                                                          "media_key_mismatch", "chunks_inconsistent", "invalid_json"])
    results = await stack.collect("results", 2, timeout=3)
    assert [v["item_id"] for _, v in results] == ["m-ok"], "waiting and rejected chunks yield no result"


async def test_chunks_survive_a_kill9_and_are_deleted_once_classified(stack):
    """Half the chunks, kill -9, a new worker recovers them from the changelog and completes
    the item; afterwards only the done marker is left in the compacted assembly table."""
    from app.settings import Settings

    rng = np.random.default_rng(5)
    pv = prompt_vectors(rng)
    w = stack.worker("w1")
    await stack.produce("training", [("taxonomy:genres", taxonomy(pv)), ("classifier:genre", CLASSIFIER)])
    await stack.wait_ready(w, min_training=2)
    segs = [s for s in video_segments(rng, pv) if s["start"] < SECONDS // 10]  # 12 minutes, 10 chunks of 72 s
    chunks = chunk_records("vid-k", segs, SECONDS // 10)
    t0 = time.monotonic()
    await stack.produce("media", chunks[:5])
    changelog = Settings(broker=stack.settings.broker, topic_prefix="")
    name = f"{stack.settings.app_id}-media-assembly-changelog"
    stored = await stack_collect(changelog, name, 6, timeout=30)  # 5 chunks + the index entry, at least
    assert len(stored) >= 6, w.tail()
    await committed(stack.settings, "media", 5)  # so the new worker has them from the table, not by redelivery
    w.kill()
    t1 = time.monotonic()
    w2 = stack.worker("w2")
    await stack.wait_ready(w2, min_training=2)
    t2 = time.monotonic()
    await stack.produce("media", chunks[5:])
    got = await stack.collect("results", 1, timeout=45, where=lambda k, v: v["item_id"] == "vid-k")
    assert len(got) == 1, w2.tail()
    arr = SegmentArrays.from_segments(merge_chunks([{"segments": segs}]))
    assert got[0][1]["detail"]["segments"] == arr.n == 3 * SECONDS // 10
    t3 = time.monotonic()
    print(f"\nfirst half stored {t1 - t0:.1f}s, restart ready {t2 - t1:.1f}s, result {t3 - t2:.1f}s")
    await asyncio.sleep(2)  # the deletes are flushed before the commit
    latest = {k: v for k, v in await stack_collect(changelog, name, 10_000, timeout=3)}
    live = {k: v for k, v in latest.items() if v is not None}
    markers = list(live.values())  # {"at": ms, "done": offset}: "at" dates the marker for media_done_ttl
    assert [{k: v for k, v in m.items() if k != "at"} for m in markers] == [{"done": got[0][1]["source"]["offset"]}], \
        "chunks deleted, marker left"
    assert abs(markers[0]["at"] / 1000 - time.time()) < 120, markers
    assert len(await stack.collect("results", 2, timeout=2)) == 1, "one result for the item"


async def committed(settings, topic: str, n: int, timeout: float = 20) -> None:
    """Wait until the worker group has committed ``n`` records of ``topic``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.service.admin import bootstrap

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap(settings.broker), group_id=settings.app_id,
                         enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(settings.topic(topic), p) for p in range(settings.topic_partitions)]
        deadline = time.monotonic() + timeout
        while sum([await c.committed(tp) or 0 for tp in tps]) < n:
            assert time.monotonic() < deadline, f"{topic}: fewer than {n} records committed"
            await asyncio.sleep(0.2)
    finally:
        await c.stop()


async def stack_collect(settings, topic: str, n: int, timeout: float):
    from app.devtools import clients

    return await clients.collect(topic, n, timeout, settings=settings)
