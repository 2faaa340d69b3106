"""Prompt spaces: index and prompt_vector training records, and the joint space of a request.

The joint space must give every class exactly what the pure core gives it in the class's own
space; a prompt with no way to a vector is refused, never scored elsewhere."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.classify.outcome import Record
from app.classify.prompts import Embedder, PromptSpaceError, SegmentSpaceError, compile_classes
from app.classify.state import ModelState
from app.classify.training import training_step
from app.classify.twelvelabs import ApiError, classify_request, parse_request
from app.classify.media import Media
from app.core.media import MediaClass, classify_media
from app.core.segments import SegmentArrays
from app.schemas.deadletter import Source
from app.schemas.training import IndexRecord, prompt_key
from app.settings import Settings

SRC = Source(topic="t", partition=0, offset=0)
IDX = IndexRecord(id="i", options={"visual": {"vectorizer": "precomputed"},
                                   "conversation": {"vectorizer": "hashing", "dim": 64}})


def segments(rng) -> list[dict]:
    segs = [{"start": float(t), "end": float(t + 1), "option": "visual", "vector": rng.normal(size=4), "text": None}
            for t in range(10)]
    texts = ["the chef cooks pasta", "a goal in the match", "cooking pasta tonight", "weather report"]
    segs += [{"start": float(2 * t), "end": float(2 * t + 2), "option": "conversation", "vector": None, "text": x}
             for t, x in enumerate(texts)]
    return segs


def test_each_class_scores_as_in_its_own_space(tmp_path):
    rng = np.random.default_rng(0)
    segs = segments(rng)
    pv = {("visual", "pasta"): rng.normal(size=4).astype(np.float32)}
    classes = [{"name": "Look", "prompts": ["pasta"], "options": ["visual"]},
               {"name": "Talk", "prompts": ["pasta", "football goal"], "options": ["conversation"]}]
    emb = Embedder()
    c = compile_classes(classes, IDX, ["visual", "conversation"], "semantic", lambda o, p: pv.get((o, p)), emb)
    assert c.dim == 4 + 64
    got = classify_media(c.segments(segs), 10.0, c.classes, options=["visual", "conversation"],
                         include_clips=True, threshold={"min_clip_score": 1})
    # the pure core, one space at a time
    vis = SegmentArrays.from_segments([s for s in segs if s["option"] == "visual"])
    look = classify_media(vis, 10.0, [MediaClass("Look", ["pasta"], pv[("visual", "pasta")][None])],
                          options=["visual"], include_clips=True, threshold={"min_clip_score": 1})
    talk_segs = [{**s, "vector": emb.encode("hashing:64", [s["text"]])[0]} for s in segs if s["option"] != "visual"]
    talk = classify_media(SegmentArrays.from_segments(talk_segs), 10.0,
                          [MediaClass("Talk", ["pasta", "football goal"], emb.encode("hashing:64", ["pasta", "football goal"]))],
                          options=["conversation"], include_clips=True, threshold={"min_clip_score": 1})
    by_name = {x["name"]: x for x in got["classes"]}
    assert by_name["Look"] == look["classes"][0] and by_name["Talk"] == talk["classes"][0]


def test_one_space_is_the_single_space_input_itself():
    idx = IndexRecord(id="i", options={"conversation": {"vectorizer": "hashing"}, "text_in_video": {"vectorizer": "hashing"}})
    c = compile_classes([{"name": "A", "prompts": ["x"]}], idx, ["conversation", "text_in_video"], "semantic",
                        lambda o, p: None, Embedder())
    assert c.blocks == {"hashing:384": (0, 384)} and c.classes[0].prompts == ["x"]


def test_refusals_name_prompt_index_and_option():
    with pytest.raises(PromptSpaceError, match="prompt 'x' .* visual space of index 'q': no index record"):
        compile_classes([{"name": "A", "prompts": ["x"]}], None, ["visual"], "semantic", lambda o, p: None,
                        Embedder(), "q")
    with pytest.raises(PromptSpaceError, match="text_in_video space of index 'i': the index record gives no space"):
        compile_classes([{"name": "A", "prompts": ["x"]}], IDX, ["text_in_video"], "semantic", lambda o, p: None,
                        Embedder())
    # exact_match conversation needs no vector: no refusal even without a conversation space
    only_visual = IndexRecord(id="v", options={"visual": {"vectorizer": "precomputed"}})
    c = compile_classes([{"name": "A", "prompts": ["pasta"]}], only_visual, ["conversation"], "exact_match",
                        lambda o, p: None, Embedder())
    out = classify_media(c.segments(segments(np.random.default_rng(1))), 10.0, c.classes,
                         options=["conversation"], conversation_option="exact_match")
    assert out["classes"] == [{"name": "A", "score": 100.0, "duration_ratio": 0.4}]


def test_a_segment_vector_of_another_size_is_refused():
    c = compile_classes([{"name": "A", "prompts": ["x"]}], IDX, ["visual"], "semantic",
                        lambda o, p: np.ones(4, np.float32), Embedder())
    with pytest.raises(SegmentSpaceError, match="video 'v1': a visual segment has a 3-d vector"):
        c.segments([{"start": 0, "end": 1, "option": "visual", "vector": [1, 2, 3]}], "v1")


def _train(state, *records) -> list:
    recs = [Record(k.encode(), None if v is None else orjson.dumps(v), SRC) for k, v in records]
    outs = training_step(state, recs)
    for o in outs:
        for w in o.writes:
            state.apply(w.key.decode(), w.value)
    return outs


def test_index_and_prompt_vector_records_reach_the_model_state(tmp_path):
    state = ModelState(Settings(data_dir=tmp_path))
    index = {"record": "index", "id": "i", "options": {"visual": {"vectorizer": "precomputed", "dim": 3}}}
    pkey = prompt_key("i", "visual", "a dog")
    outs = _train(state, ("index:i", index),
                  (pkey, {"record": "prompt_vector", "index_id": "i", "option": "visual", "prompt": "a dog",
                          "vector": [3, 0, 4]}),
                  (prompt_key("i", "visual", "a cat"), {"record": "prompt_vector", "index_id": "i",
                                                        "option": "visual", "prompt": "a cat", "vector": [1, 2]}))
    assert [o.rejected.reason if o.rejected else None for o in outs] == [None, None, "vector_dimension_mismatch"]
    assert state.snapshot().indexes["i"].options["visual"].dim == 3
    assert state.prompt_vector("i", "visual", "a dog").tolist() == pytest.approx([0.6, 0, 0.8])
    _train(state, (pkey, None), ("x", {"record": "index", "op": "delete", "id": "i"}))
    assert state.prompt_vector("i", "visual", "a dog") is None and "i" not in state.snapshot().indexes


def test_a_request_over_stored_items(tmp_path):
    state = ModelState(Settings(data_dir=tmp_path))
    _train(state, ("index:i", {"record": "index", "id": "i", "options": {"conversation": {"vectorizer": "hashing"}}}))
    rng = np.random.default_rng(2)
    items = [Media(f"v{n}", "i", "video", segments(rng), SRC, duration=10.0) for n in range(3)]
    req = parse_request({"index_id": "i", "options": ["conversation"], "classes": [
        {"name": "Food", "prompts": ["cooking pasta"]}]}, "index", max_prompts=10, max_videos=10)
    out = classify_request(state, Embedder(), req, items)
    assert [v["video_id"] for v in out] == ["v0", "v1", "v2"] and out[0]["classes"][0]["name"] == "Food"
    with pytest.raises(ApiError) as e:
        bad = req.model_copy(update={"options": ["visual"]})
        classify_request(state, Embedder(), bad, items)
    assert (e.value.status, e.value.code) == (400, "parameter_invalid") and "index 'i'" in e.value.message
