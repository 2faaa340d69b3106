"""A thin HTTP client of the worker's Weaviate-compatible classification API (the CLI's ``jobs``).

Shapes: ``../shared/reference/weaviate-classifications-api.md``. ``POST /v1/classifications``
starts a job (201, the job with its ``id``), ``GET /v1/classifications/{id}`` reads one (404
unknown), ``GET /v1/classifications`` lists them (ours; a list, or ``{"classifications": [...]}``).
Errors come back as Weaviate's ``{"error": [{"message": ...}]}``. Standard library only
(urllib): the CLI stays a plain synchronous program.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.devtools.process import server_key
from app.settings import Settings

RUNNING = "running"
ZERO_TIME = "0001-01-01T00:00:00.000Z"  # Weaviate's meta.completed while a job runs


class ApiError(Exception):
    """The server refused (``status`` set) or could not be reached (``status`` None)."""

    def __init__(self, status: int | None, message: str):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status, self.message = status, message


def error_message(status: int, body: bytes) -> str:
    """The message of an error response: Weaviate's shape, our own, or the raw text.

    >>> error_message(400, b'{"error": [{"message": "invalid classification: class must be set"}]}')
    'invalid classification: class must be set'
    >>> error_message(401, b'{"error": "unauthorized", "message": "invalid API key"}')
    'invalid API key'
    >>> error_message(404, b''), error_message(500, b'boom')
    ('not found', 'boom')
    """
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, list) and err and isinstance(err[0], dict) and "message" in err[0]:
            return "; ".join(str(e.get("message")) for e in err if isinstance(e, dict))
        if "message" in doc:
            return str(doc["message"])
    text = body.decode(errors="replace").strip()
    return text or {404: "not found"}.get(status, f"HTTP {status}")


def default_url(settings: Settings, env: Mapping[str, str] = os.environ) -> str:
    """``LABELSTREAM_URL``, else the local worker's web address.

    >>> default_url(Settings(web_host="0.0.0.0", web_port=7000), {})
    'http://127.0.0.1:7000'
    >>> default_url(Settings(), {"LABELSTREAM_URL": "https://ls.example.com/"})
    'https://ls.example.com'
    """
    if env.get("LABELSTREAM_URL"):
        return env["LABELSTREAM_URL"].rstrip("/")
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host
    return f"http://{host}:{settings.web_port}"


def default_key(env: Mapping[str, str] = os.environ) -> str | None:
    """``LABELSTREAM_API_KEY`` (the client's key), else one the local worker accepts (its settings).

    >>> default_key({"LABELSTREAM_API_KEY": "mine", "LABELSTREAM_API_KEYS": "server-key-0123456"})
    'mine'
    >>> default_key({"LABELSTREAM_API_KEYS": "server-key-0123456"}), default_key({})
    ('server-key-0123456', None)
    """
    return env.get("LABELSTREAM_API_KEY") or server_key(env)


def job_body(type_: str, class_: str, classify: list[str], based_on: list[str], *, k: int | None = None,
             taxonomies: list[str] | None = None, scope: str | None = None,
             filters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``POST /v1/classifications``: Weaviate's fields plus our ``scope``.

    >>> job_body("knn", "Article", ["topic"], ["summary"], k=5, scope="all")
    {'type': 'knn', 'class': 'Article', 'classifyProperties': ['topic'], 'basedOnProperties': ['summary'], 'settings': {'k': 5}, 'scope': 'all'}
    >>> job_body("zeroshot", "Article", ["topic"], [], taxonomies=["news"], filters={"sourceWhere": {}})
    {'type': 'zeroshot', 'class': 'Article', 'classifyProperties': ['topic'], 'settings': {'taxonomies': ['news']}, 'filters': {'sourceWhere': {}}}
    """
    body: dict[str, Any] = {"type": type_, "class": class_, "classifyProperties": classify}
    if based_on:
        body["basedOnProperties"] = based_on
    settings: dict[str, Any] = {}
    if k is not None:
        settings["k"] = k
    if taxonomies:
        settings["taxonomies"] = taxonomies
    if settings:
        body["settings"] = settings
    if filters:
        body["filters"] = filters
    if scope:
        body["scope"] = scope
    return body


def progress(job: Mapping[str, Any]) -> tuple[int, int | None]:
    """``(items done, total or None)`` from a job's ``meta`` (``count`` may only come at the end).

    >>> progress({"meta": {"count": 10, "countSucceeded": 6, "countFailed": 1}})
    (7, 10)
    >>> progress({"meta": {"started": "2020-09-09T14:57:08.468Z"}}), progress({})
    ((0, None), (0, None))
    """
    meta = job.get("meta") or {}
    done = int(meta.get("countSucceeded") or 0) + int(meta.get("countFailed") or 0)
    total = meta.get("count")
    return done, int(total) if isinstance(total, int) else None


def summary(job: Mapping[str, Any]) -> str:
    """One line per job for ``jobs list``.

    >>> summary({"id": "ee72", "status": "completed", "class": "Article", "type": "knn",
    ...          "meta": {"started": "2020-09-09T14:57:08.468Z", "count": 3, "countSucceeded": 3}})
    'ee72  completed  knn  Article  3/3  started 2020-09-09T14:57:08.468Z'
    >>> summary({"id": "a", "status": "running", "class": "A", "type": "zeroshot", "meta": {}})
    'a  running  zeroshot  A  0/?  started -'
    """
    done, total = progress(job)
    meta = job.get("meta") or {}
    return (f"{job.get('id')}  {job.get('status')}  {job.get('type')}  {job.get('class')}  "
            f"{done}/{'?' if total is None else total}  started {meta.get('started') or '-'}")


@dataclass
class JobsClient:
    url: str
    key: str | None = None
    timeout: float = 10.0

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, error_message(e.code, e.read())) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ApiError(None, f"cannot reach {self.url}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(None, f"{method} {path}: the answer is not JSON: {raw[:200]!r}") from None

    def start(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/classifications", dict(body))

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", "/v1/classifications/" + urllib.parse.quote(job_id, safe=""))

    def list(self) -> list[dict[str, Any]]:
        doc = self._call("GET", "/v1/classifications")
        jobs = doc.get("classifications") if isinstance(doc, dict) else doc
        if not isinstance(jobs, list):
            raise ApiError(None, f"GET /v1/classifications: expected a list of jobs, got {type(jobs).__name__}")
        return jobs

    def watch(self, job_id: str, on_update: Callable[[dict[str, Any]], None], *, interval: float = 0.5,
              timeout: float | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Poll until the job is no longer running; ``on_update`` sees every answer. Returns the last."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.status(job_id)
            on_update(job)
            if job.get("status") != RUNNING:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ApiError(None, f"job {job_id} still running after {timeout:g} s")
            sleep(interval)
