"""``POST /vision/v1/batchAnalyze``: Yandex Vision image classification on raw images.

Behind the HTTP guard like every view (API keys, body limit, JSON; errors in Yandex Cloud's
shape, ``app/service/httpguard.py``). Decoding and the models run in the classify pool
(``app/classify/yandex.py``), never on the event loop.
"""

from __future__ import annotations

from faust.web import Request, Response, View

from app.classify.yandex import BadRequest, batch_analyze
from app.service.httpguard import error_response, json_body
from app.service.runtime import Runtime

PATH = "/vision/v1/batchAnalyze"


def register(rt: Runtime) -> None:
    @rt.app.page(PATH)
    class BatchAnalyze(View):
        async def post(self, request: Request) -> Response:
            body = json_body(request)  # type: ignore[arg-type]
            try:
                doc = await rt.run(batch_analyze, rt.state, body)
            except BadRequest as e:
                return error_response(PATH, 400, str(e))  # type: ignore[return-value]
            return self.json(doc)
