"""The HTTP guard on a small aiohttp app: keys, probes, body limit, JSON, errors in each API's shape.

The same middleware runs on the real worker (tests/integration/test_http_guard.py); here every
branch is driven quickly, including a chunked body over the limit (no Content-Length).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.service.httpguard import AUTHENTICATED, json_body, web_options

KEY = "k" * 20
OTHER = "o" * 20
ROOT = Path(__file__).resolve().parents[2]


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"auth": request.get(AUTHENTICATED), "json": json_body(request),
                              "read": (await request.read()).decode()})


def make_app(keys: frozenset[str], limit: int = 100) -> web.Application:
    app = web.Application(**web_options(keys, limit))
    for path in ("/health/live", "/health/ready", "/v1/.well-known/live", "/v1/.well-known/ready", "/v1/meta",
                 "/v1.2/classify", "/api/v2/task/sync", "/metrics", "/router"):
        app.router.add_get(path, echo)
    for path in ("/v1/classifications", "/v1.2/classify", "/api/v2/task/sync", "/ours"):
        app.router.add_post(path, echo)
    return app


@pytest.fixture
async def keyed():
    async with TestClient(TestServer(make_app(frozenset({KEY, OTHER})))) as c:
        yield c


@pytest.fixture
async def open_():
    async with TestClient(TestServer(make_app(frozenset()))) as c:
        yield c


async def call(c: TestClient, method: str, path: str, **kw) -> tuple[int, dict]:
    r = await c.request(method, path, **kw)
    return r.status, json.loads(await r.read() or b"null")


@pytest.mark.parametrize("path", ["/health/live", "/v1/.well-known/live"])
async def test_liveness_needs_no_key(keyed, path):
    assert (await call(keyed, "GET", path))[0] == 200


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"}, {"Authorization": f"Token {OTHER}"},
                                     {"authorization": f"bearer {KEY}"}, {"x-api-key": KEY}])
async def test_each_header_form_is_accepted(keyed, headers):
    status, body = await call(keyed, "GET", "/v1/meta", headers=headers)
    assert status == 200 and body["auth"] is True


@pytest.mark.parametrize("path,missing,wrong", [
    ("/v1/meta", {"error": [{"message": "no API key: send Authorization: Bearer <key> or x-api-key"}]},
     {"error": [{"message": "invalid API key"}]}),
    ("/v1.2/classify", {"code": "api_key_invalid",
                        "message": "no API key: send Authorization: Bearer <key> or x-api-key"},
     {"code": "api_key_invalid", "message": "invalid API key"}),
    ("/api/v2/task/sync", {"code": 401, "status": {"status": {
        "code": 401, "message": "no API key: send Authorization: Bearer <key> or x-api-key"}}},
     {"code": 401, "status": {"status": {"code": 401, "message": "invalid API key"}}}),
    ("/metrics", {"error": "unauthorized", "message": "no API key: send Authorization: Bearer <key> or x-api-key"},
     {"error": "unauthorized", "message": "invalid API key"}),
])
async def test_missing_or_wrong_key_is_401_in_the_apis_shape(keyed, path, missing, wrong):
    r = await keyed.get(path)
    assert r.status == 401 and await r.json() == missing and r.headers["WWW-Authenticate"] == "Bearer"
    for headers in ({"Authorization": "Bearer " + KEY[:-1]}, {"x-api-key": KEY + "x"},
                    {"Authorization": f"Basic {KEY}", "x-api-key": "nope"}):
        assert await call(keyed, "GET", path, headers=headers) == (401, wrong)


async def test_unknown_paths_and_faust_views_need_the_key_too(keyed):
    assert (await call(keyed, "GET", "/router"))[0] == 401
    assert (await call(keyed, "GET", "/no/such/view"))[0] == 401  # no route list for strangers
    assert await call(keyed, "GET", "/no/such/view", headers={"x-api-key": KEY}) == (
        404, {"error": "not_found", "message": "Not Found"})
    assert await call(keyed, "GET", "/v1/nothing", headers={"x-api-key": KEY}) == (
        404, {"error": [{"message": "Not Found"}]})


@pytest.mark.parametrize("path", ["/health/ready", "/v1/.well-known/ready"])
async def test_probes_pass_without_a_key_but_unauthenticated_and_refuse_a_wrong_one(keyed, path):
    status, body = await call(keyed, "GET", path)
    assert status == 200 and body["auth"] is False
    assert (await call(keyed, "GET", path, headers={"x-api-key": KEY}))[1]["auth"] is True
    assert (await call(keyed, "GET", path, headers={"x-api-key": "wrong"}))[0] == 401


async def test_without_keys_everything_passes_authenticated(open_):
    assert (await call(open_, "GET", "/v1/meta"))[1]["auth"] is True
    assert (await call(open_, "GET", "/health/ready"))[1]["auth"] is True


async def test_json_body_is_parsed_once_and_still_readable(open_):
    status, body = await call(open_, "POST", "/v1/classifications", json={"class": "A"})
    assert status == 200 and body["json"] == {"class": "A"} and json.loads(body["read"]) == {"class": "A"}


@pytest.mark.parametrize("path,expected", [
    ("/v1/classifications", lambda m: {"error": [{"message": m}]}),
    ("/v1.2/classify", lambda m: {"code": "parameter_invalid", "message": m}),
    ("/api/v2/task/sync", lambda m: {"code": 400, "status": {"status": {"code": 400, "message": m}}}),
    ("/ours", lambda m: {"error": "bad_request", "message": m}),
])
async def test_malformed_json_is_400_in_the_apis_shape(open_, path, expected):
    for headers in ({"Content-Type": "application/json"}, {}):
        status, body = await call(open_, "POST", path, data=b'{"class": ', headers=headers)
        assert status == 400
        message = body["error"][0]["message"] if path.startswith("/v1/") else (
            body["message"] if "message" in body else body["status"]["status"]["message"])
        assert message.startswith("request body is not valid JSON: ") and body == expected(message)


async def test_form_uploads_are_not_parsed_as_json(open_):
    status, body = await call(open_, "POST", "/api/v2/task/sync", data={"url": "http://x/y.jpg"})
    assert status == 200 and body["json"] is None and body["read"] == "url=http%3A%2F%2Fx%2Fy.jpg"


@pytest.mark.parametrize("path,expected", [
    ("/v1/classifications", {"error": [{"message": "request body larger than 100 bytes"}]}),
    ("/v1.2/classify", {"code": "request_too_large", "message": "request body larger than 100 bytes"}),
    ("/api/v2/task/sync", {"code": 413, "status": {"status": {"code": 413,
                                                              "message": "request body larger than 100 bytes"}}}),
])
async def test_oversized_body_is_413_with_or_without_content_length(open_, path, expected):
    big = json.dumps({"x": "y" * 200}).encode()
    assert await call(open_, "POST", path, data=big) == (413, expected)

    async def chunks():  # chunked transfer: no Content-Length, the limit holds while reading
        for i in range(0, len(big), 30):
            yield big[i:i + 30]

    assert await call(open_, "POST", path, data=chunks()) == (413, expected)
    assert (await call(open_, "POST", path, json={"x": "y" * 50}))[0] == 200  # under the limit: fine


async def test_auth_comes_before_the_body_is_read(keyed):
    status, body = await call(keyed, "POST", "/v1/classifications", data=b"{" * 500)
    assert status == 401  # a stranger cannot make us read or parse anything


async def test_method_not_allowed_keeps_allow_header(open_):
    r = await open_.put("/v1/classifications")
    assert r.status == 405 and "POST" in r.headers["Allow"]
    assert await r.json() == {"error": [{"message": "Method Not Allowed"}]}


def run_worker(**env: str) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LABELSTREAM_BROKER": "kafka://127.0.0.1:1", **env})


def test_worker_refuses_an_open_bind_without_keys_in_one_line():
    out = run_worker(LABELSTREAM_WEB_HOST="0.0.0.0")
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("labelstream: refusing to serve HTTP on 0.0.0.0 without API keys")


def test_worker_refuses_a_short_key_without_showing_it(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# ops keys\n" + "s3cr3t\n")
    out = run_worker(LABELSTREAM_API_KEYS_FILE=str(keys))
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line == f"labelstream: an API key in {keys} has 6 characters: use at least 16 (e.g. openssl rand -hex 24)"
    assert "s3cr3t" not in out.stderr + out.stdout


def test_keys_come_from_the_environment_and_a_file(tmp_path):
    from app.settings import Settings

    f = tmp_path / "keys"
    f.write_text(f"# rotated 2026-12\n{KEY}\n\n  {OTHER}  \n")
    assert Settings(api_keys_file=f).api_key_set() == {KEY, OTHER}
    assert Settings(api_keys=f"{KEY},", api_keys_file=f).api_key_set() == {KEY, OTHER}
    assert Settings().api_key_set() == frozenset()
    assert KEY not in repr(Settings(api_keys=KEY))  # never in a log line that prints the settings
    with pytest.raises(ValueError, match="cannot read"):
        Settings(api_keys_file=tmp_path / "missing").api_key_set()
    f.write_text(f"{KEY} {OTHER}\n")
    with pytest.raises(ValueError, match="contains white space"):
        Settings(api_keys_file=f).api_key_set()
