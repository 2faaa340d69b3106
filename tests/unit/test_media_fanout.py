"""A classify request split over workers answers exactly what one worker holding everything answers,
and its pages, kept in the request-results table, are the pages one worker would have served.

Each "worker" runs the pure step on the items of its partitions (``classify_each``); the merge
(``app/classify/fanout.py``) must give the same results in the same order, and the same first error."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.classify import fanout, requeststore
from app.classify.media import Media
from app.classify.outcome import Record
from app.classify.prompts import Embedder
from app.classify.state import ModelState
from app.classify.training import training_step
from app.classify.twelvelabs import ApiError, classify_each, classify_request, parse_request
from app.core.media import classify_page
from app.schemas.deadletter import Source
from app.settings import Settings

P = 8
CLASSES = [{"name": "Food", "prompts": ["cooking pasta", "a recipe"]}, {"name": "Sport", "prompts": ["a goal"]}]


@pytest.fixture
def state(tmp_path):
    s = ModelState(Settings(data_dir=tmp_path))
    recs = [("index:i", {"record": "index", "id": "i", "options": {"conversation": {"vectorizer": "hashing"}}}),
            ("index:j", {"record": "index", "id": "j", "options": {"visual": {"vectorizer": "precomputed", "dim": 4}}})]
    for o in training_step(s, [Record(k.encode(), orjson.dumps(v), Source(topic="t", partition=0, offset=n))
                               for n, (k, v) in enumerate(recs)]):
        for w in o.writes:
            s.apply(w.key.decode(), w.value)
    return s


def items(n: int, index_id: str = "i", seed: int = 3) -> list[tuple[Media, int]]:
    """``n`` stored items with the partition each sits in (spread over all of them)."""
    rng = np.random.default_rng(seed)
    texts = ["we are cooking pasta", "a goal in the last minute", "the recipe needs salt", "rain tomorrow"]
    out = []
    for k in range(n):
        segs = [{"start": float(t), "end": float(t + 2), "option": "conversation", "vector": None,
                 "text": texts[int(rng.integers(len(texts)))]} for t in range(0, 8, 2)]
        out.append((Media(f"v{k:02d}", index_id, "video", segs, Source(topic="m", partition=k % P, offset=k),
                          duration=8.0), k % P))
    return out


def shares(state, req, stored, workers: list[set[int]]) -> fanout.Gathered:
    """What each worker answers for its partitions, added up as the worker that took the request does."""
    g = fanout.Gathered()
    for parts in workers:
        mine = [(m, p) for m, p in stored if p in parts]
        if req.video_ids is not None:  # a worker returns the requested videos it holds
            mine = [(m, p) for m, p in mine if m.media_id in req.video_ids]
        answers = classify_each(state, Embedder(), req, [m for m, _ in mine])
        g.add(fanout.share(sorted(parts), [fanout.item(m.media_id, m.index_id, p, a)
                                           for (m, p), a in zip(mine, answers)], len(mine)))
    return g


TWO = [{0, 2, 4, 6}, {1, 3, 5, 7}]
THREE = [{0, 1, 2}, {3, 4}, {5, 6, 7}]


@pytest.mark.parametrize("workers", [TWO, THREE])
def test_bulk_over_several_workers_is_the_single_worker_answer(state, workers):
    stored = items(11)
    req = parse_request({"index_id": "i", "options": ["conversation"], "classes": CLASSES, "include_clips": True,
                         "show_detailed_score": True}, "index", max_prompts=10, max_videos=100)
    one = classify_request(state, Embedder(), req, sorted((m for m, _ in stored), key=lambda m: m.media_id))
    got = fanout.merge_index("i", shares(state, req, stored, workers), declared=True, max_videos=100)
    assert got == one and [v["video_id"] for v in got] == sorted(m.media_id for m, _ in stored)
    with pytest.raises(ApiError, match="holds 11 videos; one request classifies at most 10"):
        fanout.merge_index("i", shares(state, req, stored, workers), declared=True, max_videos=10)


def test_videos_keep_the_request_order_and_the_first_missing_is_named(state):
    stored = items(9)
    ids = ["v07", "v02", "v07", "v05"]
    req = parse_request({"video_ids": ids, "options": ["conversation"], "classes": CLASSES}, "videos",
                        max_prompts=10, max_videos=10)
    by_id = {m.media_id: m for m, _ in stored}
    one = classify_request(state, Embedder(), req, [by_id[v] for v in dict.fromkeys(ids)])
    assert fanout.merge_videos(ids, shares(state, req, stored, TWO).items) == one
    missing = req.model_copy(update={"video_ids": ["v01", "ghost", "other"]})
    with pytest.raises(ApiError) as e:
        fanout.merge_videos(["v01", "ghost", "other"], shares(state, missing, stored, TWO).items)
    assert (e.value.status, e.value.code, e.value.message) == (404, "resource_not_exist",
                                                              "The video ghost does not exist.")


def test_the_first_error_is_the_single_worker_one(state):
    """Items of two indexes; the second index (visual, precomputed) has no prompt vectors: the request
    fails with that index's refusal, whichever worker holds its items."""
    stored = items(4) + [(Media("w1", "j", "video", [{"start": 0.0, "end": 1.0, "option": "visual",
                                                       "vector": [1.0, 0, 0, 0], "text": None}],
                               Source(topic="m", partition=5, offset=0), duration=1.0), 5)]
    ids = ["v01", "w1", "v02"]
    req = parse_request({"video_ids": ids, "options": ["conversation", "visual"], "classes": CLASSES[:1]},
                        "videos", max_prompts=10, max_videos=10)
    by_id = {m.media_id: m for m, _ in stored}
    with pytest.raises(ApiError) as single:
        classify_request(state, Embedder(), req, [by_id[v] for v in ids])
    with pytest.raises(ApiError) as merged:
        fanout.merge_videos(ids, shares(state, req, stored, THREE).items)
    assert merged.value.args == single.value.args and "index 'i'" in single.value.message


