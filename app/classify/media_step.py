"""The media pipeline's pure step: one media record in, one ``Outcome`` out.

Decode, assemble chunks (``app.classify.assembly``), pick classifiers and cache keys
(``app.classify.media.prepare``), read the cache, classify: all in a worker thread, reading
the tables through plain functions and returning the writes (stored chunk, done marker, chunk
deletions, cache entries) as data.

**One output per input.** A whole media event yields its results, one per applicable media
classifier, or one dead letter. A chunked video is one media item sent as several records,
and its output is per item: the chunk that completes the item yields the results (or the
dead letter), while a chunk that is stored and waits yields only its table write (its
durable output). A chunk that is bad on its own (schema, ``too_many_segments``,
``media_key_mismatch``) is dead-lettered by itself and its item waits for a good copy; a chunk
that makes the item impossible (``chunks_inconsistent``, ``media_too_large``) dead-letters and
discards it. A complete item is also kept in the media store (``app/classify/mediastore.py``)
for classification on request (without a standing classifier, an item of an index declared on
the training topic yields only that write; of any other index, a ``no_media_classifier`` dead
letter as well); a tombstone (null value, keyed by media_id) removes it and yields
only that deletion. Once a complete item has its output, its chunks are dropped behind a done marker,
so a redelivered chunk of an item already classified yields nothing.
"""

from __future__ import annotations

from app.classify import media as engine
from app.classify import mediastore
from app.classify import raw_media
from app.classify.assembly import Read, add_chunk
from app.classify.codec import Rejected, decode, internal_error
from app.classify.expiry import now_ms
from app.classify.outcome import Outcome, Record, TableWrite
from app.classify.state import ModelState
from app.schemas.media import MediaEvent

CACHE = "media-cache"
ASSEMBLY_FACTOR = 32  # an assembled item may hold this many max-size records (vectors are decoded at once)


def media_step(state: ModelState, record: Record, read_assembly: Read, read_cache: Read, *,
               partitions: int, now: int | None = None) -> Outcome:
    """``now`` (ms, default the clock) stamps the table writes (``app/classify/expiry.py``)."""
    settings = state.settings
    now = now_ms() if now is None else now
    complete = None
    stored: list[TableWrite] = []
    if record.value is None and record.key:  # a tombstone: the item leaves the media store
        return Outcome(writes=mediastore.delete_writes(record.key, record.source.partition, partitions))
    try:
        ev = decode(record.value, MediaEvent, settings.max_payload_bytes)
        if len(ev.segments) > settings.max_segments:
            raise Rejected("too_many_segments", f"{len(ev.segments)} segments, the limit is {settings.max_segments}",
                           "segments")
        if ev.chunk is None:
            item = engine.whole(ev, record.source)
        else:
            step = add_chunk(ev, record.key, record.source, read_assembly, partitions=partitions,
                             max_bytes=ASSEMBLY_FACTOR * settings.max_payload_bytes, now=now)
            if step.rejected is not None:
                return Outcome.reject(step.rejected, step.writes)
            if step.complete is None:
                return Outcome(writes=step.writes)
            complete = step.complete
            item = engine.assemble(complete.values, record.source)
        if item.content is not None:  # raw image or video bytes: decoded here, in the pool (not stored)
            out = raw_media.outcome(state, item, read_cache, now)
        else:
            packed = engine.pack(state, item)  # a bad item is dead-lettered and not stored
            if settings.store_media:
                stored = mediastore.store_writes(item, partitions=partitions, now=now)
            job = engine.prepare(state, item, packed)
            computed = engine.classify(job, {k: read_cache(k) for k in job.cache_keys}, now)
            out = Outcome(results=list(computed.results), encoded=computed.encoded, encoded_hits=[],
                          writes=[TableWrite(CACHE, k, v) for k, v in computed.cache_writes.items()])
    except Rejected as r:
        # media of an index published on the training topic (``index:<id>``) is classified on request:
        # stored, it needs no standing classifier (the store write is its durable output)
        on_request = r.reason == "no_media_classifier" and stored and item.index_id in state.snapshot().indexes
        out = Outcome() if on_request else Outcome.reject(r)
    except Exception as e:  # noqa: BLE001 - errors are data: a bad record must never stop the agent
        out = Outcome.reject(internal_error(e))
    out.writes[:0] = stored  # stored whether or not a standing classifier applies: it may be asked later
    if complete is not None:  # after the output: a crash before this re-assembles on redelivery
        out.writes.extend(complete.close())
    return out
