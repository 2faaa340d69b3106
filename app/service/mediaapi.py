"""What the media request views share: the media store of this worker, the rate limit, the
prompt embedder and the classify page tokens (``web_twelvelabs.py``, ``web_hive.py``).

**Which media a worker sees.** The ``media-store`` table is partitioned like the media topic: a
worker holds the items of its partitions. ``POST /v1.2/classify`` finds a video in any
partition this worker holds; ``/bulk`` classifies the index's items this worker holds. With one
worker that is every item; with several, the fan-out of a request over the partitions' owners
is the jobs branch's (``LIMITATION`` in the README's media section).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from faust.web import Response, View

from app.classify import mediastore
from app.classify.media import Media
from app.classify.prompts import Embedder
from app.classify.ratelimit import RateLimiter
from app.classify.twelvelabs import Pages
from app.service.httpguard import error_body, presented_key
from app.service.runtime import Runtime
from app.service.tables import MEDIA_STORE

log = logging.getLogger(__name__)


class MediaApi:
    def __init__(self, rt: Runtime):
        self.rt = rt
        s = rt.settings
        self.table = rt.tables.by_name[MEDIA_STORE]
        self.partitions: int = self.table.partitions or 1
        self.limiter = RateLimiter(s.classify_rate_limit)
        self.embedder = Embedder(max_chars=s.max_text_chars)
        self.pages = Pages(ttl=s.classify_page_ttl)

    def rate_limited(self, request: Any) -> int | None:
        """Seconds to wait when the request's key is over its limit, else None (the request counts)."""
        key = presented_key(request.headers) or "-"
        now = time.monotonic()
        return None if self.limiter.allow(key, now) else self.limiter.retry_after(key, now)

    def stored(self, media_id: str) -> bytes | None:
        """A stored item by media_id, from whichever partition of this worker holds it."""
        data = self.table.data
        for key in mediastore.candidate_keys(media_id, self.partitions):
            value = data.get(key)
            if value is not None:
                return value
        return None

    def _active(self) -> set[int]:
        topic = self.table.changelog_topic.get_topic_name()
        try:
            return {tp.partition for tp in self.rt.app.assignor.assigned_actives() if tp.topic == topic}
        except Exception:  # noqa: BLE001 - before the first assignment: nothing is held yet
            return set()

    async def index_items(self, index_id: str) -> list[Media]:
        """Every stored item of ``index_id`` in this worker's active partitions, by media_id (in the pool)."""
        data, active, partitions = self.table.data, self._active(), self.partitions
        keys: list[bytes] = []
        for _ in range(3):  # the memory store is a dict the event loop writes to: retry a changed-size error
            try:
                keys = await asyncio.to_thread(lambda: list(data.keys()))
                break
            except RuntimeError:
                continue

        def select() -> list[Media]:
            items = []
            for key in keys:
                if mediastore.partition_of(key, partitions) not in active:
                    continue
                value = data.get(key)
                if value is not None and mediastore.index_of(value) == index_id:
                    items.append(mediastore.decode(value))
            return sorted(items, key=lambda m: m.media_id)

        return await self.rt.run(select)


def api_error(view: View, api: str, status: int, message: str, code: str | None = None,
              headers: Mapping[str, str] | None = None) -> Response:
    """An error in the API's shape (``httpguard.error_body``), with a specific Twelve Labs ``code``."""
    body = error_body(api, status, message)  # type: ignore[arg-type]
    if code is not None and api == "twelvelabs":
        body["code"] = code
    return view.json(body, status=status, headers=dict(headers) if headers else None)
