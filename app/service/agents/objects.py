"""Objects topic in: a batch of records classified in the pool, one output per record."""

from __future__ import annotations

from app.classify.objects import objects_step
from app.classify.outcome import Record
from app.service.metrics import BATCH_SECONDS, INPUTS
from app.service.runtime import Runtime


def register(rt: Runtime) -> None:
    @rt.hot("objects", "objects", ready=rt.replica.caught_up.wait)  # never classify with a half-loaded model
    async def objects(records: list[Record]) -> None:
        INPUTS.labels("objects").inc(len(records))
        with BATCH_SECONDS.labels("objects").time():
            outcomes = await rt.run_split(objects_step, records)
        await rt.sink.emit(zip(records, outcomes))
