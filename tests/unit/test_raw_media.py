"""Raw media through the real pure steps: real photographs (scikit-image) as JPEG/PNG, real H.264
videos (PyAV), hash banks fed as training records, the nudity model on a real image, and bad input."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from app.classify.media_step import media_step
from app.core.decode_media import DecodeError, MediaLimits, decode_media
from app.core.pdq import hamming, pdq_hash
from tests.mediafiles import cropped, encode, huge_png, resized, sample, video
from tests.unit.test_steps import rec, state, train  # noqa: F401 - `state` is a fixture

BANKED = ("astronaut", "camera", "coffee")
OTHERS = ("chelsea", "rocket", "immunohistochemistry")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def media(state, value: dict, offset: int = 0):
    return media_step(state, rec(value, key=value["media_id"].encode(), offset=offset, topic="t.media"),
                      lambda k: None, lambda k: None, partitions=1, now=1)


def event(mid: str, content: bytes, kind: str = "image", **extra) -> dict:
    return {"media_id": mid, "index_id": "uploads", "kind": kind, "content": b64(content), **extra}


def bank(state, *entries: str, action: str = "block"):
    outs = train(state, {"record": "bank", "name": "known", "threshold": 31, "labels": {"category": "test"},
                         "action": action},
                 *({"record": "bank_entry", "id": f"e-{n}", "bank": "known", "label": n,
                    "content": b64(encode(sample(n), "PNG")), "provenance": {"source": "skimage"}} for n in entries))
    assert [o.rejected for o in outs] == [None] * len(outs)


def hashmatch(out) -> dict:
    assert out.rejected is None, out.rejected
    (r,) = [r for r in out.results if r.method == "hashmatch"]
    return r.detail["hashmatch"]


def test_bank_matches_resized_reencoded_and_cropped_copies_and_not_other_images(state):
    bank(state, *BANKED)
    banked = {n: state.banks.entries[f"e-{n}"][0].hashes[0] for n in BANKED}
    copies = {
        "astronaut": encode(resized(sample("astronaut"), 0.5), "JPEG", quality=60),  # half size, re-encoded
        # PDQ is sensitive to crops: 1 % cut from every border moves it 14-22 bits on these photographs,
        # 2 % 30-58, 3 % 44-80 (so a bank does not see through real crops: that is PDQ's documented limit)
        "camera": encode(cropped(sample("camera"), 0.01), "JPEG", quality=85),
        "coffee": encode(resized(cropped(sample("coffee"), 0.01), 0.7), "WEBP", quality=70),  # all of it, as WebP
    }
    for i, (name, data) in enumerate(copies.items()):
        out = media(state, event(f"copy-{name}", data), offset=i)
        hm = hashmatch(out)
        assert [m["id"] for m in hm["matches"]] == [f"e-{name}"], (name, hm["matches"])
        assert hm["matches"][0]["distance"] <= 31
        (r,) = out.results
        assert r.labels == {"match": name} and r.detail["policy"]["action"] == "block"
        assert [(h.action, h.class_name) for h in out.hits] == [("block", name)]
        d_copy = int(hamming(banked[name][None], pdq_hash(decode_media(data, "image", MediaLimits()).frames[0].rgb)[0])[0])
        assert d_copy == hm["matches"][0]["distance"]
    for i, name in enumerate(OTHERS):
        out = media(state, event(f"other-{name}", encode(sample(name), "JPEG", quality=90)), offset=10 + i)
        assert hashmatch(out)["matches"] == [] and out.hits == []
        assert out.results[0].labels == {"match": None}
        h = pdq_hash(decode_media(encode(sample(name), "JPEG", quality=90), "image", MediaLimits()).frames[0].rgb)[0]
        nearest = min(int(hamming(banked[n][None], h)[0]) for n in BANKED)
        assert nearest > 60, (name, nearest)  # far from every banked image, not just past the threshold


def test_video_with_frames_of_a_banked_image_matches_at_the_right_times_until_the_entry_is_deleted(state):
    bank(state, "astronaut")
    clip = video([(sample("chelsea"), 2.0), (sample("astronaut"), 2.0), (sample("rocket"), 2.0)])
    out = media(state, event("v1", clip, kind="video", mimetype="video/mp4"))
    hm = hashmatch(out)
    (m,) = hm["matches"]
    assert m["id"] == "e-astronaut" and [f["time"] for f in m["frames"]] == [2.0, 3.0]
    assert m["target_share"] == 1.0 and m["query_share"] == pytest.approx(2 / hm["hashed_frames"], abs=1e-4)
    assert hm["frames"] == 6 and [f["time"] for f in out.results[0].detail["frame_hashes"]] == [0, 1, 2, 3, 4, 5]
    train(state, {"record": "bank_entry", "op": "delete", "id": "e-astronaut"})
    out2 = media(state, event("v1", clip, kind="video"), offset=1)
    assert hashmatch(out2)["matches"] == [] and out2.hits == []


def test_entries_by_hash_and_a_review_bank(state):
    h, q = pdq_hash(sample("camera"))
    assert q >= 50
    outs = train(state, {"record": "bank", "name": "known", "action": "review"},
                 {"record": "bank_entry", "id": "h1", "bank": "known", "hash": h.tobytes().hex(), "label": "cam"},
                 {"record": "bank_entry", "id": "bad", "bank": "known", "hash": "zz" * 32})
    assert [o.rejected.reason if o.rejected else None for o in outs] == [None, None, "schema_violation"]
    out = media(state, event("c", encode(sample("camera"), "PNG")))
    assert hashmatch(out)["matches"][0]["distance"] == 0
    assert [h.action for h in out.hits] == ["review"]


def test_nudity_model_on_a_real_image_heads_parts_policy_and_version(state):
    train(state, {"record": "classifier", "name": "nsfw", "type": "model", "model": "nudity",
                  "policies": [{"action": "review", "classes": ["explicit"], "min_score": 0.3}]})
    out = media(state, event("astro", encode(sample("astronaut"), "JPEG", quality=90)))
    assert out.rejected is None, out.rejected
    (r,) = out.results
    assert r.method == "model" and r.detail["model"]["name"] == "nudity"
    assert r.detail["model"]["version"].startswith("nudenet-3.4.2")
    heads = r.detail["heads"]["nudity"]
    assert [c["class"] for c in heads] == ["explicit", "suggestive", "none"]
    assert sum(c["score"] for c in heads) == pytest.approx(1.0)
    (frame,) = r.detail["hive"]["status"]["response"]["output"]
    assert frame["time"] == 0 and sum(c["score"] for c in frame["classes"]) == pytest.approx(1.0)
    parts = r.detail["parts"][0]["parts"]
    face = [p for p in parts if p["class"] == "FACE_FEMALE"]
    assert face and face[0]["score"] > 0.5
    x, y, w, h = face[0]["box"]  # the astronaut's face: upper middle of the 512 x 512 photograph
    assert 120 < x + w / 2 < 330 and 50 < y + h / 2 < 230
    assert r.labels == {"nudity": "none"} and out.hits == []
    assert r.detail["policy"]["nudity"]["action"] == "allow"
    props = r.detail["models"][0]["properties"]
    assert {p["name"] for p in props} == {"explicit", "suggestive", "none"}


@pytest.mark.parametrize("name, data, kind, limits, reason", [
    ("truncated jpeg", encode(sample("astronaut"), "JPEG")[:5000], "image", {}, "content_undecodable"),
    ("not media", b"PK\x03\x04" + bytes(range(256)) * 8, "image", {}, "content_undecodable"),
    ("huge dimensions", huge_png(60_000, 60_000), "image", {}, "image_too_large"),
    ("too long", None, "video", {"max_media_duration": 2.0}, "media_too_long"),
    ("too many frames", None, "video", {"max_media_frames": 2}, "media_too_long"),
    ("too many bytes", encode(sample("astronaut"), "PNG"), "image", {"max_media_bytes": 100_000}, "content_too_large"),
])
def test_bad_content_is_one_dead_letter_with_its_reason(state, name, data, kind, limits, reason):
    bank(state, "camera")
    if data is None:
        data = video([(sample("chelsea"), 4.0)])
    state.settings = state.settings.model_copy(update=limits)
    out = media(state, event("bad", data, kind=kind))
    assert out.rejected is not None and out.rejected.reason == reason, (name, out.rejected)
    assert out.results == [] and out.hits == []
    assert out.rejected.path == "content"
    # the worker keeps going: a good item right after is classified
    good = media(state, event("good", encode(sample("camera"), "JPEG")), offset=1)
    assert good.rejected is None and hashmatch(good)["matches"]


def test_decoder_limits_directly():
    with pytest.raises(DecodeError) as e:
        decode_media(huge_png(10_000, 5_000), "image", MediaLimits(max_pixels=10_000_000))
    assert e.value.reason == "image_too_large"
    m = decode_media(video([(sample("rocket"), 3.0)], fps=5), "video", MediaLimits(fps=2.0))
    assert m.kind == "video" and m.codec == "h264" and [f.time for f in m.frames] == [0, 0.6, 1.0, 1.6, 2.0, 2.6]
    assert all(f.rgb.shape == (256, 256, 3) for f in m.frames)


def test_raw_event_with_no_bank_or_model_is_no_media_classifier(state):
    out = media(state, event("x", encode(sample("camera"), "JPEG")))
    assert out.rejected is not None and out.rejected.reason == "no_media_classifier"


def test_chunked_video_content_is_assembled_in_order_then_matched(state):
    """Chunks out of order through the real step, its table writes applied to a dict (the assembly table)."""
    bank(state, "coffee")
    clip = video([(sample("chelsea"), 1.0), (sample("coffee"), 2.0)])
    n = 3
    size = -(-len(clip) // n)
    pieces = [clip[i * size:(i + 1) * size] for i in range(n)]
    table: dict[bytes, bytes] = {}
    outs = []
    for off, seq in enumerate([2, 0, 1]):  # the final chunk first
        value = {**event("ch", pieces[seq], kind="video"), "chunk": {"seq": seq, "final": seq == n - 1, "total": n}}
        out = media_step(state, rec(value, key=b"ch", offset=off, topic="t.media"), table.get, lambda k: None,
                         partitions=1, now=1)
        for w in out.writes:
            if w.table == "media-assembly":
                if w.value is None:
                    table.pop(w.key, None)
                else:
                    table[w.key] = w.value
        outs.append(out)
    assert [o.results for o in outs[:2]] == [[], []] and all(o.rejected is None for o in outs)
    (m,) = hashmatch(outs[2])["matches"]
    assert m["id"] == "e-coffee" and [f["time"] for f in m["frames"]] == [1.0, 2.0]


def test_yandex_batch_analyze_pure(state):
    from app.classify.yandex import BadRequest, batch_analyze

    bank(state, "camera")
    train(state, {"record": "taxonomy", "name": "tones", "version": 1,
                  "classes": [{"name": "a", "prompts": ["x"]}, {"name": "b", "prompts": ["y"]}]})
    feats = [{"type": "CLASSIFICATION", "classificationConfig": {"model": m}} for m in ("known", "nudity", "tones")]
    doc = batch_analyze(state, {"analyze_specs": [{"content": b64(encode(sample("camera"), "JPEG")), "features": feats},
                                                  {"content": "###", "features": feats[:1]}]})
    known, nud, tones = doc["results"][0]["results"]
    assert known["classification"]["properties"][0]["name"] == "match"
    assert known["classification"]["properties"][0]["probability"] > 0.9
    assert [p["name"] for p in nud["classification"]["properties"]] == ["explicit", "suggestive", "none"]
    assert tones["error"]["code"] == 12
    assert doc["results"][1] == {"error": {"code": 3, "message": "content is not valid base64"}}
    with pytest.raises(BadRequest):
        batch_analyze(state, {"analyze_specs": [{"content": "AAAA", "features": [{"type": "CLASSIFICATION"}]}]})


def test_model_classifier_policies_name_its_classes(state):
    outs = train(state, {"record": "classifier", "name": "m", "type": "model", "model": "nudity",
                         "policies": [{"action": "block", "classes": ["nsfw"], "min_score": 0.5}]},
                 {"record": "classifier", "name": "m2", "type": "model"})
    assert [(o.rejected.reason, o.rejected.path) for o in outs] == [
        ("invalid_classifier", "policies.0.classes"), ("invalid_classifier", None)]


@pytest.fixture
def without_nudenet(monkeypatch):
    """This worker without the optional nudity model (its wheel not installed), the real one back afterwards."""
    import importlib.util

    from app.core import nudity

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nudenet" else real(name, *a))
    nudity._model.cache_clear()
    yield
    nudity._model.cache_clear()


def test_without_the_optional_model_a_nudity_item_is_one_model_unavailable_dead_letter(state, without_nudenet):
    from app.classify.yandex import batch_analyze

    bank(state, "camera")
    train(state, {"record": "classifier", "name": "nsfw", "type": "model", "model": "nudity"})
    jpeg = encode(sample("camera"), "JPEG")
    out = media(state, event("x", jpeg))
    assert out.rejected is not None and out.rejected.reason == "model_unavailable" and out.results == []
    assert "nudenet wheel is not installed" in out.rejected.detail and "labelstream[nudity]" in out.rejected.detail
    # the bank alone still works: an item naming it skips the model
    assert hashmatch(media(state, event("y", jpeg, classifier="bank:known"), offset=1))["matches"]
    feats = [{"type": "CLASSIFICATION", "classificationConfig": {"model": m}} for m in ("nudity", "known")]
    (nud, known), = [batch_analyze(state, {"analyze_specs": [{"content": b64(jpeg), "features": feats}]})["results"][0]["results"]]
    assert nud["error"]["code"] == 9 and "AGPL-3.0" in nud["error"]["message"]
    assert known["classification"]["properties"][0]["probability"] > 0.9
