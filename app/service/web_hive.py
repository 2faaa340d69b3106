"""Hive's task API over the media pipeline: ``POST /api/v2/task/sync`` (the task envelope with per-frame
output at once), ``POST /api/v2/task/async`` (the task id at once; the result then goes to the results
topic and to ``GET /api/v2/task/{id}``). Keys as ``Authorization: Token <key>`` (``httpguard.py``).

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
from collections import OrderedDict
from typing import Any

from faust.web import Request, Response, View

from app.classify.hive import HiveError, pending, run_task
from app.classify.hive import parse_task
from app.classify.media import _iso as iso_ms
from app.classify.outcome import Outcome, Record
from app.schemas.deadletter import Source
from app.service.httpguard import json_body
from app.service.mediaapi import MediaApi, api_error
from app.service.runtime import Runtime
from app.service.tables import MEDIA_CACHE

log = logging.getLogger(__name__)
MAX_TASKS = 10_000


def register(rt: Runtime, api: MediaApi) -> None:
    read_cache = rt.tables.reader(MEDIA_CACHE)
    # Each request is its own "record": a distinct origin, so the cache reports a repeat as from_cache
    # (app.classify.media.classify: a hit computed by another record is from_cache).
    seq = itertools.count(time.time_ns())
    tasks: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()  # id -> (expires, envelope)
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

    def remember(task_id: str, envelope: dict[str, Any]) -> None:
        now = time.time()
        tasks[task_id] = (now + rt.settings.classify_page_ttl, envelope)
        while tasks and (len(tasks) > MAX_TASKS or next(iter(tasks.values()))[0] <= now):
            tasks.popitem(last=False)

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
            task_id = str(uuid.uuid4())
            created = iso_ms(int(time.time() * 1000))
            body = json_body(request)  # type: ignore[arg-type]
            try:
                parse_task(body)  # a bad request is refused now, not later
            except HiveError as e:
                return api_error(self, "hive", e.status, e.message)
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
            found = tasks.get(task_id)
            if found is None or found[0] <= time.time():
                return api_error(self, "hive", 404, f"task {task_id} does not exist (or has expired)")
            return self.json(found[1])

        async def post(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)
