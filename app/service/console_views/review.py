"""The review queue and verdicts: open ``review`` (and ``block``) hits oldest first with their
evidence; a verdict (confirm, reject, relabel) or a retraction becomes a record on the
``feedback`` topic, published through the sink and awaited until the broker acknowledged it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from app.classify.accuracy import REJECTED
from app.console.forms import FormError, verdict_form
from app.schemas.feedback import Feedback
from app.service.console_views.base import REVIEWER_COOKIE, Route, Views, error, json_body, json_response, reviewer


# The oldest items the page holds: a reviewer works from the top, and the page refreshes every 2 s. The page
# redraws the list on every key press, so a long list costs each press (500 items: ~0.5 s to first render).
QUEUE_PAGE = 100


class Review(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/review", self.review), ("GET", "/console/api/verdicts", self.verdicts),
                ("POST", "/console/api/verdict", self.verdict), ("POST", "/console/api/retract", self.retract)]

    async def review(self, request: web.Request) -> web.Response:
        actions = tuple(a for a in request.query.get("actions", "review").split(",") if a)
        if not actions or any(a not in ("review", "block") for a in actions):
            return error(request, 400, "actions must be review, block or review,block")
        try:
            limit = int(request.query.get("limit", str(QUEUE_PAGE)))
            if not 1 <= limit <= 500:
                raise ValueError
        except ValueError:
            return error(request, 400, "limit must be an integer from 1 to 500")
        total, q = self.feed.window.queue(actions, limit)
        return json_response({"queue": q, "open": total, "reviewer": request.cookies.get(REVIEWER_COOKIE, "")})

    async def verdict(self, request: web.Request) -> web.Response:
        try:
            form = verdict_form(await json_body(request))
            fb = self._feedback(form, reviewer(request))
        except FormError as e:
            return error(request, e.status, e.message)
        doc = fb.model_dump(mode="json", by_alias=True)
        await self.feed.publish("feedback", fb.item_id.encode(), orjson.dumps(doc))
        self.feed.window.add_feedback(doc)  # leaves the queue at once
        return json_response({"feedback": doc})

    def _feedback(self, form: dict[str, str], who: str) -> Feedback:
        w = self.feed.window
        if form["hit_id"]:
            hit = w.hit(form["hit_id"])
            if hit is None:
                raise FormError(404, f"no moderation hit {form['hit_id']!r} in the queue")
            tax = hit.get("taxonomy") or {}
            r = w.result(hit["result_id"]) or self._result_of(hit, tax.get("name"))
            prop = form["property"] or self._property(r, tax.get("name"))
            decision = {"action": hit.get("action"), "label": hit.get("class_name")}
        else:
            in_window = w.result(form["result_id"])
            if in_window is None:
                raise FormError(404, f"result {form['result_id']!r} is not in the console's recent window")
            r = in_window
            labels = r.get("labels") or {}
            prop = form["property"] or next(iter(labels), "")
            if prop not in labels:
                raise FormError(400, f"property {prop!r} is not one the result labels ({sorted(labels)})")
            tax = (r.get("taxonomies") or [None])[0] or {}
            actions = [p.get("action") for p in ((r.get("detail") or {}).get("policy") or {}).values()]
            decision = {"action": max(actions, key=("allow", "review", "block").index) if actions else None,
                        "label": labels.get(prop)}
        try:
            return Feedback.model_validate({
                "feedback_id": uuid.uuid4().hex, "item_id": r["item_id"], "item_kind": r.get("item_kind", "object"),
                "result_id": r["result_id"], "classifier": r["classifier"], "class": r.get("class", ""),
                "property": prop, "taxonomy": tax or None,
                "index_version": (r.get("index_version") or {}).get(prop), "decision": decision,
                "verdict": form["verdict"], "label": form["label"] or None, "reviewer": who,
                "at": int(time.time() * 1000), "note": form["note"]})
        except ValueError as e:
            raise FormError(400, f"not a valid verdict: {e}") from None

    def _result_of(self, hit: dict[str, Any], taxonomy: str | None) -> dict[str, Any]:
        """What a verdict needs of a hit's result when the result is not in the window (it has left a window
        full of newer results, or arrived before the feed's start): the one classifier of the item's kind that
        scores with the hit's taxonomy."""
        kind = hit.get("item_kind", "object")
        found = {c.name: c for cs in self.rt.state.snapshot().classifiers_by_class.values() for c in cs
                 if taxonomy in c.spec.taxonomies and (c.spec.type == "media") == (kind == "media")}
        if len(found) != 1:
            raise FormError(409, f"the result of {hit.get('item_id')!r} is not in the console's window and "
                            f"{len(found)} classifiers use taxonomy {taxonomy!r}: judge it from its result instead")
        c = next(iter(found.values()))
        return {"item_id": hit.get("item_id"), "item_kind": kind, "result_id": f"{hit.get('item_id')}/{c.name}",
                "classifier": c.name, "class": c.spec.class_, "labels": {}}

    def _property(self, r: dict[str, Any], taxonomy: str | None) -> str:
        """The property the classifier labels from ``taxonomy`` (classifyProperties[i] <- taxonomies[i])."""
        for cs in self.rt.state.snapshot().classifiers_by_class.values():
            for c in cs:
                if c.name == r.get("classifier") and taxonomy in c.spec.taxonomies:
                    props, taxes = c.spec.classifyProperties, c.spec.taxonomies
                    return props[taxes.index(taxonomy)] if len(taxes) > 1 else (props[0] if props else "")
        return next(iter(r.get("labels") or {}), "")

    async def verdicts(self, request: web.Request) -> web.Response:
        rows = sorted(self.feed.accuracy.verdicts(), key=lambda f: -f.at)[:500]
        return json_response({"verdicts": [f.model_dump(mode="json", by_alias=True) for f in rows],
                              "rejected": REJECTED})

    async def retract(self, request: web.Request) -> web.Response:
        """Withdraw every verdict on a result's property (and so the example learned from them)."""
        try:
            body = await json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("result_id"), str) or not body["result_id"]:
                raise FormError(400, "'result_id' is required")
            prop = body.get("property", "")
            if not isinstance(prop, str):
                raise FormError(400, "'property' must be a string")
            found = next((f for f in self.feed.accuracy.verdicts()
                          if f.result_id == body["result_id"] and f.property == prop), None)
            if found is None:
                raise FormError(404, "no verdict on that result and property")
        except FormError as e:
            return error(request, e.status, e.message)
        fb = found.model_copy(update={"op": "retract", "feedback_id": uuid.uuid4().hex, "at": int(time.time() * 1000),
                                      "reviewer": reviewer(request)})
        doc = fb.model_dump(mode="json", by_alias=True)
        await self.feed.publish("feedback", fb.item_id.encode(), orjson.dumps(doc))
        return json_response({"feedback": doc})
