"""Raw images through the real broker and a real worker: a hash bank, the nudity model, bad input.

Real photographs (scikit-image's samples) sent as base64 ``content`` on the media topic; the
bank and the model classifier arrive as training records like everything else.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from tests.mediafiles import encode, huge_png, resized, sample, video

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


KEY = "raw-media-key-0123456789"


def post(port: int, path: str, body: object, key: str | None = KEY) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def spec(data: bytes, *models: str) -> dict:
    return {"content": b64(data), "features": [{"type": "CLASSIFICATION", "classificationConfig": {"model": m}}
                                               for m in models]}


# Videos longer than this are dead letters (media_too_long): low, so the test's too-long video stays small
MAX_SECONDS = 6


async def test_raw_images_bank_model_and_dead_letters(stack):
    w = stack.worker(LABELSTREAM_API_KEYS=KEY, LABELSTREAM_MAX_MEDIA_DURATION=str(MAX_SECONDS))
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
        # 8 s at 2 fps, 64 x 64 (~3 KB): over the 6 s limit
        ("long", {"media_id": "long", "index_id": "uploads", "kind": "video", "mimetype": "video/mp4",
                  "content": b64(video([(sample("rocket"), MAX_SECONDS + 2.0)], fps=2, size=(64, 64)))}),
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
    dead = await stack.collect("deadletter", 4, timeout=30)
    assert sorted((k, v["reason"]) for k, v in dead) == [
        (b"bomb", "image_too_large"), (b"long", "media_too_long"), (b"text", "content_undecodable"),
        (b"truncated", "content_undecodable")]
    long_reason = next(v for k, v in dead if k == b"long")
    assert f"the limit is {float(MAX_SECONDS)} s" in long_reason["detail"], long_reason
    # exactly one output per input: nothing more arrives
    assert len(await stack.collect("results", 7, timeout=3)) == 6

    # Yandex Vision batchAnalyze on the same worker: every property of each model, zeros included
    path = "/vision/v1/batchAnalyze"
    status, doc = post(w.web_port, path, {"folderId": "f", "analyze_specs": [
        spec(encode(resized(sample("astronaut"), 0.5), "JPEG"), "nudity", "known", "nope"),
        spec(encode(sample("camera"), "JPEG")[:3000], "nudity")]})
    assert status == 200, doc
    (nud, bank_f, unknown), = [doc["results"][0]["results"]]
    props = nud["classification"]["properties"]
    assert [p["name"] for p in props] == ["explicit", "suggestive", "none"]
    assert abs(sum(p["probability"] for p in props) - 1) < 1e-6 and props[2]["probability"] > 0.5
    match = {p["name"]: p["probability"] for p in bank_f["classification"]["properties"]}
    assert match["match"] > 0.85 and abs(match["match"] + match["no_match"] - 1) < 1e-6
    assert unknown["error"]["code"] == 5
    assert doc["results"][1]["error"]["code"] == 3 and "content_undecodable" in doc["results"][1]["error"]["message"]
    # bad requests: 400 / 401 in Yandex Cloud's error shape
    status, err = post(w.web_port, path, {"analyze_specs": [{"content": "AAAA", "features": [{"type": "TEXT_DETECTION"}]}]})
    assert status == 400 and err["code"] == 3 and "only CLASSIFICATION" in err["message"] and err["details"] == []
    status, err = post(w.web_port, path, {"analyze_specs": []}, key=None)
    assert status == 401 and err["code"] == 16

    # a video with the banked image at 2-3 s matches at those times (produced after the too-long video's
    # dead letter arrived: the worker went on with videos within the limit); after the entry is deleted
    # (and the replica has applied the delete) the same video matches nothing
    clip = video([(sample("chelsea"), 2.0), (sample("astronaut"), 2.0), (sample("rocket"), 1.0)])
    vid = lambda mid: (mid, {"media_id": mid, "index_id": "uploads", "kind": "video", "content": b64(clip),  # noqa: E731
                             "classifier": "bank:known"})
    await stack.produce("media", [vid("clip-1")])
    [(_, r)] = await stack.collect("results", 1, timeout=60, where=lambda k, v: v["item_id"] == "clip-1")
    (m,) = r["detail"]["hashmatch"]["matches"]
    assert m["id"] == "astro" and [f["time"] for f in m["frames"]] == [2, 3]
    await stack.produce("training", [("bank_entry:astro", None)])
    await stack.wait_ready(w, min_training=4)
    await stack.produce("media", [vid("clip-2")])
    [(_, r2)] = await stack.collect("results", 1, timeout=60, where=lambda k, v: v["item_id"] == "clip-2")
    assert r2["detail"]["hashmatch"]["matches"] == [] and r2["labels"] == {"match": None}
