"""The console's cookie under the HTTP guard: accepted under /console only; the login form and
static assets open; pages without a key go to the login, the console's API answers 401."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.service.httpguard import AUTHENTICATED, CONSOLE_COOKIE, web_options

KEY = "k" * 20


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"auth": request.get(AUTHENTICATED)})


@pytest.fixture
async def client():
    app = web.Application(**web_options(frozenset({KEY}), 1000))
    for path in ("/console", "/console/review", "/console/api/overview", "/console/login", "/console/static/x.js",
                 "/v1/classifications", "/metrics"):
        app.router.add_get(path, echo)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_pages_redirect_to_login_and_api_answers_401(client):
    r = await client.get("/console/review", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/console/login"
    r = await client.get("/console/api/overview")
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"


async def test_login_and_static_need_no_key(client):
    for path in ("/console/login", "/console/static/x.js"):
        r = await client.get(path)
        assert r.status == 200 and (await r.json())["auth"] is False


async def test_cookie_works_under_console_only(client):
    good, bad = {CONSOLE_COOKIE: KEY}, {CONSOLE_COOKIE: "x" * 20}
    r = await client.get("/console/api/overview", cookies=good)
    assert r.status == 200 and (await r.json())["auth"] is True
    assert (await client.get("/console/api/overview", cookies=bad)).status == 401
    assert (await client.get("/console", cookies=bad, allow_redirects=False)).status == 303
    # a browser adds cookies by itself: the public APIs and metrics never take it as a credential
    for path in ("/v1/classifications", "/metrics"):
        assert (await client.get(path, cookies=good)).status == 401
    r = await client.get("/console/api/overview", headers={"x-api-key": KEY})
    assert r.status == 200
