"""The one way out: results, moderation hits, dead letters and table writes of each outcome.

The sink is the only place that produces to Kafka and writes tables. Nothing it sends can
exceed the producer's message limit: a dead letter carries a bounded prefix of an oversized
value (``app/classify/deadletter.py``), and an outcome whose result would not fit becomes a
``result_too_large`` dead letter instead. Sends go through the producer's buffer (Faust
batches them); Faust flushes the producer before it commits offsets, so an input's offset
is committed only after its outputs are out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import faust

from app.classify.codec import Rejected, dumps
from app.classify.deadletter import dead_letter
from app.classify.outcome import Outcome, Record, TableWrite
from app.schemas.results import Result
from app.service.metrics import DEAD_LETTERS, HITS, RESULTS
from app.service.tables import Tables

HEADROOM = 64 * 1024  # headers and record overhead


def _headers() -> list[tuple[str, bytes]]:
    # Wall-clock time stays out of the value so a redelivery reproduces the same record.
    return [("classified_at", str(int(time.time() * 1000)).encode())]


class Sink:
    def __init__(self, topics: Mapping[str, faust.TopicT], tables: Tables, max_message_bytes: int):
        self.results = topics["results"]
        self.moderation = topics["moderation"]
        self.deadletter = topics["deadletter"]
        self.tables = tables
        self.limit = max_message_bytes - HEADROOM

    async def emit(self, batch: Iterable[tuple[Record, Outcome]]) -> None:
        """Send every outcome's outputs, then apply its table writes, in input order."""
        for record, out in batch:
            await self.one(record, out)

    async def one(self, record: Record, out: Outcome) -> None:
        encoded: list[tuple[Result, bytes]] = []
        if out.rejected is None:
            encoded = [(r, dumps(r)) for r in out.results]
            too_big = next(((r, len(b)) for r, b in encoded if len(b) > self.limit), None)
            if too_big is not None:
                r, size = too_big
                out.fail(Rejected("result_too_large", f"the result of classifier {r.classifier!r} is {size} bytes, "
                                  f"the limit is {self.limit}"))
        if out.rejected is not None:
            DEAD_LETTERS.labels(out.rejected.reason).inc()
            await self.deadletter.send(key=record.key, value=dead_letter(record, out.rejected, self.limit),
                                       headers=_headers())
        else:
            headers = _headers()
            for r, body in encoded:
                RESULTS.labels(r.method).inc()
                await self.results.send(key=r.item_id.encode(), value=body, headers=headers)
            for hit in out.hits:
                HITS.labels(hit.action).inc()
                await self.moderation.send(key=hit.item_id.encode(), value=dumps(hit), headers=headers)
        self.write(out.writes)

    def write(self, writes: Iterable[TableWrite]) -> None:
        """Table writes without an output (the sweeper's deletions)."""
        for w in writes:
            self.tables.apply(w)
