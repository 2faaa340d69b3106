"""The media engine on synthetic vectors: results, determinism, the cache, chunk storage.

A real ``ModelState`` is fed taxonomy and classifier records exactly as the training replica
would; expected numbers come from the pure core (``app.core.media`` / ``app.core.frames``).
"""

from __future__ import annotations

import functools
import random

import numpy as np
import orjson
import pytest

from app.classify.codec import Rejected, dumps
from app.core.frames import frame_scores
from app.core.media import MediaClass, classify_media
from app.core.segments import SegmentArrays, content_hash, merge_chunks
from app.classify import assembly, media as engine
from app.classify.expiry import stamp
from app.schemas.deadletter import Source
from app.schemas.media import MediaEvent
from app.schemas.vectors import encode_vector
from app.settings import Settings
from app.classify.state import ModelState

D = 8
E = np.eye(D)
SRC = Source(topic="t.media", partition=0, offset=41, timestamp=1_700_000_000_123)
CLASSES = [("Dance", ["dance group", "dance tutorial"], [0, 1], None),
           ("Cook", ["cooking"], [2], "moderation"),
           ("Safe", ["safe"], [3], "moderation")]


def _state(tmp_path, version: int = 1, **media) -> ModelState:
    state = ModelState(Settings(data_dir=tmp_path))
    tax = {"record": "taxonomy", "name": "genres", "version": version, "vectorizer": "none", "temperature": 0.1,
           "classes": [{"name": n, "prompts": p, "prompt_vectors": E[rows].tolist(), **({"head": h} if h else {})}
                       for n, p, rows, h in CLASSES]}
    state.apply("taxonomy:genres", orjson.dumps(tax))
    clf = {"record": "classifier", "name": "genre", "type": "media", "taxonomies": ["genres"],
           "media": {"threshold": {"min_clip_score": 30}, "include_clips": True, "show_detailed_score": True, **media}}
    state.apply("classifier:genre", orjson.dumps(clf))
    return state


