"""Media topic in: each record decoded, assembled and classified in the pool, then emitted.

Records go one at a time (a media record can be large, and a chunk's step must see the
table writes of the chunk before it); ``app/classify/media_step.py`` says what each yields.
"""

from __future__ import annotations

from app.classify.media_step import media_step
from app.classify.outcome import Record
from app.service.metrics import BATCH_SECONDS, INPUTS
from app.service.runtime import Runtime
from app.service.tables import MEDIA_ASSEMBLY, MEDIA_CACHE
from app.topics import CATALOG


def register(rt: Runtime) -> None:
    partitions = rt.settings.topic_partitions or CATALOG["media"].partitions
    read_assembly, read_cache = rt.tables.reader(MEDIA_ASSEMBLY), rt.tables.reader(MEDIA_CACHE)
    lock = rt.tables.locks[MEDIA_ASSEMBLY]

    @rt.hot("media", "media", ready=rt.replica.caught_up.wait)  # never classify with a half-loaded model
    async def media(records: list[Record]) -> None:
        INPUTS.labels("media").inc(len(records))
        with BATCH_SECONDS.labels("media").time():
            for record in records:
                async with lock:  # the sweeper drops no assembly between this read and write
                    out = await rt.run(media_step, rt.state, record, read_assembly, read_cache,
                                       partitions=partitions)
                    await rt.sink.one(record, out)
