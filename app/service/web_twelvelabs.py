"""Twelve Labs classify v1.2 over the media store: ``POST /v1.2/classify`` (``video_ids``),
``POST /v1.2/classify/bulk`` (``index_id``), ``GET /v1.2/classify/{page_token}``.

The official ``twelvelabs`` SDK (0.3.x) works unchanged against a worker: ``TWELVELABS_BASE_URL``
pointed at it, the API key sent as ``x-api-key`` (``httpguard.py`` checks it). Validation,
scoring and paging are pure (``app/classify/twelvelabs.py``, ``prompts.py``); this module reads
the store (``mediaapi.py``), runs the scoring in the classify pool and answers.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from faust.web import Request, Response, View

from app.classify import mediastore
from app.classify.twelvelabs import ApiError, classify_request, parse_request
from app.service.httpguard import json_body
from app.service.mediaapi import MediaApi, api_error
from app.service.runtime import Runtime


def register(rt: Runtime, api: MediaApi) -> None:
    s = rt.settings

    async def classify(view: View, request: Request, kind: Literal["videos", "index"]) -> Response:
        wait = api.rate_limited(request)
        if wait is not None:
            return api_error(view, "twelvelabs", 429, "You have exceeded the rate limit. Please try again later.",
                             "too_many_requests", {"Retry-After": str(wait)})
        try:
            body = json_body(request)  # type: ignore[arg-type]  # Faust's Request is aiohttp's
            req = parse_request(body, kind, max_prompts=s.max_prompts, max_videos=s.classify_max_videos)
            if kind == "videos":
                assert req.video_ids is not None
                values = {v: api.stored(v) for v in dict.fromkeys(req.video_ids)}
                if missing := [v for v, value in values.items() if value is None]:
                    raise ApiError(404, "resource_not_exist", f"The video {missing[0]} does not exist.")
                items = await rt.run(lambda: [mediastore.decode(v) for v in values.values() if v is not None])
            else:
                assert req.index_id is not None
                items = await api.index_items(req.index_id)
                if not items and req.index_id not in rt.state.snapshot().indexes:
                    raise ApiError(404, "resource_not_exist", f"The index {req.index_id} does not exist.")
                if len(items) > s.classify_max_videos:  # one request scores them all before the first page
                    raise ApiError(400, "parameter_invalid", f"The index {req.index_id} holds {len(items)} videos; "
                                   f"one request classifies at most {s.classify_max_videos}.")
            videos = await rt.run(classify_request, rt.state, api.embedder, req, items)
        except ApiError as e:
            return api_error(view, "twelvelabs", e.status, e.message, e.code)
        return view.json(api.pages.put(videos, req.page_limit, now=time.time()))

    def not_allowed(view: View, request: Request) -> Response:
        return api_error(view, "twelvelabs", 405, f"Method {request.method} is not allowed on {request.url.path}.",
                         "method_not_allowed")

    @rt.app.page("/v1.2/classify")
    class ClassifyVideos(View):
        async def post(self, request: Request, **kw: Any) -> Response:
            return await classify(self, request, "videos")

        async def get(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)

    @rt.app.page("/v1.2/classify/bulk")
    class ClassifyIndex(View):
        async def post(self, request: Request, **kw: Any) -> Response:
            return await classify(self, request, "index")

        async def get(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)

    @rt.app.page("/v1.2/classify/{page_token}")
    class ClassifyPage(View):
        async def get(self, request: Request, page_token: str = "", **kw: Any) -> Response:
            wait = api.rate_limited(request)
            if wait is not None:
                return api_error(self, "twelvelabs", 429, "You have exceeded the rate limit. Please try again "
                                 "later.", "too_many_requests", {"Retry-After": str(wait)})
            try:
                return self.json(api.pages.page(page_token, now=time.time()))
            except ApiError as e:
                return api_error(self, "twelvelabs", e.status, e.message, e.code)

        async def post(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)
