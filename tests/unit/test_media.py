"""Twelve Labs classify semantics: hand-computed scores for a 3-class, 2-option video.

The fixture video lasts 20 s. Prompt vectors are basis vectors, so every cosine is a
coordinate of the (normalised) segment vector and the numbers below follow by hand from
the formulas in ``app.core.media``'s docstring (segment score = 100 * max(0, cos)).

    class   prompts (vector)                                  options
    Dance   "dance group" (e0), "dance tutorial" (e1)          request's
    Cook    "cooking tutorial" (e2)                            request's
    Sports  "football" (e3)                                    ("visual",) only

    seg  option         [start, end)  vector                  Dance         Cook  Sports
    v1   visual         [0, 4)        (.8, 0, .6, 0)          80 group      60    0
    v2   visual         [4, 8)        (0, .6, 0, .8)          60 tutorial   0     80
    v3   visual         [8, 12)       (0, 0, .6, .8)          0             60    80
    v4   visual         [12, 20)      (.28, 0, 0, .96)        28            0     96
    c1   conversation   [0, 6)        (.6, 0, .8, 0)          60 group      80    (not eligible)
    c2   conversation   [6, 10)       (0, 0, 1, 0)            0             100   (not eligible)
    c3   conversation   [10, 14)      none                    0             0     (not eligible)
    c4   conversation   [14, 18)      (0, 0, 0, 1)            0             0     (not eligible: 100)
    t1   text_in_video  [0, 20)       (1, 0, 0, 0)            not requested
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import app.core.media as media_mod
from app.devtools import samples
from app.core.media import MediaClass, _prompt_regex, classify_media, classify_page, parse_page_token
from app.core.segments import SegmentArrays

E = np.eye(4)
OPTS = ["visual", "conversation"]
THR = {"visual": 50, "conversation": 50}


def test_doctests() -> None:
    assert doctest.testmod(media_mod).failed == 0


def _classes(**cook_kwargs) -> list[MediaClass]:
    return [
        MediaClass("Dance", ["dance group", "dance tutorial"], E[[0, 1]]),
        MediaClass("Cook", ["cooking tutorial"], E[[2]], **cook_kwargs),
        MediaClass("Sports", ["football"], E[[3]], options=("visual",)),
    ]


def _segments() -> SegmentArrays:
    return SegmentArrays.from_segments([
        {"start": 0, "end": 4, "option": "visual", "vector": [0.8, 0, 0.6, 0]},
        {"start": 4, "end": 8, "option": "visual", "vector": [0, 0.6, 0, 0.8], "thumbnail_url": "https://t/4.jpg"},
        {"start": 8, "end": 12, "option": "visual", "vector": [0, 0, 0.6, 0.8], "thumbnail_url": "https://t/8.jpg"},
        {"start": 12, "end": 20, "option": "visual", "vector": [0.28, 0, 0, 0.96], "thumbnail_url": "https://t/12.jpg"},
        {"start": 0, "end": 6, "option": "conversation", "vector": [0.6, 0, 0.8, 0],
         "text": "Let's join the Dance Group now"},
        {"start": 6, "end": 10, "option": "conversation", "vector": [0, 0, 1, 0], "text": "cooking tutorials are fun"},
        {"start": 10, "end": 14, "option": "conversation", "text": "a dance tutorial"},
        {"start": 14, "end": 18, "option": "conversation", "vector": [0, 0, 0, 1], "text": "football talk"},
        {"start": 0, "end": 20, "option": "text_in_video", "vector": [1, 0, 0, 0]},
    ])


def _run(**kw) -> dict:
    kw.setdefault("threshold", THR)
    return classify_media(_segments(), 20.0, kw.pop("classes", None) or _classes(), video_id="vid1",
                          options=OPTS, **kw)


def _by_name(result: dict) -> dict[str, dict]:
    return {c["name"]: c for c in result["classes"]}


def test_semantic_scores_and_duration_ratio() -> None:
    r = _run()
    assert r == {"video_id": "vid1", "classes": [
        # Sports: v2, v3, v4 -> (4*80 + 4*80 + 8*96) / 16 = 88; union [4, 20) = 16 s
        {"name": "Sports", "score": 88.0, "duration_ratio": 0.8},
        # Cook: v1, v3, c1, c2 -> (4*60 + 4*60 + 6*80 + 4*100) / 18 = 75.555..; union [0, 12)
        {"name": "Cook", "score": 75.56, "duration_ratio": 0.6},
        # Dance: v1, v2, c1 (v4 = 28 < 50) -> (4*80 + 4*60 + 6*60) / 14 = 65.714..; union [0, 8)
        {"name": "Dance", "score": 65.71, "duration_ratio": 0.4},
    ]}


def test_clips_merge_adjacent_segments_of_one_option() -> None:
    c = _by_name(_run(include_clips=True))
    assert c["Dance"]["clips"] == [
        # v1 + v2 touch at 4 s: one clip; best segment v1 (80, "dance group"); first thumbnail is v2's
        {"start": 0.0, "end": 8.0, "score": 80.0, "option": "visual", "prompt": "dance group",
         "thumbnail_url": "https://t/4.jpg"},
        {"start": 0.0, "end": 6.0, "score": 60.0, "option": "conversation", "prompt": "dance group",
         "thumbnail_url": None},
    ]
    assert c["Cook"]["clips"] == [
        {"start": 0.0, "end": 10.0, "score": 100.0, "option": "conversation", "prompt": "cooking tutorial",
         "thumbnail_url": None},  # c1 + c2 touch at 6 s
        {"start": 0.0, "end": 4.0, "score": 60.0, "option": "visual", "prompt": "cooking tutorial",
         "thumbnail_url": None},  # v1 and v3 have a gap (v2 does not match): two clips
        {"start": 8.0, "end": 12.0, "score": 60.0, "option": "visual", "prompt": "cooking tutorial",
         "thumbnail_url": "https://t/8.jpg"},
    ]
    assert c["Sports"]["clips"] == [
        {"start": 4.0, "end": 20.0, "score": 96.0, "option": "visual", "prompt": "football",
         "thumbnail_url": "https://t/4.jpg"},  # v2 + v3 + v4; c4 is excluded by the class's options
    ]


def test_detailed_scores_and_normalisation() -> None:
    c = _by_name(_run(show_detailed_score=True))
    total = 88.0 + 75.56 + 65.71
    assert c["Sports"]["detailed_scores"] == pytest.approx(
        {"max_score": 96.0, "avg_score": 85.33, "normalized_score": 100 * 88.0 / total})  # avg (80+80+96)/3
    assert c["Cook"]["detailed_scores"] == pytest.approx(
        {"max_score": 100.0, "avg_score": 75.0, "normalized_score": 100 * 75.56 / total})  # (60+60+80+100)/4
    assert c["Dance"]["detailed_scores"] == pytest.approx(
        {"max_score": 80.0, "avg_score": 66.67, "normalized_score": 100 * 65.71 / total})  # (80+60+60)/3
    assert sum(x["detailed_scores"]["normalized_score"] for x in c.values()) == pytest.approx(100, abs=1e-9)
    assert set(c["Dance"]) == {"name", "score", "duration_ratio", "detailed_scores"}


def test_normalized_score_reproduces_the_reference_example() -> None:
    # guide: DanceTok 37.83 / CookTok 33.35 -> 53.14695139084012 / 46.85304860915988
    a, b = 0.3783, 0.3335
    classes = [MediaClass("DanceTok", ["d"], np.array([[a, np.sqrt(1 - a * a)]])),
               MediaClass("CookTok", ["c"], np.array([[b, np.sqrt(1 - b * b)]]))]
    segs = SegmentArrays.from_segments([{"start": 0, "end": 10, "option": "visual", "vector": [1, 0]}])
    r = classify_media(segs, 10, classes, video_id="v", options=["visual"], show_detailed_score=True)
    got = [(c["name"], c["score"], c["detailed_scores"]["normalized_score"]) for c in r["classes"]]
    assert got == [("DanceTok", 37.83, pytest.approx(53.14695139084012, abs=1e-9)),
                   ("CookTok", 33.35, pytest.approx(46.85304860915988, abs=1e-9))]


def test_exact_match_request_level() -> None:
    c = _by_name(_run(conversation_option="exact_match", include_clips=True))
    # Dance: c1 "Dance Group" (case-insensitive) and c3 "dance tutorial" score 100, even without a vector;
    # (4*80 + 4*60 + 6*100 + 4*100) / 18 = 86.666..; union [0, 8) + [10, 14) = 12 s
    assert (c["Dance"]["score"], c["Dance"]["duration_ratio"]) == (86.67, 0.6)
    assert [(k["start"], k["end"], k["score"], k["option"], k["prompt"]) for k in c["Dance"]["clips"]] == [
        (0.0, 6.0, 100.0, "conversation", "dance group"),
        (10.0, 14.0, 100.0, "conversation", "dance tutorial"),
        (0.0, 8.0, 80.0, "visual", "dance group"),
    ]
    # Cook: "cooking tutorials" is not a word-boundary match -> only v1 and v3 remain
    assert (c["Cook"]["score"], c["Cook"]["duration_ratio"]) == (60.0, 0.4)
    assert (c["Sports"]["score"], c["Sports"]["duration_ratio"]) == (88.0, 0.8)  # visual only: unchanged


def test_exact_match_class_level_overrides_request() -> None:
    c = _by_name(_run(classes=_classes(conversation_option="exact_match")))
    assert (c["Cook"]["score"], c["Cook"]["duration_ratio"]) == (60.0, 0.4)
    assert (c["Dance"]["score"], c["Dance"]["duration_ratio"]) == (65.71, 0.4)  # still semantic
    back = _by_name(_run(classes=_classes(conversation_option="semantic"), conversation_option="exact_match"))
    assert back["Cook"]["score"] == 75.56 and back["Dance"]["score"] == 86.67


@pytest.mark.parametrize("text, hit", [
    ("Cooking Tutorial", "cooking tutorial"), ("a COOKING TUTORIAL!", "cooking tutorial"),
    ("cooking tutorials", None), ("precooking tutorial", None), ("cooking  tutorial", None),
    ("dance group then a cooking tutorial", "dance group"), ("", None),
])
def test_exact_match_regex(text: str, hit: str | None) -> None:
    prompts = ("cooking tutorial", "dance group")
    m = _prompt_regex(prompts).search(text)
    assert (prompts[m.lastindex - 1] if m else None) == hit


def test_exact_match_escapes_regex_metacharacters() -> None:
    assert _prompt_regex(("a.b",)).search("axb") is None
    assert _prompt_regex(("a.b",)).search("see a.b here") is not None


def test_thresholds_filter_segments_and_classes() -> None:
    r = _run(threshold={**THR, "min_video_score": 70})
    assert [c["name"] for c in r["classes"]] == ["Sports", "Cook"]  # Dance 65.71 < 70
    r = _run(threshold={**THR, "min_duration_ratio": 0.5}, show_detailed_score=True)
    assert [c["name"] for c in r["classes"]] == ["Sports", "Cook"]  # Dance 0.4 < 0.5
    assert sum(c["detailed_scores"]["normalized_score"] for c in r["classes"]) == pytest.approx(100)
    # visual threshold 85: Dance = c1 only (60, 6 s); Cook = c1 + c2 (6*80 + 4*100) / 10 = 88 over
    # [0, 10); Sports = v4 only (96, 8 s)
    r = _run(threshold={"visual": 85, "conversation": 50}, include_clips=True)
    assert [(c["name"], c["score"], c["duration_ratio"], len(c["clips"])) for c in r["classes"]] == [
        ("Sports", 96.0, 0.4, 1), ("Cook", 88.0, 0.5, 1), ("Dance", 60.0, 0.3, 1)]


def test_default_and_min_clip_score_thresholds() -> None:
    # default 20 per option: Dance also matches v4 (28): (320 + 240 + 8*28 + 360) / 22 = 52; [0, 8) + [12, 20)
    c = _by_name(_run(threshold=None))
    assert (c["Dance"]["score"], c["Dance"]["duration_ratio"]) == (52.0, 0.8)
    assert _by_name(_run(threshold={"min_clip_score": 20}))["Dance"]["score"] == 52.0
    # a per-option key wins over min_clip_score
    c = _by_name(_run(threshold={"min_clip_score": 20, "visual": 50, "conversation": 50}))
    assert c["Dance"]["score"] == 65.71


def test_request_options_restrict_modalities() -> None:
    r = classify_media(_segments(), 20.0, _classes(), options=["text_in_video"], threshold=THR)
    # Dance and Cook see only t1 (100 for Dance over all 20 s, 0 for Cook); Sports keeps its own
    # visual-only options (class options override the request's) and is unchanged
    assert r["classes"] == [{"name": "Dance", "score": 100.0, "duration_ratio": 1.0},
                            {"name": "Sports", "score": 88.0, "duration_ratio": 0.8}]
    r = classify_media(_segments(), 20.0, _classes(), options=["conversation"], threshold=THR)
    assert [c["name"] for c in r["classes"]] == ["Cook", "Sports", "Dance"]  # Cook 88, Sports visual, Dance 60


def test_image_is_one_segment_at_time_zero() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 0, "option": "visual", "vector": [0.6, 0.8, 0, 0]}])
    r = classify_media(segs, 0.0, _classes(), video_id="img", threshold=THR, include_clips=True)
    assert r["classes"][0] == {"name": "Dance", "score": 80.0, "duration_ratio": 1.0, "clips": [
        {"start": 0.0, "end": 0.0, "score": 80.0, "option": "visual", "prompt": "dance tutorial",
         "thumbnail_url": None}]}
    assert [c["name"] for c in r["classes"]] == ["Dance"]


def test_overlapping_segments_merge_and_count_once() -> None:
    segs = SegmentArrays.from_segments([
        {"start": 0, "end": 5, "option": "visual", "vector": [1, 0, 0, 0]},
        {"start": 3, "end": 8, "option": "visual", "vector": [0.6, 0.8, 0, 0]},
        {"start": 2, "end": 9, "option": "conversation", "vector": [1, 0, 0, 0]},
        {"start": 8.0000001, "end": 11.0000001, "option": "visual", "vector": [0, 1, 0, 0]},  # touches at 8
    ])
    r = classify_media(segs, 22.0, _classes()[:1], threshold=THR, include_clips=True)
    dance = r["classes"][0]
    # union [0, 11) = 11 s of 22 -> 0.5 (the conversation [2, 9) overlap counts once);
    # (5*100 + 5*80 + 7*100 + 3*100) / 20 = 95
    assert (dance["score"], dance["duration_ratio"]) == (95.0, 0.5)
    assert [(k["start"], k["end"], k["option"], k["score"]) for k in dance["clips"]] == [
        (0.0, 11.0000001, "visual", 100.0), (2.0, 9.0, "conversation", 100.0)]


def test_no_match_gives_no_classes_and_no_vectors_is_fine() -> None:
    segs = SegmentArrays.from_segments([{"start": 0, "end": 3, "option": "conversation", "text": "nothing"}])
    assert classify_media(segs, 3.0, _classes(), video_id="x") == {"video_id": "x", "classes": []}
    empty = SegmentArrays.from_segments([])
    assert classify_media(empty, 0.0, _classes(), show_detailed_score=True)["classes"] == []


@pytest.mark.parametrize("kwargs", [
    {"options": ["smell"]}, {"options": []}, {"conversation_option": "fuzzy"},
    {"threshold": {"visaul": 3}},
])
def test_invalid_requests_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        classify_media(_segments(), 20.0, _classes(), **kwargs)


def test_invalid_classes_raise() -> None:
    with pytest.raises(ValueError):
        MediaClass("x", ["a", "b"], E[[0]])
    with pytest.raises(ValueError):
        MediaClass("x", ["a"], E[[0]], options=("smell",))
    with pytest.raises(ValueError):
        classify_media(_segments(), 20.0, [MediaClass("x", ["a"], np.ones((1, 3)))])


def test_pagination_shape() -> None:
    videos = [{"video_id": f"v{i}", "classes": []} for i in range(5)]
    p0 = classify_page(videos, page_limit=2, token_prefix="q7", page_expired_at="2023-05-22T05:19:09Z")
    assert p0 == {"data": videos[:2], "page_info": {
        "limit_per_page": 2, "total_results": 5, "page_expired_at": "2023-05-22T05:19:09Z",
        "next_page_token": "q7-1", "prev_page_token": ""}}
    p2 = classify_page(videos, page_limit=2, page=parse_page_token("q7-2")[1], token_prefix="q7")
    assert p2["data"] == videos[4:] and p2["page_info"]["next_page_token"] == ""
    assert p2["page_info"]["prev_page_token"] == "q7-1"
    assert classify_page(videos)["page_info"]["limit_per_page"] == 10
    with pytest.raises(ValueError):
        classify_page(videos, page_limit=0)
    with pytest.raises(ValueError):
        parse_page_token("nodash")


def test_two_hour_video_is_classified() -> None:
    """A two-hour video (21,600 segments) classifies correctly. Its speed is measured by
    ``bench/media_core.py`` (``make bench-core``); it was asserted here (< 1 s) and failed on a loaded machine."""
    segs, classes = samples.long_video()
    r = classify_media(segs, 7200.0, classes, video_id="long", include_clips=True,
                       show_detailed_score=True, threshold={"min_clip_score": 10})
    assert r["classes"][0]["name"] == "c0" and r["classes"][0]["duration_ratio"] == 1.0


def test_empty_prompt_and_missing_duration() -> None:
    with pytest.raises(ValueError):
        MediaClass("x", [" "], E[[0]])
    segs = SegmentArrays.from_segments([{"start": 0, "end": 0, "option": "visual", "vector": [1, 0, 0, 0]}])
    assert classify_media(segs, None, _classes())["classes"][0]["duration_ratio"] == 1.0
