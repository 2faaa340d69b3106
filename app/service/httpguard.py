"""HTTP hardening of the worker's web server: API keys, a body size limit, JSON bodies.

One aiohttp middleware wraps every route of Faust's web application: it is passed to
``aiohttp.web.Application`` through Faust's ``web_application_options`` (``faust_app.py``), so
our views, Faust's own and every view added later are covered without registering anything.

In order, for each request:

1. liveness (``/health/live``, ``/v1/.well-known/live``) always passes;
2. with keys configured, a request without a valid key gets 401, except the readiness probes
   (``/health/ready``, ``/v1/.well-known/ready``) *without any key*: they pass with
   ``request[AUTHENTICATED]`` false and answer only ready true/false (``web.py``);
3. a body larger than ``max_request_bytes`` gets 413 (from ``Content-Length`` before reading,
   else while reading a chunked body);
4. a body sent as JSON (or with no content type) that does not parse gets 400; a body that
   parses is kept: handlers read it with ``await request.json()`` / ``request.read()``
   (aiohttp caches it) or take the parsed value with ``json_body(request)``;
5. an ``HTTPException`` a handler or the router raises (404 no route, 405, 413) is answered
   in the same shape.

Every error is in the calling API's own shape (``api_for_path``, ``error_body``): Weaviate for
``/v1/...``, Twelve Labs for ``/v1.2/...``, Hive for ``/api/...``, Yandex Cloud for ``/vision/...``, ours elsewhere.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import orjson
from aiohttp import web

from app.settings import Settings

Api = Literal["weaviate", "twelvelabs", "hive", "yandex", "labelstream"]

LIVENESS = frozenset({"/health/live", "/v1/.well-known/live"})
#: Probes a load balancer calls without a key: they answer ready or not, nothing more.
PROBES = frozenset({"/health/ready", "/v1/.well-known/ready"})
#: ``request[AUTHENTICATED]``: a valid key came with the request (always true without keys).
AUTHENTICATED = web.RequestKey("labelstream.authenticated", bool)
_JSON = web.RequestKey("labelstream.json", object)
#: The console (``console_views/``) keeps the key in this cookie (HttpOnly, SameSite=Strict); it is
#: accepted under ``/console`` only, so the public APIs never take a credential a browser adds by itself.
CONSOLE_COOKIE = "labelstream_console_key"
#: The login form and the static assets (no data in them) need no key.
CONSOLE_PUBLIC = ("/console/login", "/console/static/")
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")  # media uploads (Hive, Twelve Labs)

_REASONS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
            413: "request_too_large", 415: "unsupported_media_type", 422: "unprocessable_entity"}
# Twelve Labs answers errors as {"code": <snake_case code>, "message": ...}; api_key_invalid and
# parameter_invalid are its documented codes, the others follow the same style.
_TWELVELABS_CODES = {400: "parameter_invalid", 401: "api_key_invalid", 404: "endpoint_not_exists",
                     405: "method_not_allowed", 413: "request_too_large", 422: "parameter_invalid"}
# Yandex Cloud answers REST errors as {"code": <gRPC status code>, "message", "details": []}
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 422: 3, 429: 8}


def api_for_path(path: str) -> Api:
    """Which public API a path belongs to, which decides the shape of its errors.

    >>> [api_for_path(p) for p in ("/v1/classifications", "/v1.2/classify", "/api/v2/task/sync", "/health/ready")]
    ['weaviate', 'twelvelabs', 'hive', 'labelstream']
    >>> api_for_path("/vision/v1/batchAnalyze")
    'yandex'
    >>> api_for_path("/v1"), api_for_path("/v10/x"), api_for_path("/apix")
    ('weaviate', 'labelstream', 'labelstream')
    """
    def under(prefix: str) -> bool:
        return path == prefix or path.startswith(prefix + "/")

    if under("/v1"):
        return "weaviate"
    if under("/v1.2"):
        return "twelvelabs"
    if under("/api"):
        return "hive"
    if under("/vision"):
        return "yandex"
    return "labelstream"


def error_body(api: Api, status: int, message: str) -> dict[str, Any]:
    """The error document of ``api`` for an HTTP ``status``.

    >>> error_body("weaviate", 401, "no API key")
    {'error': [{'message': 'no API key'}]}
    >>> error_body("twelvelabs", 401, "no API key")
    {'code': 'api_key_invalid', 'message': 'no API key'}
    >>> error_body("hive", 413, "too large")
    {'code': 413, 'status': {'status': {'code': 413, 'message': 'too large'}}}
    >>> error_body("yandex", 401, "no API key")
    {'code': 16, 'message': 'no API key', 'details': []}
    >>> error_body("labelstream", 400, "bad JSON")
    {'error': 'bad_request', 'message': 'bad JSON'}

    Hive's shape follows its task document (``../shared/reference/hive-classification-output.md``):
    ``code`` is the HTTP status, ``status.status`` the request-level code and message.
    """
    if api == "weaviate":
        return {"error": [{"message": message}]}
    if api == "twelvelabs":
        return {"code": _TWELVELABS_CODES.get(status, "parameter_invalid" if status < 500 else "internal_error"),
                "message": message}
    if api == "hive":
        return {"code": status, "status": {"status": {"code": status, "message": message}}}
    if api == "yandex":
        return {"code": _GRPC_CODES.get(status, 3 if status < 500 else 13), "message": message, "details": []}
    return {"error": _REASONS.get(status, "error"), "message": message}


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries: ``Authorization: Bearer|Token <key>`` or ``x-api-key``.

    >>> presented_key({"Authorization": "Bearer abc"}), presented_key({"Authorization": "token abc"})
    ('abc', 'abc')
    >>> presented_key({"x-api-key": " abc "}), presented_key({"Authorization": "Basic YTpi"}), presented_key({})
    ('abc', None, None)
    """
    scheme, _, credential = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and credential.strip():
        return credential.strip()
    return headers.get("x-api-key", "").strip() or None


