"""Raw images through the real broker and a real worker: a hash bank, the nudity model, bad input.

Real photographs (scikit-image's samples) sent as base64 ``content`` on the media topic; the
bank and the model classifier arrive as training records like everything else.
"""

from __future__ import annotations

import base64

from tests.mediafiles import encode, huge_png, resized, sample

BANK = {"record": "bank", "name": "known", "labels": {"category": "test"}, "action": "block"}
# The review rule fires on coffee: NudeNet 3.4.2 (320n) sees "BUTTOCKS_EXPOSED" at 0.34 in scikit-image's
# coffee cup, a real false positive of the real model, which is what this test needs to see a policy act.
NSFW = {"record": "classifier", "name": "nsfw", "type": "model", "model": "nudity", "media": {"output": "hive"},
        "policies": [{"action": "review", "classes": ["explicit"], "min_score": 0.3, "name": "explicit-review"}]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image(mid: str, data: bytes) -> tuple[str, dict]:
    return mid, {"media_id": mid, "index_id": "uploads", "kind": "image", "mimetype": "image/jpeg",
                 "content": b64(data)}


async def test_raw_images_bank_model_and_dead_letters(stack):
    w = stack.worker()
    entry = {"record": "bank_entry", "id": "astro", "bank": "known", "label": "astronaut",
             "content": b64(encode(sample("astronaut"), "PNG"))}
    await stack.produce("training", [("bank:known", BANK), ("bank_entry:astro", entry), ("classifier:nsfw", NSFW)])
    await stack.wait_ready(w, min_training=3)
    await stack.produce("media", [
        image("copy", encode(resized(sample("astronaut"), 0.5), "JPEG", quality=70)),
        image("cup", encode(sample("coffee"), "JPEG", quality=90)),
        image("truncated", encode(sample("camera"), "JPEG")[:4000]),
        image("bomb", huge_png(60_000, 60_000)),
        image("text", b"just some text, not an image"),
        image("after", encode(sample("chelsea"), "JPEG")),
    ])
    good = {"copy", "cup", "after"}
    results = await stack.collect("results", 6, timeout=90, where=lambda k, v: v["item_id"] in good)
    assert len(results) == 6, w.tail()
    by = {v["result_id"]: v for _, v in results}
    bank = by["copy/bank:known"]
    assert bank["method"] == "hashmatch" and bank["labels"] == {"match": "astronaut"}
    (m,) = bank["detail"]["hashmatch"]["matches"]
    assert m["id"] == "astro" and m["distance"] <= 31 and m["frames"] == [{"time": 0, "distance": m["distance"]}]
    assert by["cup/bank:known"]["labels"] == {"match": None} and by["after/bank:known"]["labels"] == {"match": None}

    for mid in good:
        r = by[f"{mid}/nsfw"]
        assert r["method"] == "model" and r["detail"]["model"]["version"].startswith("nudenet-3.4.2")
        (frame,) = r["detail"]["hive"]["status"]["response"]["output"]
        assert frame["time"] == 0 and abs(sum(c["score"] for c in frame["classes"]) - 1) < 1e-6
        assert r["detail"]["hive"]["status"]["response"]["input"]["model"] == "nudity"
    assert by["copy/nsfw"]["detail"]["parts"][0]["parts"][0]["class"] == "FACE_FEMALE"
    assert by["cup/nsfw"]["detail"]["policy"]["nudity"]["action"] == "review"

    hits = await stack.collect("moderation", 2, timeout=30)
    assert sorted((k, v["action"], v["rule"]) for k, v in hits) == [
        (b"copy", "block", "bank:known"), (b"cup", "review", "explicit-review")]
    dead = await stack.collect("deadletter", 3, timeout=30)
    assert sorted((k, v["reason"]) for k, v in dead) == [
        (b"bomb", "image_too_large"), (b"text", "content_undecodable"), (b"truncated", "content_undecodable")]
    # exactly one output per input: nothing more arrives
    assert len(await stack.collect("results", 7, timeout=3)) == 6
