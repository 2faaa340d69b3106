"""The ways out: results, moderation hits and dead letters (one place that sends them)."""

from __future__ import annotations

import time

from app.codec import Rejected, dead_letter, dumps
from app.main import topics
from app.metrics import DEAD_LETTERS, HITS, RESULTS
from app.schemas.results import ModerationHit, Result


def _headers() -> list[tuple[str, bytes]]:
    # Wall-clock time stays out of the value so a redelivery reproduces the same record.
    return [("classified_at", str(int(time.time() * 1000)).encode())]


async def result(r: Result) -> None:
    RESULTS.labels(r.method).inc()
    await topics["results"].send(key=r.item_id.encode(), value=dumps(r), headers=_headers())


async def moderation(hit: ModerationHit) -> None:
    HITS.labels(hit.action).inc()
    await topics["moderation"].send(key=hit.item_id.encode(), value=dumps(hit), headers=_headers())


async def rejected(message, r: Rejected) -> None:
    DEAD_LETTERS.labels(r.reason).inc()
    await topics["deadletter"].send(key=message.key, value=dumps(dead_letter(message, r)), headers=_headers())
