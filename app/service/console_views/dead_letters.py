"""Dead letters: the recent ones by reason with the original record decoded where possible, and a
corrected record re-published to an input topic through the sink."""

from __future__ import annotations

from aiohttp import web

from app.console.forms import FormError, republish_form
from app.console.window import decode_original
from app.service.console_views.base import Route, Views, error, json_body, json_response

REPUBLISH_TOPICS = ("objects", "media", "training", "feedback")


class DeadLetters(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/dead", self.dead), ("POST", "/console/api/republish", self.republish)]

    async def dead(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason") or None
        rows = [{**d, "original": decode_original(d), "republished": d["id"] in self.feed.window.republished}
                for d in self.feed.window.dead_letters(reason, 200)]
        return json_response({"reasons": dict(self.feed.window.dead_reasons.most_common()), "dead_letters": rows,
                              "topics": list(REPUBLISH_TOPICS)})

    async def republish(self, request: web.Request) -> web.Response:
        try:
            form = republish_form(await json_body(request), REPUBLISH_TOPICS, self.rt.settings.max_payload_bytes)
        except FormError as e:
            return error(request, e.status, e.message)
        await self.feed.publish(form["topic"], form["key"], form["value"])
        if isinstance(form["dead_letter"], int):
            self.feed.window.republished.add(form["dead_letter"])
        return json_response({"topic": form["topic"], "key": form["key"].decode(errors="replace")})