def test_a_partition_answered_twice_is_a_bug_not_a_duplicate():
    g = fanout.Gathered()
    g.add(fanout.share([1, 2], []))
    with pytest.raises(ValueError, match=r"partitions \[2\] were answered twice"):
        g.add(fanout.share([2, 3], []))


def test_kept_pages_are_the_pages_of_the_answer():
    videos = [{"video_id": f"v{k}", "classes": []} for k in range(7)]
    token = requeststore.new_id(iter(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]).__next__, {3, 4}, P)
    assert requeststore.home(token, P) in {3, 4}
    first, writes = requeststore.page_writes(videos, 3, token, now=100.0, ttl=10.0, partitions=P)
    assert {requeststore.partition_of(w.key, P) for w in writes} == {requeststore.home(token, P)}
    store = {w.key: w.value for w in writes}
    pages = [first] + [requeststore.read_page(f"{token}-{n}", store.get, now=109.9, partitions=P) for n in (1, 2)]
    for n, doc in enumerate(pages):
        want = classify_page(videos, page_limit=3, page=n, token_prefix=token, page_expired_at="1970-01-01T00:01:50Z")
        assert doc["data"] == want["data"]
        assert doc["page_info"] == {k: v for k, v in want["page_info"].items() if v != ""}
    for bad, message in [("nope", "is not valid"), ("zz-0", "is unknown or has expired"),
                         (f"{token}-3", "points past the last page")]:
        with pytest.raises(ApiError, match=message):
            requeststore.read_page(bad, store.get, now=101.0, partitions=P)
    with pytest.raises(ApiError, match=r"has expired \(at 1970-01-01T00:01:50Z\)"):
        requeststore.read_page(f"{token}-3", store.get, now=110.0, partitions=P)
    with pytest.raises(ValueError, match="owns no partition"):
        requeststore.new_id(lambda: "x", set(), P)
