"""Media state in Faust tables: chunk assembly that survives restarts, and the result cache.

``media-assembly`` holds, per media item being assembled, one small index entry and one entry
per chunk, so no value grows past one chunk (a media event is at most ``max_payload_bytes``;
the changelog allows 16 MB messages like the media topic):

- ``["<media_id>", salt]``       ``{"chunks": {seq: [final, total]}, "bytes": n, "done"?: offset}``
                                 while waiting, ``{"done": offset}`` once classified or dead-lettered
- ``["<media_id>", seq, salt]``  the stored chunk (``app.engine.media.encode_chunk``)

Keys are JSON arrays (a media_id may hold any character: no separator could be ambiguous).
**Why the salt**: tables are written with ``use_partitioner`` (see ``app/tables.py``), so the
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

``media-cache`` maps a cache key (``app.engine.media.cache_key``) to the media-independent
body of a result. Its keys are content hashes, not co-located with any record: the cache is
shared by every media item of a worker's partitions, and after a rebalance an entry may sit
with another worker; a miss only costs a recomputation of the same result.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson
from aiokafka.partitioner import murmur2

from app.codec import Rejected
from app.core.segments import chunk_info, chunk_status
from app.engine.media import encode_chunk
from app.main import app, settings
from app.schemas.media import MediaEvent
from app.topics import BIG, CATALOG

PARTITIONS = settings.topic_partitions or CATALOG["media"].partitions
#: Assembled chunks of one item may total this much (the vectors are decoded in memory at once).
MAX_ASSEMBLY_BYTES = 32 * settings.max_payload_bytes


def _table(name: str, help: str):
    return app.Table(name, partitions=PARTITIONS, key_type=bytes, value_type=bytes, use_partitioner=True,
                     help=help, extra_topic_configs={"max.message.bytes": BIG})


assembly = _table("media-assembly", "chunks of media items being assembled, and done markers")
cache = _table("media-cache", "media results by content, taxonomy version and classifier settings")


def partition_of(key: bytes) -> int:
    """The changelog partition the producer's default (murmur2) partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def colocated(parts: list[Any], partition: int) -> bytes:
    """``orjson.dumps(parts + [salt])`` with the smallest salt that lands in ``partition``."""
    for salt in itertools.count():
        key = orjson.dumps([*parts, salt])
        if partition_of(key) == partition:
            return key
    raise AssertionError("unreachable")


@dataclass
class Complete:
    """A fully assembled item: its stored chunks, and what to clean up once its output is out."""

    index_key: bytes
    chunk_keys: list[bytes]
    values: list[bytes]
    offset: int


Run = Callable[..., Awaitable[Any]]  # runs a blocking function in the worker pool


async def add_chunk(ev: MediaEvent, message: Any, run: Run) -> Complete | None:
    """Store one chunk event. ``None`` while the item waits (or for a redelivered chunk of a
    finished item); ``Complete`` when this chunk completes it. Raises ``Rejected`` (after
    discarding the assembly) when no further chunk could make it consistent or it is too big."""
    if message.key != ev.media_id.encode():
        raise Rejected("media_key_mismatch", f"chunk of media {ev.media_id!r} is keyed {message.key!r}: "
                       "chunks are assembled per partition, so they must be keyed by media_id")
    part, seq = message.partition, ev.chunk.seq
    index_key = colocated([ev.media_id], part)
    state = orjson.loads(assembly[index_key]) if index_key in assembly else {"chunks": {}, "bytes": 0}
    if message.offset <= state.get("done", -1):
        return None
    if "chunks" not in state:  # a new assembly; the marker stays for replays of older offsets
        state = {"chunks": {}, "bytes": 0, "done": state["done"]}
    key = colocated([ev.media_id, seq], part)
    earlier = assembly[key] if str(seq) in state["chunks"] else None
    value = await run(encode_chunk, ev, earlier)
    final, total = state["chunks"].get(str(seq), [False, None])
    state["chunks"][str(seq)] = [bool(ev.chunk.final or final), ev.chunk.total or total]
    state["bytes"] += len(value) - (len(earlier) if earlier is not None else 0)
    infos = [{"chunk": {"seq": int(s), "final": f, "total": t}} for s, (f, t) in state["chunks"].items()]
    status = chunk_status(*chunk_info(infos))
    if status == "waiting" and state["bytes"] <= MAX_ASSEMBLY_BYTES:
        assembly[key] = value
        assembly[index_key] = orjson.dumps(state)
        return None
    keys = {s: colocated([ev.media_id, s], part) for s in sorted(int(s) for s in state["chunks"])}
    if status == "inconsistent" or state["bytes"] > MAX_ASSEMBLY_BYTES:
        close(Complete(index_key, list(keys.values()), [], message.offset))
        if status == "inconsistent":
            raise Rejected("chunks_inconsistent", f"chunks {list(keys)} of media {ev.media_id!r} cannot complete "
                           f"(final and total: {state['chunks']})", "chunk")
        raise Rejected("media_too_large", f"the chunks of media {ev.media_id!r} exceed {MAX_ASSEMBLY_BYTES} bytes")
    # The completing chunk is not stored: if the worker dies before the output is out, its
    # redelivery completes the item again from the chunks still in the table.
    values = [value if s == seq else assembly[k] for s, k in keys.items()]
    return Complete(index_key, list(keys.values()), values, message.offset)


def close(done: Complete) -> None:
    """Leave the done marker and drop the item's chunks; call after its output was emitted.
    The marker goes first: keys are co-located, so the changelog keeps this order, and a
    crash half-way leaves orphaned chunks (overwritten by a resend) rather than an index
    naming chunks that are gone."""
    assembly[done.index_key] = orjson.dumps({"done": done.offset})
    for k in done.chunk_keys:
        if k in assembly:
            del assembly[k]
