"""Chunk assembly of media items over the ``media-assembly`` table, as a pure step.

The step reads the table through a ``key -> bytes | None`` function and returns the writes
as data (:class:`~app.classify.outcome.TableWrite`); the sink applies them, so assembly
survives restarts (changelog-backed) without touching Kafka here.

``media-assembly`` holds, per media item being assembled, one small index entry and one entry
per chunk, so no value grows past one chunk (a media event is at most ``max_payload_bytes``;
the changelog allows 16 MB messages like the media topic):

- ``["<media_id>", salt]``       ``{"at": ms, "chunks": {seq: [final, total]}, "offsets": {seq: offset},
                                 "bytes": n, "done"?: offset}`` while waiting, ``{"at": ms, "done": offset}``
                                 once classified or dead-lettered (``at``: when it was last written)
- ``["<media_id>", seq, salt]``  the stored chunk (``app.classify.media.encode_chunk``)

Keys are JSON arrays (a media_id may hold any character: no separator could be ambiguous).
**Why the salt**: tables are written with ``use_partitioner`` (see ``app/service/tables.py``), so the
key's murmur2 hash picks the changelog partition. A key must land in the partition of the
record it came from, the partition this worker owns and recovers after a restart or a
rebalance; ``b"<media_id>/<seq>"`` would hash anywhere and be recovered by another worker.
The salt is the smallest integer that puts the key in the record's partition (about
``partitions`` tries of a microsecond each), so keys are deterministic and co-located
whatever partitioner the producer used. Chunks of one item must therefore share a partition:
chunked events must be keyed by ``media_id`` (else ``media_key_mismatch``).

**The done marker** makes assembly idempotent under redelivery: offsets grow within a
partition, so a chunk at or below the offset that completed its item is a redelivery of a
record already consumed (its result went out before the marker was written, and Faust
flushes the producer before committing), and is acknowledged without output; a later
offset starts a new assembly (the item was sent again).

``media-cache`` maps a cache key (``app.classify.media.cache_key``) to the media-independent
body of a result. Its keys are content hashes, not co-located with any record: the cache is
shared by every media item of a worker's partitions, and after a rebalance an entry may sit
with another worker; a miss only costs a recomputation of the same result.

**Bounded state** (:func:`expire`, applied by ``app/service/sweeper.py``): an item whose last
chunk was stored ``media_incomplete_ttl`` ago loses its chunks and leaves a ``media_incomplete``
dead letter (nothing vanishes silently); a done marker goes after ``media_done_ttl``; a chunk
that no index entry lists (a crash between a done marker and its chunk deletions) goes at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.classify.codec import Rejected
from app.classify.expiry import Expiry, now_ms, since, stamped
from app.classify.media import encode_chunk
from app.classify.outcome import Record, TableWrite
from app.core.murmur2 import partition
from app.core.segments import chunk_info, chunk_status
from app.schemas.deadletter import Source
from app.schemas.media import MediaEvent

ASSEMBLY = "media-assembly"
Read = Callable[[bytes], bytes | None]


def partition_of(key: bytes, partitions: int) -> int:
    """The changelog partition the producer's default (murmur2) partitioner gives ``key``."""
    return partition(key, partitions)


def colocated(parts: list[Any], partition: int, partitions: int) -> bytes:
    """``orjson.dumps(parts + [salt])`` with the smallest salt that lands in ``partition``.

    >>> key = colocated(["m1"], 3, 8)
    >>> partition_of(key, 8), key.startswith(b'["m1",')
    (3, True)
    """
    for salt in itertools.count():
        key = orjson.dumps([*parts, salt])
        if partition_of(key, partitions) == partition:
            return key
    raise AssertionError("unreachable")


@dataclass
class Complete:
    """A fully assembled item: its stored chunks, and what to clean up once its output is out."""

    index_key: bytes
    chunk_keys: list[bytes]
    values: list[bytes]
    offset: int
    at: int  # the done marker's stamp

    def close(self) -> list[TableWrite]:
        """The done marker, then the chunk deletions: the writes that follow the item's output.

        The marker goes first: keys are co-located, so the changelog keeps this order, and a
        crash half-way leaves orphaned chunks (overwritten by a resend) rather than an index
        naming chunks that are gone."""
        marker = TableWrite(ASSEMBLY, self.index_key, stamped(self.at, {"done": self.offset}))
        return [marker, *(TableWrite(ASSEMBLY, k, None) for k in self.chunk_keys)]


@dataclass
class Step:
    """What one chunk did: writes to apply now, and the complete item if it completed one."""

    writes: list[TableWrite] = field(default_factory=list)
    complete: Complete | None = None
    rejected: Rejected | None = None  # the item was discarded (``writes`` clean it up)