def _segments(n: int = 40, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    segs = []
    for i in range(n):
        v = rng.normal(0, 0.2, D)
        v[i % 3] += 1.0  # Dance for 2/3 of the time (two prompts), Cook for 1/3
        segs.append({"start": float(i), "end": float(i + 1), "option": "visual", "vector": v.astype(np.float32)})
    return segs


def _media(segs, media_id="v1", kind="video", duration=None, source=SRC, **kw) -> engine.Media:
    ev = {"media_id": media_id, "kind": kind, "duration": duration if duration is not None else len(segs),
          "segments": [{**s, "vector": s["vector"].tolist() if s.get("vector") is not None else None} for s in segs],
          **kw}
    return engine.whole(MediaEvent.model_validate(ev), source)


def _run(state, media, cached=None):
    job = engine.prepare(state, media)
    return job, engine.classify(job, cached or {})


def test_video_result_follows_the_core(tmp_path):
    state = _state(tmp_path)
    segs = _segments()
    job, out = _run(state, _media(segs))
    [r] = out.results
    classes = [MediaClass(n, p, E[rows], head=0 if h is None else 1) for n, p, rows, h in CLASSES]
    arr = SegmentArrays.from_segments(merge_chunks([{"segments": segs}]))
    want = classify_media(arr, 40.0, classes, video_id="v1", include_clips=True, show_detailed_score=True,
                          threshold={"min_clip_score": 30})
    assert r.result_id == "v1/genre" and r.item_id == "v1" and r.item_kind == "media" and r.method == "media"
    assert r.class_ == "video" and r.classifier == "genre" and not r.from_cache
    assert [t.model_dump() for t in r.taxonomies] == [{"name": "genres", "version": 1}]
    assert r.detail["twelvelabs"] == want and [c["name"] for c in want["classes"]] == ["Cook", "Dance"]
    top = want["classes"][0]
    assert r.labels == {"class": top["name"]} and r.confidence == {"class": top["score"] / 100}
    frames = r.detail["hive"]["status"]["response"]["output"]
    assert frames == frame_scores(arr, classes, temperature=0.1, options=("visual", "conversation", "text_in_video"))
    assert [f["time"] for f in frames] == list(range(40))
    heads = {"Dance": 0, "Cook": 1, "Safe": 1}
    for f in frames:  # Dance alone in the default head; Cook + Safe share "moderation"
        by_head = [sum(c["score"] for c in f["classes"] if heads[c["class"]] == h) for h in (0, 1)]
        assert by_head == pytest.approx([1.0, 1.0])
    assert r.event_time == SRC.timestamp and r.source == SRC
    assert out.cache_writes.keys() == {job.runs[0].key}
    assert stamp(out.cache_writes[job.runs[0].key]) is not None, "dated for media_cache_ttl"


def test_deterministic_ids_and_records(tmp_path):
    state = _state(tmp_path)
    segs = _segments()
    _, a = _run(state, _media(segs))
    _, b = _run(state, _media(list(reversed(segs))))  # another order, same content
    assert dumps(a.results[0]) == dumps(b.results[0])
    assert a.encoded == [dumps(r) for r in a.results], "serialized once, the bytes the sink sends"
    env = a.results[0].detail["hive"]
    assert env["created_on"] == "2023-11-14T22:13:20.123Z" and env["from_cache"] is False
    assert env["status"]["response"]["input"]["media"] == {"type": "video", "mimetype": "", "duration": 40,
                                                           "width": 0, "height": 0}
    _, c = _run(state, _media(segs, media_id="v2"))
    assert c.results[0].detail["hive"]["id"] != env["id"], "the task id names the media"


def test_cache_key(tmp_path):
    state = _state(tmp_path)
    segs = _segments()
    key = lambda st, m: engine.prepare(st, m).runs[0].key  # noqa: E731
    k = key(state, _media(segs))
    assert k == key(state, _media(segs[::-1], media_id="other", source=SRC.model_copy(update={"offset": 9})))
    assert k != key(state, _media(segs[:-1], duration=40))
    assert k != key(state, _media(segs, duration=80))
    assert k != key(_state(tmp_path / "v2", version=2), _media(segs)), "taxonomy version"
    assert k != key(_state(tmp_path / "thr", threshold={"min_clip_score": 40}), _media(segs)), "settings"
    assert k == key(_state(tmp_path / "idx", index_id="default"), _media(segs)), "index_id is not an output input"


def test_cache_hit_is_marked_and_a_redelivery_is_not(tmp_path):
    state = _state(tmp_path)
    segs = _segments()
    job, first = _run(state, _media(segs))
    cached = dict(first.cache_writes)
    _, again = _run(state, _media(segs, media_id="v9", source=SRC.model_copy(update={"offset": 99})), cached)
    r = again.results[0]
    assert r.from_cache and r.detail["hive"]["from_cache"] and not again.cache_writes
    assert r.detail["twelvelabs"]["classes"] == first.results[0].detail["twelvelabs"]["classes"]
    assert r.detail["twelvelabs"]["video_id"] == "v9" and r.result_id == "v9/genre"
    _, redelivered = _run(state, _media(segs), cached)
    assert dumps(redelivered.results[0]) == dumps(first.results[0]), "same record, same output"


def test_image_is_one_frame_at_time_zero(tmp_path):
    state = _state(tmp_path)
    img = _media([{"start": 0, "end": 0, "option": "visual", "vector": E[2] + 0.1}], media_id="i1", kind="image",
                 duration=0, mimetype="image/png", width=64, height=48)
    [r] = _run(state, img)[1].results
    out = r.detail["hive"]["status"]["response"]["output"]
    assert len(out) == 1 and out[0]["time"] == 0 and r.labels == {"class": "Cook"}
    assert r.detail["twelvelabs"]["classes"][0]["duration_ratio"] == 1.0
    assert r.detail["hive"]["status"]["response"]["input"]["media"]["mimetype"] == "image/png"


def test_text_segments_match_by_exact_match_only(tmp_path):
    state = _state(tmp_path, conversation_option="exact_match", output="twelvelabs")
    segs = [{"start": 0, "end": 5, "option": "conversation", "text": "Tonight: COOKING with friends"},
            {"start": 5, "end": 10, "option": "conversation", "text": "a dance group"}]
    [r] = _run(state, _media(segs, duration=10))[1].results
    assert {c["name"]: c["duration_ratio"] for c in r.detail["twelvelabs"]["classes"]} == {"Cook": 0.5, "Dance": 0.5}
    assert "hive" not in r.detail
    [r] = _run(_state(tmp_path / "sem"), _media(segs, duration=10))[1].results
    assert r.labels == {"class": None} and r.detail["twelvelabs"]["classes"] == [], "no vector, no semantic score"


def test_classifier_choice_and_rejections(tmp_path):
    state = _state(tmp_path, index_id="idx-a")
    segs = _segments(4)
    with pytest.raises(Rejected) as e:
        engine.prepare(state, _media(segs, index_id="idx-b"))
    assert e.value.reason == "no_media_classifier"
    assert engine.prepare(state, _media(segs, index_id="idx-b", classifier="genre")).runs, "named: applies anywhere"
    with pytest.raises(Rejected) as e:
        engine.prepare(state, _media(segs, classifier="nope"))
    assert e.value.reason == "unknown_classifier"
    state.apply("taxonomy:genres", None)
    with pytest.raises(Rejected) as e:
        engine.prepare(state, _media(segs, index_id="idx-a"))
    assert e.value.reason == "unknown_taxonomy"
    wrong_dim = [{"start": 0, "end": 1, "option": "visual", "vector": np.ones(D + 1, np.float32)}]
    with pytest.raises(Rejected) as e:
        engine.prepare(_state(tmp_path / "d"), _media(wrong_dim))
    assert e.value.reason == "vector_dimension_mismatch"
    with pytest.raises(Rejected) as e:
        engine.prepare(_state(tmp_path / "c", classes={"Nope": {"options": ["visual"]}}), _media(segs))
    assert e.value.reason == "invalid_classifier"


def _chunk_events(segs, n_chunks, media_id="v1"):
    size = -(-len(segs) // n_chunks)
    return [MediaEvent.model_validate({
        "media_id": media_id, "kind": "video", "duration": len(segs),
        "chunk": {"seq": i, "final": i == n_chunks - 1},
        "segments": [{**s, "vector": encode_vector(s["vector"])} for s in segs[i * size:(i + 1) * size]]})
        for i in range(n_chunks)]


def test_chunks_assemble_to_the_whole_in_any_order(tmp_path):
    segs = _segments(30)
    events = _chunk_events(segs, 4)
    values = [engine.encode_chunk(e) for e in events]
    random.Random(3).shuffle(values)
    assembled = engine.assemble(values + values[:1], SRC)
    whole = _media(segs, duration=30)
    assert content_hash(assembled.segments) == content_hash(whole.segments)
    assert (assembled.media_id, assembled.kind, assembled.duration) == ("v1", "video", 30.0)
    state = _state(tmp_path)
    assert dumps(_run(state, assembled)[1].results[0]) == dumps(_run(state, whole)[1].results[0])


def test_conflicting_copies_of_a_chunk_merge_in_either_order():
    a = _chunk_events(_segments(6, seed=1), 2)[0]
    b = _chunk_events(_segments(6, seed=2), 2)[0]
    ab = engine.encode_chunk(b, engine.encode_chunk(a))
    ba = engine.encode_chunk(a, engine.encode_chunk(b))
    assert content_hash(engine.decode_chunk(ab)[1]) == content_hash(engine.decode_chunk(ba)[1])


def test_chunks_disagreeing_on_kind_are_inconsistent():
    events = _chunk_events(_segments(6), 2)
    events[1] = events[1].model_copy(update={"kind": "audio"})
    with pytest.raises(Rejected) as e:
        engine.assemble([engine.encode_chunk(ev) for ev in events], SRC)
    assert e.value.reason == "chunks_inconsistent"


class _ChunkStore:
    """The media-assembly table as a dict, with the sink's part (apply the step's writes) done inline."""

    PARTITIONS = 8
    NOW = 1_700_000_000_000  # the stamp of every write (ms)

    def __init__(self):
        self.assembly: dict[bytes, bytes] = {}

    def colocated(self, parts, p):
        return assembly.colocated(parts, p, self.PARTITIONS)

    def partition_of(self, key):
        return assembly.partition_of(key, self.PARTITIONS)

    def _apply(self, writes):
        for w in writes:
            if w.value is None:
                self.assembly.pop(w.key, None)
            else:
                self.assembly[w.key] = w.value

    async def add_chunk(self, ev, msg, run):
        src = SRC.model_copy(update={"partition": msg.partition, "offset": msg.offset})
        step = await run(functools.partial(assembly.add_chunk, partitions=self.PARTITIONS, max_bytes=1 << 30,
                                           now=self.NOW),
                         ev, msg.key, src, self.assembly.get)
        self._apply(step.writes)
        if step.rejected is not None:
            raise step.rejected
        return step.complete

    def close(self, complete):
        self._apply(complete.close())


def test_colocated_table_keys_land_in_the_record_partition():
    mt = _ChunkStore()

    for p in range(mt.PARTITIONS):
        key = mt.colocated(["some/media id", 3], p)
        assert mt.partition_of(key) == p and key == mt.colocated(["some/media id", 3], p)
        assert orjson.loads(key)[:2] == ["some/media id", 3]


class _Msg:
    def __init__(self, key: bytes, offset: int, partition: int = 0):
        self.key, self.offset, self.partition = key, offset, partition


async def _inline(fn, *args):
    return fn(*args)


async def test_chunk_store_completes_once_drops_replays_and_restarts_on_resend(monkeypatch):
    mt = _ChunkStore()  # a dict stands in for the Faust table
    segs = _segments(30)
    events = _chunk_events(segs, 4)

    async def feed(order, first_offset):
        done = []
        for off, i in enumerate(order, first_offset):
            c = await mt.add_chunk(events[i], _Msg(b"v1", off), _inline)
            if c is not None:
                done.append((off, c))
                mt.close(c)
        return done

    order = [0, 2, 2, 3, 1]  # a duplicate, the final chunk before the one that completes
    [(off, c)] = await feed(order, 0)
    assert off == 4 and len(c.values) == 4
    assert content_hash(engine.assemble(c.values, SRC).segments) == content_hash(_media(segs).segments)
    assert list(mt.assembly.values()) == [b'{"at":1700000000000,"done":4}'], "chunks deleted, the done marker left"
    assert await feed(order, 0) == [] and len(mt.assembly) == 1, "replayed offsets yield nothing"
    [(off, _)] = await feed(order, 10)
    assert off == 14, "sent again: assembled again"


async def test_chunk_store_rejections(monkeypatch):
    mt = _ChunkStore()
    ev = _chunk_events(_segments(6), 2)
    with pytest.raises(Rejected) as e:
        await mt.add_chunk(ev[0], _Msg(b"other", 0), _inline)
    assert e.value.reason == "media_key_mismatch"
    assert await mt.add_chunk(ev[1], _Msg(b"v1", 1), _inline) is None  # final = seq 1
    late = ev[0].model_copy(update={"chunk": ev[0].chunk.model_copy(update={"seq": 2})})
    with pytest.raises(Rejected) as e:
        await mt.add_chunk(late, _Msg(b"v1", 2), _inline)
    assert e.value.reason == "chunks_inconsistent"
    assert list(mt.assembly.values()) == [b'{"at":1700000000000,"done":2}'], "an impossible item is discarded"
