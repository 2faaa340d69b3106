"""Hive's task API over the media pipeline: ``POST /api/v2/task/sync`` (the task envelope with per-frame
output at once), ``POST /api/v2/task/async`` (the task id at once; the result then goes to the results
topic and to ``GET /api/v2/task/{id}``). Keys as ``Authorization: Token <key>`` (``httpguard.py``).

An async task's envelope is kept in the ``request-results`` table under the task id, a UUID whose
home partition the worker that made it owns (``app/classify/requeststore.py``): ``GET`` on any
worker is answered by that partition's owner (``mediaapi.py``, ``peers.py``), also after a restart.

The classification is the media pipeline's own (``app/classify/hive.py`` calls ``app.classify.media``),
with its result cache: a repeated item reports ``from_cache: true``. Cache entries are written through
the sink like every table write; async results leave through the sink like every result.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from typing import Any

from faust.web import Request, Response, View

from app.classify.hive import HiveError, pending, run_task
from app.classify.hive import parse_task
from app.classify.media import _iso as iso_ms
from app.classify.outcome import Outcome, Record
from app.classify.requeststore import home, read_task, task_key
from app.classify.twelvelabs import ApiError
from app.schemas.deadletter import Source
from app.service.httpguard import json_body
from app.service.mediaapi import MediaApi, api_error
from app.service.runtime import Runtime
from app.service.tables import MEDIA_CACHE

log = logging.getLogger(__name__)


def register(rt: Runtime, api: MediaApi) -> None:
    read_cache = rt.tables.reader(MEDIA_CACHE)
    # Each request is its own "record": a distinct origin, so the cache reports a repeat as from_cache
    # (app.classify.media.classify: a hit computed by another record is from_cache).
    seq = itertools.count(time.time_ns())
    background: set[asyncio.Task] = set()

    def limited(view: View, request: Request) -> Response | None:
        wait = api.rate_limited(request)
        if wait is None:
            return None
        return api_error(view, "hive", 429, "rate limit exceeded: try again later", headers={"Retry-After": str(wait)})

    async def classify(request: Request, path: str) -> tuple[Any, Record]:
        ev = parse_task(json_body(request))  # type: ignore[arg-type]  # Faust's Request is aiohttp's
        now = int(time.time() * 1000)
        source = Source(topic=f"http:{path}", partition=0, offset=next(seq), timestamp=now)
        task = await rt.run(run_task, rt.state, ev, read_cache, source=source, now=now)
        return task, Record(ev.media_id.encode(), None, source)

    remember = api.keep_task

    def not_allowed(view: View, request: Request) -> Response:
        return api_error(view, "hive", 405, f"method {request.method} is not allowed on {request.url.path}")

    @rt.app.page("/api/v2/task/sync")
    class Sync(View):
        async def post(self, request: Request, **kw: Any) -> Response:
            if (refused := limited(self, request)) is not None:
                return refused
            try:
                task, _ = await classify(request, "/api/v2/task/sync")
            except HiveError as e:
                return api_error(self, "hive", e.status, e.message)
            rt.sink.write(task.writes)
            return self.json(task.envelope)

        async def get(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)

    @rt.app.page("/api/v2/task/async")
    class Async(View):
        async def post(self, request: Request, **kw: Any) -> Response:
            if (refused := limited(self, request)) is not None:
                return refused
            created = iso_ms(int(time.time() * 1000))
            body = json_body(request)  # type: ignore[arg-type]
            try:
                parse_task(body)  # a bad request is refused now, not later
            except HiveError as e:
                return api_error(self, "hive", e.status, e.message)
            if (answer := await api.elsewhere(self, request)) is not None:
                return answer  # this worker could not keep the task: one that can takes it
            try:
                task_id = api.new_id(lambda: str(uuid.uuid4()))
            except ApiError as e:
                return api_error(self, "hive", e.status, e.message, headers={"Retry-After": "1"})
            remember(task_id, dict(pending(task_id, created)))

            async def work() -> None:
                try:
                    task, record = await classify(request, "/api/v2/task/async")
                except HiveError as e:
                    remember(task_id, {**pending(task_id, created), "code": e.status,
                                       "status": {"status": {"code": e.status, "message": e.message},
                                                  "response": None}})
                    return
                remember(task_id, {**task.envelope, "id": task_id})
                await rt.sink.one(record, Outcome(results=[task.result], writes=task.writes))

            t = asyncio.ensure_future(work())
            background.add(t)
            t.add_done_callback(background.discard)
            return self.json(dict(pending(task_id, created)))

        async def get(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)

    @rt.app.page("/api/v2/task/{task_id}")
    class Status(View):
        async def get(self, request: Request, task_id: str = "", **kw: Any) -> Response:
            if (refused := limited(self, request)) is not None:
                return refused
            if (answer := await api.at_home(self, request, home(task_id, api.result_partitions))) is not None:
                return answer
            found = read_task(api.read_results(task_key(task_id, api.result_partitions)), now=time.time())
            if found is None:
                return api_error(self, "hive", 404, f"task {task_id} does not exist (or has expired)")
            return self.json(found)

        async def post(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)
