"""Twelve Labs classify v1.2 over the media store: ``POST /v1.2/classify`` (``video_ids``),
``POST /v1.2/classify/bulk`` (``index_id``), ``GET /v1.2/classify/{page_token}``.

The official ``twelvelabs`` SDK (0.3.x) works unchanged against any worker: ``TWELVELABS_BASE_URL``
pointed at it, the API key sent as ``x-api-key`` (``httpguard.py`` checks it). Validation,
scoring, merging and paging are pure (``app/classify/twelvelabs.py``, ``fanout.py``,
``requeststore.py``, ``prompts.py``); this module moves bytes: a request is answered from every
worker's media (``mediaapi.py``: the shares of all media-store partitions, one of them a
:data:`~app.service.mediaapi.INTERNAL` leg per other worker), its pages kept where any worker
finds them.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from faust.web import Request, Response, View

from app.classify.fanout import merge_index, merge_videos
from app.classify.requeststore import read_page, token_home
from app.classify.twelvelabs import ApiError, parse_request
from app.service.httpguard import json_body
from app.service.mediaapi import INTERNAL, Kind, MediaApi, Unavailable, api_error
from app.service.runtime import Runtime

LIMITED = "You have exceeded the rate limit. Please try again later."


def register(rt: Runtime, api: MediaApi) -> None:
    s = rt.settings

    def refused(view: View, e: ApiError) -> Response:
        headers = {"Retry-After": str(e.retry_after)} if isinstance(e, Unavailable) else None
        return api_error(view, "twelvelabs", e.status, e.message, e.code, headers)

    def limited(view: View, request: Request) -> Response | None:
        wait = api.rate_limited(request)
        if wait is None:
            return None
        return api_error(view, "twelvelabs", 429, LIMITED, "too_many_requests", {"Retry-After": str(wait)})

    async def classify(view: View, request: Request, kind: Kind) -> Response:
        if (answer := limited(view, request)) is not None:
            return answer
        try:
            body = json_body(request)  # type: ignore[arg-type]  # Faust's Request is aiohttp's
            req = parse_request(body, kind, max_prompts=s.max_prompts, max_videos=s.classify_max_videos)
            if (answer := await api.elsewhere(view, request)) is not None:
                return answer  # this worker could not keep the pages: one that can answers
            g = await api.gather(kind, req, request)
            if kind == "videos":
                assert req.video_ids is not None
                videos = merge_videos(req.video_ids, g.items)
            else:
                assert req.index_id is not None
                videos = merge_index(req.index_id, g, declared=req.index_id in rt.state.snapshot().indexes,
                                     max_videos=s.classify_max_videos)
            return view.json(await api.keep_pages(videos, req.page_limit))
        except ApiError as e:
            return refused(view, e)

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
            if (answer := limited(self, request)) is not None:
                return answer
            try:
                home = token_home(page_token, api.result_partitions)
            except ValueError:
                return api_error(self, "twelvelabs", 400, f"The page token {page_token} is not valid.",
                                 "parameter_invalid")
            if (answer := await api.at_home(self, request, home)) is not None:
                return answer
            try:
                return self.json(read_page(page_token, api.read_results, now=time.time(),
                                           partitions=api.result_partitions))
            except ApiError as e:
                return refused(self, e)

        async def post(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)

    @rt.app.page(INTERNAL)
    class Share(View):
        """One worker's share of a classify request: ``?kind=videos|index&partitions=0,3,...``, the
        request's own body; answers ``app.classify.fanout.share`` for the partitions it owns."""

        async def post(self, request: Request, **kw: Any) -> Response:
            if (answer := limited(self, request)) is not None:
                return answer
            kind = request.query.get("kind")
            try:
                parts = [int(p) for p in request.query.get("partitions", "").split(",") if p]
            except ValueError:
                parts = [-1]
            if kind not in ("videos", "index") or not parts or not all(0 <= p < api.partitions for p in parts):
                return api_error(self, "twelvelabs", 400, "kind=videos|index and partitions=<0..n-1,...> are "
                                 "required.", "parameter_invalid")
            try:
                req = parse_request(json_body(request), kind,  # type: ignore[arg-type]
                                    max_prompts=s.max_prompts, max_videos=s.classify_max_videos)
            except ApiError as e:
                return refused(self, e)
            share = await api.share(kind, req, parts)  # type: ignore[arg-type]  # kind checked above
            return self.bytes(orjson.dumps(share), content_type="application/json")

        async def get(self, request: Request, **kw: Any) -> Response:
            return not_allowed(self, request)