def key_matches(key: str, keys: frozenset[str]) -> bool:
    """Constant-time comparison with every configured key (no early exit that times which one).

    >>> key_matches("a" * 16, frozenset({"a" * 16, "b" * 16})), key_matches("a", frozenset({"a" * 16}))
    (True, False)
    """
    found = False
    for k in keys:
        found |= hmac.compare_digest(key.encode(), k.encode())
    return found


def is_loopback(host: str) -> bool:
    """
    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "", "10.1.2.3", "example.com")]
    [True, True, True, False, False, False, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def bind_refusal(host: str, has_keys: bool, allow_open: bool) -> str | None:
    """Why the web server must not start on ``host``, or None.

    >>> bind_refusal("127.0.0.1", False, False) is None, bind_refusal("0.0.0.0", True, False) is None
    (True, True)
    >>> bind_refusal("0.0.0.0", False, True) is None
    True
    >>> print(bind_refusal("0.0.0.0", False, False))
    refusing to serve HTTP on 0.0.0.0 without API keys: anyone who reaches the port could read and start jobs. Set LABELSTREAM_API_KEYS or LABELSTREAM_API_KEYS_FILE, or LABELSTREAM_WEB_ALLOW_OPEN=1 if the network itself is protected, or LABELSTREAM_WEB_HOST=127.0.0.1
    """
    if has_keys or allow_open or is_loopback(host):
        return None
    return (f"refusing to serve HTTP on {host or 'every interface'} without API keys: anyone who reaches the port "
            "could read and start jobs. Set LABELSTREAM_API_KEYS or LABELSTREAM_API_KEYS_FILE, or "
            "LABELSTREAM_WEB_ALLOW_OPEN=1 if the network itself is protected, or LABELSTREAM_WEB_HOST=127.0.0.1")


class WebConfigError(ValueError):
    """The web server's settings are unsafe or wrong (keys, bind address): the worker does not start."""


def check_web(settings: Settings) -> None:
    """Raise ``WebConfigError`` before anything starts: bad keys, or an open bind without keys."""
    if not settings.web_enabled:
        return
    try:
        keys = settings.api_key_set()
    except ValueError as e:
        raise WebConfigError(str(e)) from None
    refusal = bind_refusal(settings.web_host, bool(keys), settings.web_allow_open)
    if refusal:
        raise WebConfigError(refusal)


def is_console(path: str) -> bool:
    """
    >>> is_console("/console"), is_console("/console/api/results"), is_console("/consoles")
    (True, True, False)
    """
    return path == "/console" or path.startswith("/console/")


def authenticated(request: Any) -> bool:
    """A valid key came with the request, or no keys are configured (Faust passes aiohttp's request)."""
    return bool(request.get(AUTHENTICATED, True))


def json_body(request: web.Request) -> Any:
    """The request's JSON body as the middleware parsed it (None: no body or not JSON)."""
    return request.get(_JSON)


def error_response(path: str, status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(error_body(api_for_path(path), status, message)), status=status,
                        content_type="application/json", headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard(keys: frozenset[str], max_request_bytes: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware (see the module's docstring)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in LIVENESS:
            return await handler(request)
        if keys:
            key = presented_key(request.headers)
            if key is None and is_console(path):
                if path.startswith(CONSOLE_PUBLIC):
                    request[AUTHENTICATED] = False
                    return await handler(request)
                key = request.cookies.get(CONSOLE_COOKIE) or None
            if key is None and path in PROBES:
                request[AUTHENTICATED] = False
                return await handler(request)
            if (key is None or not key_matches(key, keys)) and is_console(path) and request.method == "GET" \
                    and not path.startswith("/console/api/"):
                raise web.HTTPSeeOther("/console/login")  # a page: to the login form
            if key is None or not key_matches(key, keys):
                # WWW-Authenticate: the standard answer to a 401 (RFC 9110); clients show it
                return error_response(path, 401, "no API key: send Authorization: Bearer <key> or x-api-key"
                                      if key is None else "invalid API key", {"WWW-Authenticate": "Bearer"})
        request[AUTHENTICATED] = True
        too_large = f"request body larger than {max_request_bytes} bytes"
        if request.content_length is not None and request.content_length > max_request_bytes:
            return error_response(path, 413, too_large)
        try:
            if request.can_read_body and not request.content_type.startswith(_FORMS):
                body = await request.read()  # bounded by client_max_size (web_options)
                if body and request.content_type in ("application/json", "application/octet-stream", ""):
                    try:
                        request[_JSON] = orjson.loads(body)
                    except orjson.JSONDecodeError as e:
                        return error_response(path, 400, f"request body is not valid JSON: {e}")
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error_response(path, 413, too_large)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return error_response(path, e.status, e.reason, {k: v for k, v in e.headers.items()
                                                             if k in ("Allow",)})

    return middleware


def web_options(keys: frozenset[str], max_request_bytes: int) -> dict[str, Any]:
    """Faust's ``web_application_options``: the guard and aiohttp's own body limit (the same)."""
    return {"middlewares": [guard(keys, max_request_bytes)], "client_max_size": max_request_bytes}
