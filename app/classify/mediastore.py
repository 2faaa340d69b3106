"""The media store: every assembled media item kept for classification on request.

Twelve Labs users classify videos they indexed earlier (``POST /v1.2/classify`` by video id,
``/v1.2/classify/bulk`` by index). The media pipeline therefore keeps each complete item
(metadata, canonical segments with their vectors and text) in the changelog-backed
``media-store`` table, written by the sink from the media step's outcome like every table.

Keys and values:

- key ``[media_id, salt]`` (JSON), co-located with the record's partition like the assembly
  keys (``app.classify.assembly.colocated``: the worker that owns the partition recovers it);
- value ``{"at", "index_id", "media_id", "meta": {kind, mimetype, duration, width, height},
  "segments": [{start, end, option, vector (base64 float32) | null, text, thumbnail_url}]}``.

An item is identified by ``(index_id, media_id)`` but keyed by its media_id alone, for two
reasons: a tombstone on the media topic (key = media_id, null value) must find the entry
without reading anything first (the media step writes, it does not look up), and Twelve Labs
video ids are unique across indexes (``POST /v1.2/classify`` names videos without an index).
A media_id sent again under another index moves to that index. Bulk requests select the
index's items by the ``index_id`` in the value (:func:`index_of` reads it from a short prefix).

**Tombstones** delete the entry of the tombstone's partition: items meant to be deleted must be
keyed by media_id (chunked items already must be). **Retention**: values are stamped
(``app/classify/expiry.py``) and the sweeper removes items older than ``media_store_retention``.
An item whose stored form would exceed :data:`STORE_LIMIT` (the changelog's message limit) is not
stored; classification on request then answers ``resource_not_exist`` for it.

>>> from app.schemas.deadletter import Source
>>> from app.classify.media import Media
>>> m = Media("m1", "idx", "video", [{"start": 0.0, "end": 1.0, "option": "visual", "vector": [1.0, 0.0],
...           "text": None, "thumbnail_url": None}], Source(topic="t", partition=3, offset=9), duration=1.0)
>>> [w] = store_writes(m, partitions=8, now=5)
>>> w.table, partition_of(w.key, 8), index_of(w.value)
('media-store', 3, 'idx')
>>> item = decode(w.value)
>>> item.media_id, item.index_id, item.duration, item.segments[0]["vector"].tolist()
('m1', 'idx', 1.0, [1.0, 0.0])
>>> delete_writes(b"m1", 3, 8)[0].key == w.key
True
"""

from __future__ import annotations

from typing import Any

import orjson

from app.classify.assembly import colocated, partition_of
from app.classify.expiry import stamped
from app.classify.media import Media
from app.classify.outcome import TableWrite
from app.schemas.deadletter import Source
from app.schemas.vectors import encode_vector, parse_vector

STORE = "media-store"
#: A stored item must fit one changelog message (16 MiB, ``app.topics.BIG``) with headroom.
STORE_LIMIT = 15 * 1024 * 1024

__all__ = ["STORE", "STORE_LIMIT", "store_key", "store_writes", "delete_writes", "decode", "index_of",
           "candidate_keys", "partition_of"]


def store_key(media_id: str, partition: int, partitions: int) -> bytes:
    return colocated([media_id], partition, partitions)


def candidate_keys(media_id: str, partitions: int) -> list[bytes]:
    """Every key ``media_id`` may be stored under (one per partition): an item that was not keyed
    by its media_id sits in whatever partition its record went to; look it up in each.

    >>> len(candidate_keys("m1", 4)), len(set(candidate_keys("m1", 4)))
    (4, 4)
    """
    return [store_key(media_id, p, partitions) for p in range(partitions)]


def encode(media: Media, now: int) -> bytes:
    rows = [{"start": s["start"], "end": s["end"], "option": s["option"],
             "vector": None if s.get("vector") is None else encode_vector(s["vector"]),
             "text": s.get("text"), "thumbnail_url": s.get("thumbnail_url")} for s in media.segments]
    # index_id right after "at": index_of reads it without parsing the segments
    return stamped(now, {"index_id": media.index_id, "media_id": media.media_id, "meta": media.meta,
                         "source": media.source.model_dump(mode="json"), "segments": rows})


def store_writes(media: Media, *, partitions: int, now: int) -> list[TableWrite]:
    """The write that stores ``media`` (none when it is too large to store)."""
    value = encode(media, now)
    if len(value) > STORE_LIMIT:
        return []
    return [TableWrite(STORE, store_key(media.media_id, media.source.partition, partitions), value)]


def delete_writes(key: bytes | None, partition: int, partitions: int) -> list[TableWrite]:
    """A tombstone (null value) keyed ``media_id`` on the media topic: remove the stored item."""
    if not key:
        return []
    return [TableWrite(STORE, store_key(key.decode(errors="replace"), partition, partitions), None)]


def index_of(value: bytes) -> str | None:
    """The ``index_id`` of a stored value, read from its prefix (values can be megabytes).

    >>> index_of(b'{"at":1,"index_id":"a\\\\"b","media_id":"m"}'), index_of(b'{"x":1}')
    ('a"b', None)
    """
    head = value[:1024]
    at = head.find(b',"index_id":')
    if at < 0:
        return None
    start = at + len(b',"index_id":')
    end = head.find(b',"media_id":', start)
    try:
        found = orjson.loads(head[start:end]) if end > 0 else None
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, str) else None


def decode(value: bytes) -> Media:
    doc: dict[str, Any] = orjson.loads(value)
    segments = [{**s, "vector": None if s["vector"] is None else parse_vector(s["vector"])} for s in doc["segments"]]
    meta = doc["meta"]
    return Media(doc["media_id"], doc["index_id"], meta["kind"], segments, Source.model_validate(doc["source"]),
                 float(meta.get("duration") or 0.0), meta.get("mimetype"), meta.get("width"), meta.get("height"))
