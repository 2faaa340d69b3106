"""Jobs: the worker's own ``/v1/classifications`` (list, start), called with the console user's key,
its Weaviate-shaped errors turned into the console's ``{"error", "message"}``."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from app.console.forms import FormError, job_form
from app.service.console_views.base import Route, Views, error, json_body, json_response
from app.service.httpguard import CONSOLE_COOKIE


class Jobs(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/jobs", self.jobs), ("POST", "/console/api/jobs", self.jobs)]

    async def jobs(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body: Any = job_form(await json_body(request))
            except FormError as e:
                return error(request, e.status, e.message)
        else:
            body = None
        key = request.cookies.get(CONSOLE_COOKIE) or ""
        s = self.rt.settings
        url = f"http://127.0.0.1:{s.web_port}/v1/classifications"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.request(request.method, url, json=body,
                                        headers={"Authorization": f"Bearer {key}"} if key else {}) as r:
                    data = await r.read()
                    status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            return error(request, 502, f"the jobs API did not answer: {e!r}")
        if status == 404 or status == 405:
            return error(request, 404, "this worker has no jobs API (/v1/classifications) yet")
        try:
            parsed = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            return error(request, 502, "the jobs API answered something that is not JSON")
        if status >= 400:
            errs = parsed.get("error") if isinstance(parsed, dict) else None
            msg = errs[0].get("message") if isinstance(errs, list) and errs and isinstance(errs[0], dict) else str(parsed)
            return error(request, status, str(msg))
        return json_response(parsed, status)
