"""Media topic in: decode, assemble chunks, classify in a worker thread, emit.

**One output per input.** A whole media event (an image, a short video) yields its results,
one per applicable media classifier, or one dead letter. A chunked video is one media item
sent as several records, and its output is per item: the chunk that completes the item
yields the results (or the dead letter, e.g. an unknown taxonomy), while a chunk that is
stored and waits yields nothing on the results or dead-letter topics: it is acknowledged by
its write to the changelog-backed ``media-assembly`` table, which is its durable output. A
chunk that is bad on its own (schema, ``too_many_segments``, ``media_key_mismatch``) is
dead-lettered by itself and its item waits for a good copy (``max_segments`` bounds one record;
an assembled item is bounded by ``media_tables.MAX_ASSEMBLY_BYTES``); a chunk that makes the item
impossible (``chunks_inconsistent``, ``media_too_large``) dead-letters and discards it. A
redelivered chunk of an item already classified yields nothing (``app/media_tables.py``).

Results identical in content (same segments, taxonomy version and classifier settings) come
from the ``media-cache`` table, marked ``from_cache`` (``app/engine/media.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app import media_tables
from app.agents import emit
from app.codec import Rejected, decode, source_of
from app.engine import media as engine
from app.live import replica, state
from app.main import app, settings, topics
from app.metrics import BATCH_SECONDS, INPUTS
from app.schemas.media import MediaEvent

log = logging.getLogger(__name__)

# Decoding, assembly and scoring of long videos take tens of ms: keep them off the event loop.
pool = ThreadPoolExecutor(settings.classify_threads, thread_name_prefix="media")


async def _run(fn, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))


@app.agent(topics["media"])
async def media(stream):
    await replica.caught_up.wait()  # never classify with a half-loaded model
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        INPUTS.labels("media").inc(len(batch))
        with BATCH_SECONDS.labels("media").time():
            for event in batch:
                await _one(event.message)


async def _one(message) -> None:
    out, complete = await _classify(message)
    if isinstance(out, Rejected):
        await emit.rejected(message, out)
    elif out is not None:
        for r in out.results:
            await emit.result(r)
        for key, body in out.cache_writes.items():
            media_tables.cache[key] = body
    if complete is not None:  # only now: a crash before this point re-assembles on redelivery
        media_tables.close(complete)


async def _classify(message) -> tuple[engine.Outcome | Rejected | None, media_tables.Complete | None]:
    complete = None
    try:
        ev = await _run(decode, message.value, MediaEvent, settings.max_payload_bytes)
        if len(ev.segments) > settings.max_segments:
            raise Rejected("too_many_segments", f"{len(ev.segments)} segments, the limit is {settings.max_segments}",
                           "segments")
        if ev.chunk is None:
            item = await _run(engine.whole, ev, source_of(message))
        else:
            complete = await media_tables.add_chunk(ev, message, _run)
            if complete is None:
                return None, None
            item = await _run(engine.assemble, complete.values, source_of(message))
        job = await _run(engine.prepare, state, item)
        cached = {k: media_tables.cache.get(k) for k in job.cache_keys}
        return await _run(engine.classify, job, cached), complete
    except Rejected as r:
        return r, complete
    except Exception as e:  # errors are data: a bad record must never stop the agent
        log.exception("media record %s/%s@%s failed", message.topic, message.partition, message.offset)
        return Rejected("internal_error", f"{type(e).__name__}: {e}"), complete
