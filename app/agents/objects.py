"""Objects topic in: decode, classify the batch in a worker thread, emit one output each."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import orjson

from app import tables
from app.agents import emit
from app.codec import Rejected, decode, source_of
from app.engine.objects import Item, classify_objects
from app.live import replica, state
from app.main import app, settings, topics
from app.metrics import BATCH_SECONDS, INPUTS
from app.schemas.objects import ObjectEvent
from app.schemas.vectors import encode_vector

# Annoy and numpy release the GIL: classification runs off the event loop.
pool = ThreadPoolExecutor(settings.classify_threads, thread_name_prefix="classify")
MIN_SHARE = 64  # below this a thread hop costs more than it saves


@app.agent(topics["objects"])
async def objects(stream):
    loop = asyncio.get_running_loop()
    # Never classify with a half-loaded model: wait until the training replica has caught up.
    await replica.caught_up.wait()
    async for batch in stream.take_events(settings.batch_size, settings.batch_within):
        items, messages, rejected = [], [], []
        for event in batch:
            try:
                obj = decode(event.message.value, ObjectEvent, settings.max_payload_bytes)
            except Rejected as r:
                rejected.append((event.message, r))
                continue
            items.append(Item(obj, source_of(event.message)))
            messages.append(event.message)
        INPUTS.labels("objects").inc(len(batch))
        with BATCH_SECONDS.labels("objects").time():
            outcomes = await _classify(loop, items)
        for message, r in rejected:
            await emit.rejected(message, r)
        for item, message, out in zip(items, messages, outcomes):
            if out.rejected:
                await emit.rejected(message, out.rejected)
                continue
            for r in out.results:
                await emit.result(r)
            for hit in out.hits:
                await emit.moderation(hit)
            tables.stored_objects[item.event.id.encode()] = _stored(item, out.results)


async def _classify(loop, items: list[Item]) -> list:
    """Split a large batch over the pool so every core works (numpy and Annoy drop the GIL)."""
    n = min(settings.classify_threads, len(items) // MIN_SHARE) or 1
    size = -(-len(items) // n) if items else 0
    shares = [items[i:i + size] for i in range(0, len(items), size)] if items else []
    done = await asyncio.gather(*(loop.run_in_executor(pool, classify_objects, state, s) for s in shares))
    return [o for share in done for o in share]


def _stored(item: Item, results) -> bytes:
    obj = item.event.model_dump(mode="json", by_alias=True, exclude={"vector"})
    obj["vector"] = encode_vector(item.vector)
    return orjson.dumps({"object": obj, "results": {r.classifier: {"labels": r.labels, "confidence": r.confidence}
                                                    for r in results if r.classifier}})
