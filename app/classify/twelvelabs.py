"""Twelve Labs classify v1.2 on request, as pure steps: request validation and scoring of stored
media items (the answers of several workers are merged by ``app/classify/fanout.py``, pages are
kept by ``app/classify/requeststore.py``). The web views (``app/service/web_twelvelabs.py``) only
move bytes and read tables.

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
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.classify.media import Media
from app.classify.prompts import Compiled, Embedder, PromptSpaceError, SegmentSpaceError, compile_classes
from app.classify.state import ModelState
from app.core.media import MAX_PAGE_LIMIT, classify_media
from app.core.vectorizers import VectorizerError
from app.schemas.media import THRESHOLD_KEYS, Option

__all__ = ["ApiError", "ClassifyRequest", "parse_request", "classify_items", "classify_each", "first_error",
           "classify_request", "iso"]


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


def _api_error(e: Exception) -> ApiError:
    if isinstance(e, (PromptSpaceError, SegmentSpaceError, VectorizerError)):
        return ApiError(400, "parameter_invalid", str(e))
    return ApiError(400, "parameter_invalid", f"Cannot classify with these parameters: {e}")  # the core's checks


def classify_each(state: ModelState, embedder: Embedder, req: ClassifyRequest,
                  items: Sequence[Media]) -> list[dict[str, Any] | ApiError]:
    """Each item's answer, in the given order: its ``{video_id, classes}``, or the :class:`ApiError`
    (400) it raises -- a prompt with no place in its index's spaces (every item of that index), a
    stored segment that does not fit, a parameter the core refuses. Items of one index share its
    compiled classes (``app/classify/prompts.py``). A worker answers for the items it holds; the
    worker that took the request merges the answers (:func:`first_error`, ``app/classify/fanout.py``)."""
    snap = state.snapshot()
    by_index: dict[str, list[int]] = {}
    for i, m in enumerate(items):
        by_index.setdefault(m.index_id, []).append(i)
    classes = [c.model_dump(exclude_none=True) for c in req.classes]
    out: list[dict[str, Any] | ApiError] = [ApiError(500, "internal_error", "not classified")] * len(items)
    for index_id, group in by_index.items():
        try:
            compiled = compile_classes(classes, snap.indexes.get(index_id), req.options, req.conversation_option,
                                       functools.partial(state.prompt_vector, index_id), embedder, index_id)
        except (PromptSpaceError, VectorizerError, ValueError) as e:
            for i in group:
                out[i] = _api_error(e)
            continue
        for i in group:
            try:
                [out[i]] = classify_items(req, [items[i]], compiled)
            except (SegmentSpaceError, VectorizerError, ValueError) as e:
                out[i] = _api_error(e)
    return out


def first_error(index_ids: Sequence[str], answers: Sequence[dict[str, Any] | ApiError]) -> ApiError | None:
    """The error a request answers with: the first of its first failing index (indexes in the order
    they first appear, items in order within one), as one worker classifying them all would raise it.

    >>> e1, e2 = ApiError(400, "parameter_invalid", "one"), ApiError(400, "parameter_invalid", "two")
    >>> first_error(["a", "b", "a"], [{}, e1, e2]).message, first_error(["a"], [{}])
    ('two', None)
    """
    for index_id in dict.fromkeys(index_ids):
        for i, a in zip(index_ids, answers):
            if i == index_id and isinstance(a, ApiError):
                return a
    return None


def classify_request(state: ModelState, embedder: Embedder, req: ClassifyRequest,
                     items: Sequence[Media]) -> list[dict[str, Any]]:
    """Every item classified, in the given order. Raises :class:`ApiError` (400) for a prompt or
    segment that has no place in the index's spaces (:func:`first_error` of :func:`classify_each`)."""
    answers = classify_each(state, embedder, req, items)
    if (err := first_error([m.index_id for m in items], answers)) is not None:
        raise err
    return [a for a in answers if not isinstance(a, ApiError)]


def iso(seconds: float) -> str:
    """
    >>> iso(1684732749.9)
    '2023-05-22T05:19:09Z'
    """
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