def add_chunk(ev: MediaEvent, key: bytes | None, source: Source, read: Read, *, partitions: int,
              max_bytes: int, now: int | None = None) -> Step:
    """Store one chunk event. ``Step.complete`` is None while the item waits (or for a redelivered
    chunk of a finished item), the item when this chunk completes it. ``Step.rejected`` (with the
    writes that discard the item) when no further chunk could make the item consistent or it is
    too big; raises ``Rejected`` for a chunk that is bad on its own (the item waits for a good copy).
    ``now`` (ms, default the clock) stamps what is written."""
    assert ev.chunk is not None
    now = now_ms() if now is None else now
    if key != ev.media_id.encode():
        raise Rejected("media_key_mismatch", f"chunk of media {ev.media_id!r} is keyed {key!r}: "
                       "chunks are assembled per partition, so they must be keyed by media_id")
    part, seq = source.partition, ev.chunk.seq
    index_key = colocated([ev.media_id], part, partitions)
    stored = read(index_key)
    state: dict[str, Any] = orjson.loads(stored) if stored is not None else {"chunks": {}, "bytes": 0}
    if source.offset <= state.get("done", -1):
        return Step()
    if "chunks" not in state:  # a new assembly; the marker stays for replays of older offsets
        state = {"chunks": {}, "bytes": 0, "done": state["done"]}
    state.setdefault("offsets", {})[str(seq)] = source.offset
    chunk_key = colocated([ev.media_id, seq], part, partitions)
    earlier = read(chunk_key) if str(seq) in state["chunks"] else None
    value = encode_chunk(ev, earlier)
    final, total = state["chunks"].get(str(seq), [False, None])
    state["chunks"][str(seq)] = [bool(ev.chunk.final or final), ev.chunk.total or total]
    state["bytes"] += len(value) - (len(earlier) if earlier is not None else 0)
    infos = [{"chunk": {"seq": int(s), "final": f, "total": t}} for s, (f, t) in state["chunks"].items()]
    status = chunk_status(*chunk_info(infos))
    if status == "waiting" and state["bytes"] <= max_bytes:
        return Step([TableWrite(ASSEMBLY, chunk_key, value), TableWrite(ASSEMBLY, index_key, stamped(now, state))])
    keys = {s: colocated([ev.media_id, s], part, partitions) for s in sorted(int(s) for s in state["chunks"])}
    if status == "inconsistent" or state["bytes"] > max_bytes:
        discard = Complete(index_key, list(keys.values()), [], source.offset, now).close()
        if status == "inconsistent":
            r = Rejected("chunks_inconsistent", f"chunks {list(keys)} of media {ev.media_id!r} cannot complete "
                         f"(final and total: {state['chunks']})", "chunk")
        else:
            r = Rejected("media_too_large", f"the chunks of media {ev.media_id!r} exceed {max_bytes} bytes")
        return Step(discard, None, r)
    # The completing chunk is not stored: if the worker dies before the output is out, its
    # redelivery completes the item again from the chunks still in the table.
    values = []
    for s, k in keys.items():
        v = value if s == seq else read(k)
        if v is None:
            raise Rejected("chunks_inconsistent", f"chunk {s} of media {ev.media_id!r} is missing from the table", "chunk")
        values.append(v)
    return Step([], Complete(index_key, list(keys.values()), values, source.offset, now))


def expire(key: bytes, value: bytes, read: Read, *, now: int, incomplete_ttl: int, done_ttl: int,
           first_seen: dict[bytes, int], partitions: int, topic: str) -> Expiry | None:
    """What to do with one ``media-assembly`` entry at ``now`` (ms; TTLs in ms, 0 = never), or None.

    ``read`` must show the table as it is: the caller holds the media agent off while it decides
    and applies (``Tables.lock``). ``topic`` is the media topic (the dead letter's source)."""
    try:
        parts = orjson.loads(key)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parts, list) or len(parts) not in (2, 3):
        return None
    part = partition_of(key, partitions)
    if len(parts) == 3:  # a chunk: kept while its index entry lists it; that entry expires it
        index = read(colocated(parts[:1], part, partitions))
        listed = index is not None and str(parts[1]) in orjson.loads(index).get("chunks", {})
        return None if listed else Expiry([TableWrite(ASSEMBLY, key, None)])
    state = orjson.loads(value)
    at = since(key, value, now, first_seen)
    if not state.get("chunks"):
        if done_ttl > 0 and now - at >= done_ttl:
            return Expiry([TableWrite(ASSEMBLY, key, None)])
        return None
    if incomplete_ttl <= 0 or now - at < incomplete_ttl:
        return None
    media_id, chunks, offsets = parts[0], state["chunks"], state.get("offsets", {})
    # The index first: a crash half-way leaves chunks no entry lists, which the next sweep drops.
    head = TableWrite(ASSEMBLY, key, stamped(at, {"done": state["done"]}) if "done" in state else None)
    writes = [head, *(TableWrite(ASSEMBLY, colocated([media_id, int(s)], part, partitions), None)
                      for s in sorted(chunks, key=int))]
    last = max(offsets.values(), default=-1)  # -1: an entry written before offsets were recorded
    detail = (f"media {media_id!r} did not complete: chunks {sorted(int(s) for s in chunks)} (seq: [final, total] "
              f"{chunks}) at offsets {offsets or 'unknown'} of partition {part}; no chunk for "
              f"{(now - at) / 1000:.0f}s (media_incomplete_ttl {incomplete_ttl / 1000:g}s): the chunks were dropped")
    record = Record(str(media_id).encode(), None, Source(topic=topic, partition=part, offset=last, timestamp=at))
    return Expiry(writes, (record, Rejected("media_incomplete", detail, "chunk")))
