"""Objects topic in: a batch of records classified in the pool, one output per record."""

from __future__ import annotations

import logging

from app.classify.objects import objects_step
from app.classify.outcome import Record
from app.service.metrics import BATCH_SECONDS, INPUTS
from app.service.pacing import Pacer, paced
from app.service.runtime import Runtime


log = logging.getLogger(__name__)
SLOW_BATCH = 1.0  # seconds


def register(rt: Runtime) -> None:
    pacer = Pacer(rt.settings.emit_every)  # chunks of ~emit_every seconds: results leave while a batch is worked

    @rt.hot("objects", "objects", ready=rt.replica.caught_up.wait)  # never classify with a half-loaded model
    async def objects(records: list[Record]) -> None:
        INPUTS.labels("objects").inc(len(records))
        await paced(pacer, records, work, rt.sink.outcomes, done)

    async def work(chunk):
        return await rt.run_split(objects_step, chunk, pacer)

    def done(n: int, step: float, sink: float) -> None:
        BATCH_SECONDS.labels("objects").observe(step)
        if step + sink > SLOW_BATCH:  # where a gap in the results comes from
            log.warning("slow objects chunk: %d records, step %.2f s, sink %.2f s", n, step, sink)
