"""Twelve Labs classify v1.2 on request, as pure steps: request validation, scoring of stored
media items, and page tokens. The web views (``app/service/web_twelvelabs.py``) only move
bytes and read tables.

The API is a fixed contract (frozen upstream in 2025): ``POST /v1.2/classify`` (``video_ids``),
``POST /v1.2/classify/bulk`` (``index_id``), ``GET /v1.2/classify/{page_token}``. Errors are
:class:`ApiError` with Twelve Labs' codes: ``parameter_not_provided`` (a required field is
missing), ``parameter_unknown`` (a field the API does not have), ``parameter_invalid``,
``resource_not_exist`` (an unknown video or index), ``api_key_invalid``, ``too_many_requests``.

>>> parse_request({"video_ids": ["v1"], "options": ["visual"]}, "videos", max_prompts=10, max_videos=5)
Traceback (most recent call last):
...
app.classify.twelvelabs.ApiError: (400, 'parameter_not_provided', 'The `classes` parameter is required.')
>>> parse_request({"video_ids": ["v1"], "options": ["smell"], "classes": []}, "videos", max_prompts=10, max_videos=5)
Traceback (most recent call last):
...
app.classify.twelvelabs.ApiError: (400, 'parameter_invalid', "The `options[0]` parameter is invalid: Input should be 'visual', 'conversation' or 'text_in_video'.")
>>> parse_request({"index_id": "i", "options": ["visual"], "classes": [{"name": "A", "prompts": ["a"]}], "colour": 1},
...               "index", max_prompts=10, max_videos=5)
Traceback (most recent call last):
...
app.classify.twelvelabs.ApiError: (400, 'parameter_unknown', 'The `colour` parameter is unknown.')
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.classify.media import Media
from app.classify.prompts import Compiled, Embedder, PromptSpaceError, SegmentSpaceError, compile_classes
from app.classify.state import ModelState
from app.core.media import MAX_PAGE_LIMIT, classify_media, classify_page, parse_page_token
from app.core.vectorizers import VectorizerError
from app.schemas.media import THRESHOLD_KEYS, Option

__all__ = ["ApiError", "ClassifyRequest", "parse_request", "classify_items", "classify_request", "Pages"]


class ApiError(Exception):
    """An answer other than 200: HTTP status, Twelve Labs ``code``, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, code, message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ClassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    prompts: list[str] = Field(min_length=1)
    options: list[Option] | None = Field(None, min_length=1)
    conversation_option: Literal["semantic", "exact_match"] | None = None


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video_ids: list[str] | None = None
    index_id: str | None = None
    options: list[Option] = Field(min_length=1)
    classes: list[ClassSpec] = Field(min_length=1)
    conversation_option: Literal["semantic", "exact_match"] = "semantic"
    page_limit: int = Field(10, ge=1, le=MAX_PAGE_LIMIT)
    include_clips: bool = False
    threshold: dict[str, float] | None = None
    show_detailed_score: bool = False


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_request(body: Any, kind: Literal["videos", "index"], *, max_prompts: int, max_videos: int) -> ClassifyRequest:
    """The validated request of ``POST /v1.2/classify`` (``videos``) or ``/bulk`` (``index``)."""
    if not isinstance(body, dict):
        raise ApiError(400, "parameter_invalid", "The request body must be a JSON object.")
    required = "video_ids" if kind == "videos" else "index_id"
    other = "index_id" if kind == "videos" else "video_ids"
    if other in body:
        raise ApiError(400, "parameter_unknown", f"The `{other}` parameter is unknown.")
    for name in (required, "options", "classes"):
        if body.get(name) is None:
            raise ApiError(400, "parameter_not_provided", f"The `{name}` parameter is required.")
    try:
        req = ClassifyRequest.model_validate(body)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = _path(err["loc"])
        if err["type"] == "extra_forbidden":
            raise ApiError(400, "parameter_unknown", f"The `{where}` parameter is unknown.") from None
        if err["type"] == "missing":
            raise ApiError(400, "parameter_not_provided", f"The `{where}` parameter is required.") from None
        raise ApiError(400, "parameter_invalid", f"The `{where}` parameter is invalid: {err['msg']}.") from None
    if kind == "videos":
        assert req.video_ids is not None
        if not req.video_ids or any(not v for v in req.video_ids):
            raise ApiError(400, "parameter_invalid", "The `video_ids` parameter must list at least one video id.")
        if len(req.video_ids) > max_videos:
            raise ApiError(400, "parameter_invalid", f"The `video_ids` parameter lists {len(req.video_ids)} videos; "
                           f"the limit is {max_videos}.")
    elif not req.index_id:
        raise ApiError(400, "parameter_invalid", "The `index_id` parameter must not be empty.")
    if unknown := sorted(set(req.threshold or {}) - THRESHOLD_KEYS):
        raise ApiError(400, "parameter_invalid", f"The `threshold` parameter has unknown keys {unknown}; "
                       f"allowed: {sorted(THRESHOLD_KEYS)}.")
    names = [c.name for c in req.classes]
    if len(set(names)) != len(names):
        raise ApiError(400, "parameter_invalid", "The `classes` parameter names a class twice.")
    for i, c in enumerate(req.classes):
        if any(not p.strip() for p in c.prompts):
            raise ApiError(400, "parameter_invalid", f"The `classes[{i}].prompts` parameter has an empty prompt.")
    if (n := sum(len(c.prompts) for c in req.classes)) > max_prompts:
        raise ApiError(400, "parameter_invalid", f"The `classes` parameter has {n} prompts; the limit is {max_prompts}.")
    return req


