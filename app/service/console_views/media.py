"""A media result: a video's per-class scores over time with its clips marked (SVG drawn by
``app/console/charts.py``) and the per-frame table; without an id, the recent media results."""

from __future__ import annotations

from aiohttp import web

from app.console.charts import timeline
from app.service.console_views.base import Route, Views, error, json_response


class Media(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/media", self.media)]

    async def media(self, request: web.Request) -> web.Response:
        rid = request.query.get("id", "")
        r = self.feed.window.result(rid) if rid else None
        if r is None:
            if rid:
                return error(request, 404, f"media result {rid!r} is not in the console's recent window")
            return json_response({"recent": self.feed.window.recent_media(50)})
        if r.get("method") != "media":
            return error(request, 400, f"{rid!r} is a {r.get('method')} result, not a media result")
        d = r.get("detail") or {}
        frames = (((d.get("hive") or {}).get("status") or {}).get("response") or {}).get("output") or []
        clips = [{"class": c["name"], **clip} for c in (d.get("twelvelabs") or {}).get("classes", [])
                 for clip in c.get("clips") or []]
        return json_response({"result": r, "timeline": timeline(frames, clips, float(d.get("duration") or 0)),
                              "frames": frames, "clips": clips})
