"""Objects topic in: take a batch, classify it in the pool, emit one output per record."""

from __future__ import annotations

from app.classify.objects import objects_step
from app.classify.outcome import Record
from app.service.metrics import BATCH_SECONDS, INPUTS
from app.service.runtime import Runtime


def register(rt: Runtime) -> None:
    @rt.agent("objects", "objects")
    async def objects(stream):
        await rt.replica.caught_up.wait()  # never classify with a half-loaded model
        async for batch in stream.take_events(rt.settings.batch_size, rt.settings.batch_within):
            records = [Record.of(e.message) for e in batch]
            INPUTS.labels("objects").inc(len(records))
            with BATCH_SECONDS.labels("objects").time():
                outcomes = await rt.run_split(objects_step, records)
            await rt.sink.emit(zip(records, outcomes))
