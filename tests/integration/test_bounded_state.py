"""Bounded state against the real broker: the sweeper (``app/service/sweeper.py``) with short TTLs.

A media item that never completes loses its chunks one TTL after its last chunk and leaves
exactly one ``media_incomplete`` dead letter; done markers, cache entries and stored objects
go after theirs. Run with the memory store and with RocksDB: the sweeper writes and deletes
from a Faust timer (no current event), which both stores must take.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from app.devtools import samples
from app.devtools.scenarios import until
from app.schemas.vectors import encode_vector
from tests.integration.test_media import CLASSIFIER, prompt_vectors, taxonomy

pytestmark = pytest.mark.kafka

INCOMPLETE_TTL, TTL = 3, 10  # seconds: media_incomplete_ttl; done markers, media cache, stored objects


def media_records(pv: np.ndarray) -> dict[str, list]:
    seg = {"start": 0, "end": 1, "option": "visual", "vector": encode_vector(pv[0, 0])}
    base = {"index_id": "idx", "kind": "video", "duration": 2, "segments": [seg]}

    def c(media_id, seq, **chunk):
        return (media_id, {**base, "media_id": media_id, "chunk": {"seq": seq, **chunk}})
    return {"wait": [c("m-wait", 0, total=2)],  # never completes
            "done": [c("m-done", 0), c("m-done", 1, final=True)],
            "whole": [("m-whole", {**base, "media_id": "m-whole", "segments": [{**seg, "end": 2}]})],
            "again": [c("m-done", 0)]}  # m-done sent again, partially: a new assembly beside its done marker


async def tables_until(w, cond, timeout: float) -> dict:
    last: dict = {}

    def check() -> bool:
        nonlocal last
        last = (w.health() or {}).get("tables", {})
        return bool(last) and cond(last)
    assert await until(check, timeout, every=0.2), f"tables never got there: {last}\n{w.tail()}"
    return last


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_sweeper_drops_incomplete_media_with_a_dead_letter_and_expires_the_rest(stack, store):
    w = stack.worker(LABELSTREAM_STORE=store, LABELSTREAM_SWEEP_INTERVAL="0.5",
                     LABELSTREAM_MEDIA_INCOMPLETE_TTL=str(INCOMPLETE_TTL), LABELSTREAM_MEDIA_DONE_TTL=str(TTL),
                     LABELSTREAM_MEDIA_CACHE_TTL=str(TTL), LABELSTREAM_STORED_OBJECTS_RETENTION=str(TTL),
                     LABELSTREAM_MEDIA_STORE_RETENTION=str(TTL))
    pv = prompt_vectors(np.random.default_rng(3))
    training = [*samples.training_records(), ("taxonomy:genres", taxonomy(pv)), ("classifier:genre", CLASSIFIER)]
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))

    media, objs = media_records(pv), samples.objects(20, run="bounded")
    t0 = time.monotonic()
    await stack.produce("media", media["wait"] + media["done"] + media["whole"])
    await stack.produce("objects", [(k, v) for k, v, _ in objs])
    results = await stack.collect("results", 22, timeout=30)
    assert sorted(v["item_id"] for _, v in results if v["item_kind"] == "media") == ["m-done", "m-whole"], w.tail()
    held = (w.health() or {}).get("tables", {})
    assert held["stored-objects"] == 20 and held["media-cache"] == 2, held  # m-done, m-whole
    assert held["media-store"] == 2, held  # the complete items, for classification on request
    assert held["media-assembly"] == 3, f"m-wait's index and chunk, m-done's marker: {held}"
    await stack.produce("media", media["again"])

    is_incomplete = lambda k, v: v["reason"] == "media_incomplete"  # noqa: E731
    dead = await stack.collect("deadletter", 2, timeout=30, where=is_incomplete)
    elapsed = time.monotonic() - t0
    assert sorted(k for k, _ in dead) == [b"m-done", b"m-wait"], w.tail()
    assert elapsed >= INCOMPLETE_TTL, "dropped before its TTL"
    wait = next(v for k, v in dead if k == b"m-wait")
    assert wait["source"]["topic"] == stack.settings.topic("media") and wait["source"]["offset"] >= 0
    assert "[0]" in wait["detail"] and wait["value_b64"] is None

    # Markers, the cache entry, the stored objects and media go after their TTL; then the tables are empty.
    final = await tables_until(w, lambda t: t["media-assembly"] == t["media-cache"] == t["stored-objects"]
                               == t["media-store"] == 0, timeout=TTL + 20)
    assert final["training"] == len(training), "the training table has no TTL"
    assert len(await stack.collect("deadletter", 3, timeout=3)) == 2, "one dead letter per dropped item, no other"
    assert w.health()["agent_restarts"] == 0, w.tail()
