"""What every console view shares: the worker's runtime and console feed, the JSON and error
answers (the HTTP guard's ``{"error", "message"}`` shape, which the page shows), the body parser
and the reviewer's cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from app.console.forms import FormError
from app.service.console_feed import ConsoleFeed
from app.service.httpguard import error_response
from app.service.runtime import Runtime

REVIEWER_COOKIE = "labelstream_console_reviewer"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]  # (method, path, handler)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def error(request: web.Request, status: int, message: str) -> web.Response:
    return error_response(request.path, status, message)


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise FormError(400, "send a JSON body") from None


def reviewer(request: web.Request) -> str:
    """Who signs a verdict: the name given at the login."""
    return request.cookies.get(REVIEWER_COOKIE) or "console"


class Views:
    """A family of the console's views over one runtime and feed; ``closing``: the web server is
    stopping (live streams end). ``routes()``: what the family serves."""

    def __init__(self, rt: Runtime, feed: ConsoleFeed, closing: Callable[[], bool] = lambda: False):
        self.rt, self.feed, self.closing = rt, feed, closing

    def routes(self) -> list[Route]:
        raise NotImplementedError
