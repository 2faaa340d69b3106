"""The media store through the media step: complete items are stored (whole or chunked), a
tombstone deletes, a bad item is not stored, a store too large for one message is skipped."""

from __future__ import annotations

import orjson

from app.classify import mediastore
from app.classify.media_step import media_step
from app.classify.outcome import Record
from app.classify.state import ModelState
from app.schemas.deadletter import Source
from app.settings import Settings

P = 8


def _rec(key: bytes | None, doc: dict | None, offset: int = 0, partition: int = 2) -> Record:
    return Record(key, None if doc is None else orjson.dumps(doc), Source(topic="t.media", partition=partition,
                                                                         offset=offset, timestamp=1))


def _video(media_id="m1", index="idx", **kw) -> dict:
    return {"media_id": media_id, "index_id": index, "kind": "video", "duration": 4,
            "segments": [{"start": 0, "end": 2, "option": "visual", "vector": [1, 0]},
                         {"start": 2, "end": 4, "option": "conversation", "text": "hello there"}], **kw}


class Table(dict):
    def read(self, key: bytes) -> bytes | None:
        return self.get(key)

    def apply(self, writes) -> None:
        for w in writes:
            if w.value is None:
                self.pop(w.key, None)
            else:
                self[w.key] = w.value


def _run(state, tables: dict[str, Table], rec: Record):
    out = media_step(state, rec, tables["media-assembly"].read, tables["media-cache"].read, partitions=P, now=10)
    for name, t in tables.items():
        t.apply([w for w in out.writes if w.table == name])
    return out


def _tables() -> dict[str, Table]:
    return {n: Table() for n in ("media-assembly", "media-cache", "media-store")}


def test_whole_and_chunked_items_are_stored_and_a_tombstone_deletes(tmp_path):
    state, t = ModelState(Settings(data_dir=tmp_path)), _tables()
    out = _run(state, t, _rec(b"m1", _video()))
    # no standing classifier: a dead letter as before, and the item is stored all the same
    assert out.rejected is not None and out.rejected.reason == "no_media_classifier"
    [(key, value)] = t["media-store"].items()
    item = mediastore.decode(value)
    assert (item.media_id, item.index_id, mediastore.partition_of(key, P)) == ("m1", "idx", 2)
    assert [s["text"] for s in item.segments] == [None, "hello there"] and item.duration == 4.0

    for seq in (1, 0):  # chunked, out of order: stored once complete
        doc = _video("m2", segments=[_video()["segments"][seq]], chunk={"seq": seq, "final": seq == 1})
        _run(state, t, _rec(b"m2", doc, offset=5 + seq))
    assert sorted(mediastore.decode(v).media_id for v in t["media-store"].values()) == ["m1", "m2"]
    assert len(mediastore.decode(t["media-store"][mediastore.store_key("m2", 2, P)]).segments) == 2

    out = _run(state, t, _rec(b"m1", None, offset=9))
    assert out.rejected is None and out.results == []
    assert [mediastore.decode(v).media_id for v in t["media-store"].values()] == ["m2"]


def test_a_bad_item_is_not_stored_and_the_store_can_be_off(tmp_path):
    state, t = ModelState(Settings(data_dir=tmp_path)), _tables()
    bad = _video(segments=[{"start": 0, "end": 1, "vector": [1, 0]}, {"start": 1, "end": 2, "vector": [1, 0, 0]}])
    assert _run(state, t, _rec(b"m1", bad)).rejected.reason == "vector_dimension_mismatch"
    off = ModelState(Settings(data_dir=tmp_path, store_media=False))
    _run(off, t, _rec(b"m1", _video()))
    assert t["media-store"] == {}


def test_an_item_beyond_the_message_limit_is_not_stored(tmp_path, monkeypatch):
    monkeypatch.setattr(mediastore, "STORE_LIMIT", 100)
    state, t = ModelState(Settings(data_dir=tmp_path)), _tables()
    _run(state, t, _rec(b"m1", _video()))
    assert t["media-store"] == {}
