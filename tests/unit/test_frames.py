"""Hive per-frame output: time steps, head-wise probabilities, the task envelope."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import app.core.frames as frames_mod
from app.core.frames import frame_scores, frame_similarities, hive_envelope, hive_media
from app.core.media import MediaClass
from app.core.segments import SegmentArrays

E = np.eye(3)


def test_doctests() -> None:
    assert doctest.testmod(frames_mod).failed == 0


def _model() -> list[MediaClass]:
    # two heads: NSFW {nsfw, safe} and guns {gun, no_gun, animated_gun}
    return [
        MediaClass("general_nsfw", ["explicit"], E[[0]], head=0),
        MediaClass("general_not_nsfw", ["safe", "family"], E[[1, 2]], head=0),
        MediaClass("gun_in_hand", ["a gun in a hand"], E[[2]], head=1),
        MediaClass("no_gun", ["no gun"], E[[1]], head=1),
        MediaClass("animated_gun", ["cartoon gun"], -E[[2]], head=1),
    ]


def test_image_yields_one_frame_at_time_zero() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 0, "option": "visual", "vector": [0.6, 0.8, 0]}])
    out = frame_scores(segs, _model(), temperature=0.5, image=True)
    assert len(out) == 1 and out[0]["time"] == 0 and isinstance(out[0]["time"], int)
    assert [c["class"] for c in out[0]["classes"]] == [c.name for c in _model()]
    assert set(out[0]["classes"][0]) == {"class", "score"}
    # image=True pins every segment to time 0 even if the producer wrote another start
    odd = SegmentArrays.from_segments([{"start": 3, "end": 3, "option": "visual", "vector": [1, 0, 0]}])
    assert [f["time"] for f in frame_scores(odd, _model(), temperature=1.0, image=True)] == [0]


def test_hand_computed_scores() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 0, "option": "visual", "vector": [0.6, 0.8, 0]}])
    (frame,) = frame_scores(segs, _model(), temperature=1.0, image=True)  # cosines are float32: 1e-6
    s = {c["class"]: c["score"] for c in frame["classes"]}
    # head 0: nsfw cos 0.6, safe max(0.8, 0) = 0.8
    assert s["general_nsfw"] == pytest.approx(math.exp(0.6) / (math.exp(0.6) + math.exp(0.8)), abs=1e-6)
    assert s["general_not_nsfw"] == pytest.approx(math.exp(0.8) / (math.exp(0.6) + math.exp(0.8)), abs=1e-6)
    # head 1: gun 0, no_gun 0.8, animated 0
    z = math.exp(0) + math.exp(0.8) + math.exp(0)
    assert s["no_gun"] == pytest.approx(math.exp(0.8) / z, abs=1e-6)
    assert s["gun_in_hand"] == pytest.approx(1 / z, abs=1e-6) and s["animated_gun"] == pytest.approx(1 / z, abs=1e-6)


def test_heads_sum_to_one_on_every_frame() -> None:
    rng = np.random.default_rng(3)
    segs = SegmentArrays.from_segments([
        {"start": float(t), "end": float(t + 1), "option": o, "vector": rng.standard_normal(3)}
        for t in range(50) for o in ("visual", "text_in_video")])
    out = frame_scores(segs, _model(), temperature=0.05)
    assert [f["time"] for f in out] == list(range(50))
    heads = [c.head for c in _model()]
    for f in out:
        for h in set(heads):
            total = sum(c["score"] for c, hh in zip(f["classes"], heads) if hh == h)
            assert total == pytest.approx(1.0, abs=1e-6)


def test_time_steps_take_the_max_over_segments_and_prompts() -> None:
    segs = SegmentArrays.from_segments([
        {"start": 2.5, "end": 4, "option": "visual", "vector": [1, 0, 0]},
        {"start": 2.5, "end": 4, "option": "text_in_video", "vector": [0, 0, 1]},
        {"start": 0, "end": 2.5, "option": "visual", "vector": [0, 1, 0]},
        {"start": 4, "end": 6, "option": "conversation", "text": "no vector: no frame"},
    ])
    times, sims = frame_similarities(segs, _model())
    assert times.tolist() == [0.0, 2.5]
    np.testing.assert_allclose(sims, [[0, 1, 0, 1, 0], [1, 1, 1, 0, 0]], atol=1e-7)
    out = frame_scores(segs, _model(), temperature=1.0)
    assert [f["time"] for f in out] == [0, 2.5] and isinstance(out[1]["time"], float)
    # restricting options drops the text_in_video segment at 2.5
    _, vis = frame_similarities(segs, _model(), options=["visual"])
    np.testing.assert_allclose(vis[1], [1, 0, 0, 0, 0], atol=1e-7)


def test_no_vectors_no_frames() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 1, "option": "conversation", "text": "x"}])
    assert frame_scores(segs, _model(), temperature=1.0) == []


def test_dimension_mismatch_raises() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 1, "option": "visual", "vector": [1.0, 0.0]}])
    with pytest.raises(ValueError):
        frame_scores(segs, _model(), temperature=1.0)


def test_envelope_matches_reference_shape() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 0, "option": "visual", "vector": [1, 0, 0]}])
    output = frame_scores(segs, _model(), temperature=1.0, image=True)
    media = hive_media({"kind": "image", "mimetype": "image/jpeg", "duration": 0, "width": 640, "height": 480})
    env = hive_envelope(task_id="3fa85f64-5717-4562-b3fc-2c963f66afa6", output=output, model="moderation",
                        model_version=3, model_type="CATEGORIZATION", created_on="2020-05-25T19:55:02.312Z",
                        media=media, project_id=12345, user_id=1234, metadata="labelstream")
    assert env == {
        "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "code": 200,
        "project_id": 12345,
        "user_id": 1234,
        "created_on": "2020-05-25T19:55:02.312Z",
        "status": {
            "status": {"code": 0, "message": "SUCCESS"},
            "response": {
                "input": {
                    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "charge": 0,
                    "model": "moderation",
                    "model_version": 3,
                    "model_type": "CATEGORIZATION",
                    "created_on": "2020-05-25T19:55:02.312Z",
                    "media": {"type": "image", "mimetype": "image/jpeg", "duration": 0, "width": 640, "height": 480},
                    "user_id": 1234,
                    "project_id": 12345,
                },
                "output": output,
            },
        },
        "from_cache": False,
        "metadata": "labelstream",
    }
    assert list(env) == ["id", "code", "project_id", "user_id", "created_on", "status", "from_cache", "metadata"]


def test_envelope_optional_ids_and_cache_flag() -> None:
    env = hive_envelope(task_id="t", output=[], model="m", model_version="1.2", model_type="CATEGORIZATION",
                        created_on="c", media=hive_media({"kind": "video", "duration": 12.5}), from_cache=True,
                        input_id="in-1", input_created_on="c0")
    assert "project_id" not in env and "user_id" not in env
    inp = env["status"]["response"]["input"]
    assert "project_id" not in inp and "user_id" not in inp
    assert (inp["id"], inp["created_on"], env["from_cache"], env["metadata"]) == ("in-1", "c0", True, None)
    assert inp["media"] == {"type": "video", "mimetype": "", "duration": 12.5, "width": 0, "height": 0}
