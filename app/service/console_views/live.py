"""Live results: the recent window as JSON (filtered, newest first), one full result, and the
server-sent event stream of new results the live page appends."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from app.console.forms import FormError
from app.console.window import FILTERS, matches
from app.service.console_views.base import Route, Views, error, json_response


def filters(request: web.Request) -> dict[str, str]:
    """The live table's filters from the query string (a :class:`FormError` for bad ones)."""
    f = {k: request.query.get(k, "") for k in FILTERS}
    if any(len(v) > 256 for v in f.values()):
        raise FormError(400, "a filter is longer than 256 characters")
    if f["action"] and f["action"] not in ("allow", "review", "block"):
        raise FormError(400, "action must be allow, review or block")
    return f


class Live(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/results", self.results), ("GET", "/console/api/result", self.result),
                ("GET", "/console/api/stream", self.stream)]

    async def results(self, request: web.Request) -> web.Response:
        try:
            f = filters(request)
            limit = int(request.query.get("limit", "200"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except FormError as e:  # a ValueError too: first
            return error(request, e.status, e.message)
        except ValueError:
            return error(request, 400, "limit must be an integer from 1 to 1000")
        return json_response({"results": self.feed.window.results(f, limit), "window": len(self.feed.window)})

    async def result(self, request: web.Request) -> web.Response:
        rid = request.query.get("id", "")
        if not rid:
            return error(request, 400, "'id' (a result_id) is required")
        r = self.feed.window.result(rid)
        if r is None:
            return error(request, 404, f"result {rid!r} is not in the console's recent window")
        return json_response(r)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        try:
            f = filters(request)
        except FormError as e:
            return error(request, e.status, e.message)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.feed.subscribers.add(q)
        try:
            await resp.write(b": connected\n\n")
            idle = 0
            # aiohttp does not cancel a handler whose client left, and waits for handlers when the
            # worker stops: look at the connection (and the stop) every second.
            while not self.closing() and request.transport is not None and not request.transport.is_closing():
                try:
                    row = await asyncio.wait_for(q.get(), 1.0)
                except asyncio.TimeoutError:
                    idle += 1
                    if idle % 15 == 0:
                        await resp.write(b": keep-alive\n\n")
                    continue
                if matches(row, f):
                    await resp.write(b"data: " + orjson.dumps(row) + b"\n\n")
        except ConnectionResetError:
            pass
        finally:
            self.feed.subscribers.discard(q)
        return resp
