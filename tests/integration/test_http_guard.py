"""API keys and request limits on a real worker (real broker): the guard covers every view it serves.

One worker with a key and a small body limit; each request below is what a client sends over
HTTP, and each answer is checked whole (status and body in the calling API's shape).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.kafka

KEY = "integration-key-0123456789"


def request(port: int, path: str, *, key: str | None = None, data: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    h = dict(headers or {})
    if key:
        h["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=h,
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def get_json(port: int, path: str, **kw) -> tuple[int, object]:
    status, body, _ = request(port, path, **kw)
    return status, json.loads(body)


async def test_keys_guard_every_view_of_a_real_worker(stack):
    w = stack.worker(LABELSTREAM_API_KEYS=KEY, LABELSTREAM_MAX_REQUEST_BYTES="1000")
    details = await stack.wait_ready(w)  # the harness sends the key: it sees the details
    assert details["checks"]["consumer_assigned"] is True
    port = w.web_port

    # liveness: no key needed; readiness: without a key only ready true/false
    assert get_json(port, "/health/live") == (200, {"live": True})
    assert get_json(port, "/health/ready") == (200, {"ready": True})
    status, body = get_json(port, "/health/ready", key=KEY)
    assert status == 200 and body["ready"] is True and set(body["checks"]) >= {"consumer_assigned"}
    assert get_json(port, "/health/ready", key="wrong-key-wrong-key") == (
        401, {"error": "unauthorized", "message": "invalid API key"})

    # our views, Faust's own and unknown paths: 401 without the key, in the path's API shape
    no_key = "no API key: send Authorization: Bearer <key> or x-api-key"
    for path in ("/metrics", "/", "/router/", "/table/", "/nothing"):
        assert get_json(port, path) == (401, {"error": "unauthorized", "message": no_key}), path
    assert get_json(port, "/v1/meta") == (401, {"error": [{"message": no_key}]})
    assert get_json(port, "/v1.2/classify") == (401, {"code": "api_key_invalid", "message": no_key})
    assert get_json(port, "/api/v2/task/sync") == (
        401, {"code": 401, "status": {"status": {"code": 401, "message": no_key}}})

    # with the key: metrics answer; Faust's cluster-layout views are not served at all
    status, body, headers = request(port, "/metrics", key=KEY)
    assert status == 200 and b"labelstream_" in body and headers["Content-Type"].startswith("text/plain")
    status, body, _ = request(port, "/metrics", headers={"x-api-key": KEY})
    assert status == 200
    for path in ("/router/", "/table/", "/graph/", "/assignment/"):
        assert get_json(port, path, key=KEY) == (404, {"error": "not_found", "message": "Not Found"}), path

    # bodies: over the limit 413, malformed JSON 400, each in the Weaviate shape on /v1/
    big = json.dumps({"class": "A", "pad": "x" * 2000}).encode()
    assert get_json(port, "/v1/classifications", key=KEY, data=big,
                    headers={"Content-Type": "application/json"}) == (
        413, {"error": [{"message": "request body larger than 1000 bytes"}]})
    status, body = get_json(port, "/v1/classifications", key=KEY, data=b'{"class": ',
                            headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"][0]["message"].startswith("request body is not valid JSON")
    assert get_json(port, "/v1/classifications", key="x" * 20, data=big) == (
        401, {"error": [{"message": "invalid API key"}]})  # the key is checked before any body is read
