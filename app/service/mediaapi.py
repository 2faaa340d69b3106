"""What the media request views share (``web_twelvelabs.py``, ``web_hive.py``): the media store
over every worker, the rate limit, the prompt embedder, and the pages and tasks any worker finds.

**Every worker's media.** The ``media-store`` table is partitioned like the media topic: a
worker holds the items of its partitions. A classify request (``POST /v1.2/classify`` by video
ids, ``/bulk`` by index) is answered by the worker that takes it from the *shares* of all
partitions: its own (:meth:`MediaApi.share`) and, over HTTP (:data:`INTERNAL`), each other
owner's, where the items are classified where they are stored (``app/classify/fanout.py`` merges
them into exactly the single-worker answer). A partition whose owner does not answer for it (a
rebalance moved it, the worker died) is asked again of its new owner until
:data:`MOVING_WAIT` has passed, then the request is a 503.

**Pages and tasks** are kept in the ``request-results`` table under ids whose home partition this
worker owns (``app/classify/requeststore.py``); a read reaching another worker is forwarded to
the owner of the id's home partition (``peers.py``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
import orjson
from faust.web import Request, Response, View

from app.classify import fanout, mediastore, requeststore
from app.classify.media import Media
from app.classify.prompts import Embedder
from app.classify.ratelimit import RateLimiter
from app.classify.twelvelabs import ApiError, ClassifyRequest, classify_each
from app.service.httpguard import error_body, presented_key
from app.service.peers import Peers
from app.service.runtime import Runtime
from app.service.tables import MEDIA_STORE, REQUEST_RESULTS

log = logging.getLogger(__name__)
INTERNAL = "/v1.2/internal/classify"  # a fan-out leg: one worker's share of a classify request
MOVING_WAIT = 30.0  # s a request waits for partitions being reassigned before it is a 503
RETRY_EVERY = 0.2  # s between two rounds of asking for the partitions not answered yet
Kind = Literal["videos", "index"]


class Unavailable(ApiError):
    """A 503 (or a peer's 429): try again later, after ``retry_after`` seconds."""

    def __init__(self, status: int, code: str, message: str, retry_after: int = 1):
        super().__init__(status, code, message)
        self.retry_after = retry_after


class MediaApi:
    def __init__(self, rt: Runtime):
        self.rt = rt
        s = rt.settings
        self.peers = Peers(rt)
        self.table = rt.tables.by_name[MEDIA_STORE]
        self.partitions: int = self.table.partitions or 1
        self.result_partitions: int = rt.tables.by_name[REQUEST_RESULTS].partitions or 1
        self.read_results = rt.tables.reader(REQUEST_RESULTS)
        self.limiter = RateLimiter(s.classify_rate_limit)
        self.embedder = Embedder(max_chars=s.max_text_chars)

    def rate_limited(self, request: Any) -> int | None:
        """Seconds to wait when the request's key is over its limit, else None (the request counts)."""
        key = presented_key(request.headers) or "-"
        now = time.monotonic()
        return None if self.limiter.allow(key, now) else self.limiter.retry_after(key, now)

    # -- the media store, over every worker --------------------------------------------------------

    async def gather(self, kind: Kind, req: ClassifyRequest, request: Request) -> fanout.Gathered:
        """The shares of every media-store partition (this worker's and the other owners')."""
        g, needed = fanout.Gathered(), set(range(self.partitions))
        deadline = time.monotonic() + MOVING_WAIT
        raw: bytes = await request.read()  # the guard has cached it
        creds = self.peers.credentials(request)
        while True:
            calls = [self.share(kind, req, parts) if self.peers.is_here(url) else self._ask(url, kind, parts, raw, creds)
                     for url, parts in fanout.plan(needed, self.peers.owners(MEDIA_STORE)).items()]
            for s in await asyncio.gather(*calls):
                g.add(s)
            needed -= g.answered
            if not needed:
                return g
            if time.monotonic() >= deadline:
                raise Unavailable(503, "service_unavailable", f"Partitions {sorted(needed)} of the media store are "
                                  "moving between workers: try again in a moment.")
            await asyncio.sleep(RETRY_EVERY)

    async def share(self, kind: Kind, req: ClassifyRequest, parts: list[int]) -> dict[str, Any]:
        """This worker's answer for the items it holds in ``parts`` (those it owns of them)."""
        mine = sorted(set(parts) & self.peers.active(MEDIA_STORE))
        if not mine:
            return fanout.share([], [])
        found = await (self._videos(req, mine) if kind == "videos" else self._index(req, mine))
        if not set(mine) <= self.peers.active(MEDIA_STORE):  # moved while read: its new owner answers
            return fanout.share([], [])
        count = len(found) if kind == "index" else 0
        if count > self.rt.settings.classify_max_videos:  # the whole request is over the limit: score nothing
            return fanout.share(mine, [], count, refused=True)
        answers = await self.rt.run(classify_each, self.rt.state, self.embedder, req, [m for m, _ in found])
        return fanout.share(mine, [fanout.item(m.media_id, m.index_id, p, a) for (m, p), a in zip(found, answers)],
                            count)

    async def _videos(self, req: ClassifyRequest, mine: list[int]) -> list[tuple[Media, int]]:
        """Each requested video held in ``mine``, from its lowest partition there."""
        assert req.video_ids is not None
        data, partitions = self.table.data, self.partitions

        def select() -> list[tuple[Media, int]]:
            out = []
            for v in dict.fromkeys(req.video_ids or []):
                for p in mine:
                    value = data.get(mediastore.store_key(v, p, partitions))
                    if value is not None:
                        out.append((mediastore.decode(value), p))
                        break
            return out

        return await self.rt.run(select)

    async def _index(self, req: ClassifyRequest, mine: list[int]) -> list[tuple[Media, int]]:
        """Every item of the request's index held in ``mine``."""
        data, partitions, wanted = self.table.data, self.partitions, set(mine)
        keys: list[bytes] = []
        for _ in range(3):  # the memory store is a dict the event loop writes to: retry a changed-size error
            try:
                keys = await asyncio.to_thread(lambda: list(data.keys()))
                break
            except RuntimeError:
                continue

        def select() -> list[tuple[Media, int]]:
            out = []
            for key in keys:
                p = mediastore.partition_of(key, partitions)
                if p not in wanted:
                    continue
                value = data.get(key)
                if value is not None and mediastore.index_of(value) == req.index_id:
                    out.append((mediastore.decode(value), p))
            return out

        return await self.rt.run(select)

    async def _ask(self, url: str, kind: Kind, parts: list[int], raw: bytes,
                   creds: Mapping[str, str]) -> dict[str, Any]:
        """Another worker's share; an empty one when it cannot answer now (asked again next round)."""
        try:
            status, headers, body = await self.peers.post(
                url, INTERNAL, {"kind": kind, "partitions": ",".join(map(str, parts))}, raw, creds,
                self.rt.settings.classify_peer_timeout)
            if status == 200:
                doc: dict[str, Any] = orjson.loads(body)
                return doc
            err = orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as e:
            log.warning("classify: the worker at %s did not answer for partitions %s: %r", url, parts, e)
            return fanout.share([], [])
        if status == 429:
            raise Unavailable(429, "too_many_requests", "You have exceeded the rate limit. Please try again later.",
                              int(headers.get("Retry-After", 1)))
        if status in (400, 404):  # the same request and model: the answer this worker would give
            raise ApiError(status, err.get("code", "parameter_invalid"), err.get("message", ""))
        log.warning("classify: the worker at %s answered %d for partitions %s: %s", url, status, parts, body[:200])
        return fanout.share([], [])

    # -- pages and tasks, in their id's home partition ---------------------------------------------

    def new_id(self, make: Any) -> str:
        """An id whose home partition this worker owns (``Unavailable`` when it owns none now)."""
        try:
            return requeststore.new_id(make, self.peers.active(REQUEST_RESULTS), self.result_partitions)
        except ValueError:
            raise Unavailable(503, "service_unavailable", "This worker holds no results partition right now: "
                              "try again in a moment.") from None

    async def keep_pages(self, videos: list[dict[str, Any]], limit: int) -> dict[str, Any]:
        """Every page kept (``request-results``), the first one answered."""
        prefix = self.new_id(lambda: secrets.token_urlsafe(12).replace("-", "_"))
        first, writes = await self.rt.run(requeststore.page_writes, videos, limit, prefix, now=time.time(),
                                          ttl=self.rt.settings.classify_page_ttl, partitions=self.result_partitions)
        self.rt.sink.write(writes)
        return first

    def keep_task(self, task_id: str, envelope: dict[str, Any]) -> None:
        self.rt.sink.write([requeststore.task_write(task_id, envelope, now=time.time(),
                                                    ttl=self.rt.settings.classify_page_ttl,
                                                    partitions=self.result_partitions)])

    async def at_home(self, view: View, request: Request, home: int) -> Response | None:
        """None when this worker answers for the ``home`` partition; else the answer of its owner
        (forwarded once). While the partition moves (no owner, or its owner unreachable) this waits
        up to :data:`MOVING_WAIT`, then answers 503."""
        deadline = time.monotonic() + MOVING_WAIT
        while True:
            if home in self.peers.active(REQUEST_RESULTS):
                return None
            owner = self.peers.owners(REQUEST_RESULTS).get(home)
            if owner is not None and not self.peers.is_here(owner):
                if self.peers.routed(request):
                    break  # one hop: the layout changed under the forward, the caller tries again
                forwarded = await self.peers.forward(view, request, owner, self.rt.settings.classify_peer_timeout)
                if forwarded is not None:
                    return forwarded
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(RETRY_EVERY)
        api = "hive" if request.url.path.startswith("/api/") else "twelvelabs"
        return api_error(view, api, 503, "The worker holding this answer is not reachable right now: try again "
                         "in a moment.", "service_unavailable", {"Retry-After": "1"})

    async def elsewhere(self, view: View, request: Request) -> Response | None:
        """A request that makes an id, on a worker owning no results partition: sent to one that does."""
        if self.peers.active(REQUEST_RESULTS) or self.peers.routed(request):
            return None
        owner = next((u for u in self.peers.owners(REQUEST_RESULTS).values() if not self.peers.is_here(u)), None)
        if owner is None:
            return None
        return await self.peers.forward(view, request, owner, self.rt.settings.classify_peer_timeout)


def api_error(view: View, api: str, status: int, message: str, code: str | None = None,
              headers: Mapping[str, str] | None = None) -> Response:
    """An error in the API's shape (``httpguard.error_body``), with a specific Twelve Labs ``code``."""
    body = error_body(api, status, message)  # type: ignore[arg-type]
    if code is not None and api == "twelvelabs":
        body["code"] = code
    return view.json(body, status=status, headers=dict(headers) if headers else None)