def classify_items(req: ClassifyRequest, items: Sequence[Media], compiled: Compiled) -> list[dict[str, Any]]:
    """``[{video_id, classes}]`` for stored items of one index, in the given order: the pure core
    (``app.core.media.classify_media``) on the items' segments in the request's joint space."""
    out = []
    for m in items:
        arrays = compiled.segments(m.segments, m.media_id)
        out.append(classify_media(arrays, m.duration, compiled.classes, video_id=m.media_id, options=req.options,
                                  conversation_option=req.conversation_option, include_clips=req.include_clips,
                                  show_detailed_score=req.show_detailed_score, threshold=req.threshold))
    return out


def classify_request(state: ModelState, embedder: Embedder, req: ClassifyRequest,
                     items: Sequence[Media]) -> list[dict[str, Any]]:
    """Every item classified, in the given order; items of one index share its compiled classes
    (``app/classify/prompts.py``). Raises :class:`ApiError` (400) for a prompt or segment that has
    no place in the index's spaces."""
    snap = state.snapshot()
    by_index: dict[str, list[Media]] = {}
    for m in items:
        by_index.setdefault(m.index_id, []).append(m)
    classes = [c.model_dump(exclude_none=True) for c in req.classes]
    out: dict[str, dict[str, Any]] = {}
    for index_id, group in by_index.items():
        try:
            compiled = compile_classes(classes, snap.indexes.get(index_id), req.options, req.conversation_option,
                                       functools.partial(state.prompt_vector, index_id), embedder, index_id)
            for m, r in zip(group, classify_items(req, group, compiled)):
                out[m.media_id] = r
        except (PromptSpaceError, SegmentSpaceError, VectorizerError) as e:
            raise ApiError(400, "parameter_invalid", str(e)) from None
        except ValueError as e:  # the core's own checks (threshold values, vector sizes)
            raise ApiError(400, "parameter_invalid", f"Cannot classify with these parameters: {e}") from None
    return [out[m.media_id] for m in items]


def iso(seconds: float) -> str:
    """
    >>> iso(1684732749.9)
    '2023-05-22T05:19:09Z'
    """
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Result:
    videos: list[dict[str, Any]]
    limit: int
    expires: float


class Pages:
    """Classify results kept for paging: ``put`` stores a result and answers its first page,
    ``page(token)`` any page until ``ttl`` seconds after the request. Tokens are
    ``<random id>-<page>`` (``app.core.media.classify_page``); an unknown, malformed or expired
    token is a 400. At most ``max_results`` results are kept (the oldest go first).

    >>> p = Pages(ttl=60, token=lambda: "t1")
    >>> first = p.put([{"video_id": "a"}, {"video_id": "b"}, {"video_id": "c"}], 2, now=0)
    >>> first["page_info"]
    {'limit_per_page': 2, 'total_results': 3, 'page_expired_at': '1970-01-01T00:01:00Z', 'next_page_token': 't1-1'}
    >>> p.page("t1-1", now=59)["page_info"]["prev_page_token"], [v["video_id"] for v in p.page("t1-1", now=59)["data"]]
    ('t1-0', ['c'])
    >>> p.page("t1-1", now=60)
    Traceback (most recent call last):
    ...
    app.classify.twelvelabs.ApiError: (400, 'parameter_invalid', 'The page token t1-1 has expired (at 1970-01-01T00:01:00Z): send the classify request again.')
    """

    def __init__(self, ttl: float, max_results: int = 1024, token: Any = None):
        self.ttl, self.max_results = ttl, max_results
        self._token = token or (lambda: secrets.token_urlsafe(12).replace("-", "_"))
        self._results: OrderedDict[str, _Result] = OrderedDict()
        self._expired: OrderedDict[str, float] = OrderedDict()  # prefix -> when its result expired
        self._lock = threading.Lock()

    def put(self, videos: list[dict[str, Any]], limit: int, now: float) -> dict[str, Any]:
        prefix = self._token()
        with self._lock:
            self._results[prefix] = _Result(videos, limit, now + self.ttl)
            for k in [k for k, r in self._results.items() if r.expires <= now]:
                self._forget(k)
            while len(self._results) > self.max_results:
                self._forget(next(iter(self._results)))
        return self._page(prefix, 0, self._results[prefix])

    def _forget(self, prefix: str) -> None:
        """Drop a result, remembering when it expired (a small entry) so its tokens still say so."""
        self._expired[prefix] = self._results.pop(prefix).expires
        while len(self._expired) > 16 * self.max_results:
            self._expired.popitem(last=False)

    def page(self, token: str, now: float) -> dict[str, Any]:
        try:
            prefix, page = parse_page_token(token)
        except ValueError:
            raise ApiError(400, "parameter_invalid", f"The page token {token} is not valid.") from None
        with self._lock:
            r = self._results.get(prefix)
            gone = self._expired.get(prefix)
        if r is None and gone is not None:
            raise ApiError(400, "parameter_invalid", f"The page token {token} has expired (at {iso(gone)}): "
                           "send the classify request again.")
        if r is None:
            raise ApiError(400, "parameter_invalid", f"The page token {token} is unknown or has expired: send the "
                           "classify request again.")
        if now >= r.expires:
            raise ApiError(400, "parameter_invalid", f"The page token {token} has expired (at {iso(r.expires)}): "
                           "send the classify request again.")
        if page * r.limit >= max(len(r.videos), 1) and page > 0:
            raise ApiError(400, "parameter_invalid", f"The page token {token} points past the last page.")
        return self._page(prefix, page, r)

    @staticmethod
    def _page(prefix: str, page: int, r: _Result) -> dict[str, Any]:
        doc = classify_page(r.videos, page_limit=r.limit, page=page, token_prefix=prefix,
                            page_expired_at=iso(r.expires))
        info = doc["page_info"]
        for k in ("next_page_token", "prev_page_token"):  # absent on the last / first page (v1.2)
            if not info[k]:
                del info[k]
        return doc
