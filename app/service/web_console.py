"""The console: web pages for moderation and content teams, served by the worker at ``/console``.

Pages are one static shell (``app/console/static/``: HTML, CSS, JS, no CDN) that calls the
JSON endpoints below; the numbers come from the worker's :class:`ConsoleFeed` (``console_feed.py``)
and the pure view-model in ``app/console/``. Behind the API keys: the login form stores the key
in an HttpOnly, SameSite=Strict cookie that the HTTP guard accepts under ``/console`` only.

Every endpoint refuses bad input with a 4xx and ``{"error", "message"}`` (the guard's shape),
which the page shows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from html import escape
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from app.classify.accuracy import REJECTED
from app.console.charts import sparkline, timeline
from app.console.diff import taxonomy_diff
from app.console.forms import FormError, job_form, republish_form, reviewer_name, verdict_form
from app.console.window import FILTERS, decode_original, matches
from app.schemas.feedback import Feedback
from app.service.console_feed import ConsoleFeed
from app.service.httpguard import CONSOLE_COOKIE, error_response, key_matches
from app.service.metrics import agent_restarts
from app.service.runtime import Runtime

STATIC = Path(__file__).resolve().parent.parent / "console" / "static"
REVIEWER_COOKIE = "labelstream_console_reviewer"
PAGES = ("overview", "live", "review", "dead", "models", "media", "jobs")
REPUBLISH_TOPICS = ("objects", "media", "training", "feedback")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _error(request: web.Request, status: int, message: str) -> web.Response:
    return error_response(request.path, status, message)


def shell(page: str) -> str:
    """The HTML of a page: navigation, an empty ``<main>`` the script fills, the message line."""
    nav = "".join(f'<a href="/console{"" if p == "overview" else "/" + p}" class="{"on" if p == page else ""}">'
                  f'{p.capitalize()}</a>' for p in PAGES if p != "media")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Labelstream · {page}</title>'
            f'<link rel="stylesheet" href="/console/static/console.css">'
            f'<link rel="icon" href="data:,"></head><body data-page="{page}"><header><b>Labelstream</b><nav>{nav}</nav>'
            f'<span id="who"></span><a href="/console/logout">log out</a></header>'
            f'<p id="msg" role="alert" hidden></p><main id="main"></main>'
            f'<script src="/console/static/console.js"></script></body></html>')


def login_page(message: str = "") -> str:
    msg = f'<p id="msg" role="alert">{escape(message)}</p>' if message else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Labelstream · log in</title>'
            '<link rel="stylesheet" href="/console/static/console.css"><link rel="icon" href="data:,"></head>'
            '<body class="login">'
            f'<form method="post" action="/console/login"><h1>Labelstream console</h1>{msg}'
            '<label>API key <input name="key" type="password" autocomplete="current-password" autofocus></label>'
            '<label>Your name (on verdicts) <input name="reviewer" autocomplete="username"></label>'
            '<button type="submit">Log in</button></form></body></html>')


class Console:
    def __init__(self, rt: Runtime, feed: ConsoleFeed):
        self.rt, self.feed = rt, feed
        self.closing = False  # the web server is stopping: live streams end

    async def on_shutdown(self, app: web.Application) -> None:
        self.closing = True

    # -- login ----------------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.Response:
        return web.Response(text=login_page(), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        key, reviewer = str(form.get("key", "")).strip(), str(form.get("reviewer", "")).strip()
        keys = self.rt.settings.api_key_set()
        try:
            reviewer = reviewer_name(reviewer)
        except FormError as e:
            return web.Response(text=login_page(e.message), status=e.status, content_type="text/html")
        if keys and (not key or not key_matches(key, keys)):
            return web.Response(text=login_page("that API key is not valid" if key else "enter an API key"),
                                status=401, content_type="text/html")
        resp = _redirect("/console")
        secure = request.secure
        if keys:
            resp.set_cookie(CONSOLE_COOKIE, key, path="/console", httponly=True, samesite="Strict", secure=secure)
        resp.set_cookie(REVIEWER_COOKIE, reviewer, path="/console", samesite="Strict", secure=secure)
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        resp = _redirect("/console/login")
        resp.del_cookie(CONSOLE_COOKIE, path="/console")
        resp.del_cookie(REVIEWER_COOKIE, path="/console")
        return resp

    def page(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=shell(name), content_type="text/html")
        return handler

    # -- overview -------------------------------------------------------------------------
    async def overview(self, request: web.Request) -> web.Response:
        rates = self.feed.rates()[-120:]
        snap = self.rt.state.snapshot()
        acc = self.feed.accuracy
        return _json({
            "now": {"in": round(rates[-1][1], 1) if rates else 0.0, "out": round(rates[-1][2], 1) if rates else 0.0},
            "charts": {"in": sparkline([r[1] for r in rates]), "out": sparkline([r[2] for r in rates])},
            "totals": {"in": self.feed.samples[-1][1] if self.feed.samples else 0,
                       "out": self.feed.samples[-1][2] if self.feed.samples else 0},
            "lag": self.feed.lag,
            "dead_letters": dict(self.feed.window.dead_reasons.most_common()),
            "agent_restarts": agent_restarts(),
            "indexes": self.rt.state.indexes.stats(),
            "taxonomies": {n: t.version for n, t in sorted(snap.taxonomies.items())},
            "classifiers": sorted(c.name for cs in snap.classifiers_by_class.values() for c in cs),
            "accuracy": [{"classifier": c, "version": v, "actions": acts,
                          "confusion": acc.confusion().get((c, v), {})}
                         for (c, v), acts in sorted(acc.precision().items())],
            "feedback_records": acc.records, "seen": dict(self.feed.window.counts), "caught_up": self.feed.caught_up.is_set(),
        })

    # -- live results ---------------------------------------------------------------------
    def _filters(self, request: web.Request) -> dict[str, str]:
        f = {k: request.query.get(k, "") for k in FILTERS}
        if any(len(v) > 256 for v in f.values()):
            raise FormError(400, "a filter is longer than 256 characters")
        if f["action"] and f["action"] not in ("allow", "review", "block"):
            raise FormError(400, "action must be allow, review or block")
        return f

    async def results(self, request: web.Request) -> web.Response:
        try:
            f = self._filters(request)
            limit = int(request.query.get("limit", "200"))
            if not 1 <= limit <= 1000:
                raise ValueError
        except FormError as e:  # a ValueError too: first
            return _error(request, e.status, e.message)
        except ValueError:
            return _error(request, 400, "limit must be an integer from 1 to 1000")
        return _json({"results": self.feed.window.results(f, limit), "window": len(self.feed.window._results)})

    async def result(self, request: web.Request) -> web.Response:
        rid = request.query.get("id", "")
        if not rid:
            return _error(request, 400, "'id' (a result_id) is required")
        r = self.feed.window.result(rid)
        if r is None:
            return _error(request, 404, f"result {rid!r} is not in the console's recent window")
        return _json(r)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        try:
            f = self._filters(request)
        except FormError as e:
            return _error(request, e.status, e.message)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.feed.subscribers.add(q)
        try:
            await resp.write(b": connected\n\n")
            idle = 0
            # aiohttp does not cancel a handler whose client left, and waits for handlers when the
            # worker stops: look at the connection (and the stop) every second.
            while not self.closing and request.transport is not None and not request.transport.is_closing():
                try:
                    row = await asyncio.wait_for(q.get(), 1.0)
                except asyncio.TimeoutError:
                    idle += 1
                    if idle % 15 == 0:
                        await resp.write(b": keep-alive\n\n")
                    continue
                if matches(row, f):
                    await resp.write(b"data: " + orjson.dumps(row) + b"\n\n")
        except ConnectionResetError:
            pass
        finally:
            self.feed.subscribers.discard(q)
        return resp

    # -- review queue and verdicts --------------------------------------------------------
    async def review(self, request: web.Request) -> web.Response:
        actions = tuple(a for a in request.query.get("actions", "review").split(",") if a)
        if not actions or any(a not in ("review", "block") for a in actions):
            return _error(request, 400, "actions must be review, block or review,block")
        q = self.feed.window.review_queue(actions, limit=500)
        return _json({"queue": q, "reviewer": request.cookies.get(REVIEWER_COOKIE, "")})

    async def verdict(self, request: web.Request) -> web.Response:
        try:
            form = verdict_form(await self._body(request))
            fb = self._feedback(form, request.cookies.get(REVIEWER_COOKIE) or "console")
        except FormError as e:
            return _error(request, e.status, e.message)
        doc = fb.model_dump(mode="json", by_alias=True)
        await self.feed.publish("feedback", fb.item_id.encode(), orjson.dumps(doc))
        self.feed.window.add_feedback(doc)  # leaves the queue at once
        return _json({"feedback": doc})

    async def _body(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise FormError(400, "send a JSON body") from None

    def _feedback(self, form: dict[str, str], reviewer: str) -> Feedback:
        w = self.feed.window
        if form["hit_id"]:
            hit = w.hit(form["hit_id"])
            if hit is None:
                raise FormError(404, f"no moderation hit {form['hit_id']!r} in the queue")
            r = w.result(hit["result_id"])
            if r is None:
                raise FormError(409, "the hit's result is not in the console's window yet: try again in a moment")
            tax = hit.get("taxonomy") or {}
            prop = form["property"] or self._property(r, tax.get("name"))
            decision = {"action": hit.get("action"), "label": hit.get("class_name")}
        else:
            r = w.result(form["result_id"])
            if r is None:
                raise FormError(404, f"result {form['result_id']!r} is not in the console's recent window")
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
                "verdict": form["verdict"], "label": form["label"] or None, "reviewer": reviewer,
                "at": int(time.time() * 1000), "note": form["note"]})
        except ValueError as e:
            raise FormError(400, f"not a valid verdict: {e}") from None

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
        return _json({"verdicts": [f.model_dump(mode="json", by_alias=True) for f in rows], "rejected": REJECTED})

    async def retract(self, request: web.Request) -> web.Response:
        """Withdraw every verdict on a result's property (and so the example learned from them)."""
        try:
            body = await self._body(request)
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
            return _error(request, e.status, e.message)
        fb = found.model_copy(update={"op": "retract", "feedback_id": uuid.uuid4().hex, "at": int(time.time() * 1000),
                                      "reviewer": request.cookies.get(REVIEWER_COOKIE) or "console"})
        doc = fb.model_dump(mode="json", by_alias=True)
        await self.feed.publish("feedback", fb.item_id.encode(), orjson.dumps(doc))
        return _json({"feedback": doc})

    # -- dead letters ---------------------------------------------------------------------
    async def dead(self, request: web.Request) -> web.Response:
        reason = request.query.get("reason") or None
        rows = [{**d, "original": decode_original(d), "republished": d["id"] in self.feed.window.republished}
                for d in self.feed.window.dead_letters(reason, 200)]
        return _json({"reasons": dict(self.feed.window.dead_reasons.most_common()), "dead_letters": rows,
                      "topics": list(REPUBLISH_TOPICS)})

    async def republish(self, request: web.Request) -> web.Response:
        try:
            form = republish_form(await self._body(request), REPUBLISH_TOPICS, self.rt.settings.max_payload_bytes)
        except FormError as e:
            return _error(request, e.status, e.message)
        await self.feed.publish(form["topic"], form["key"], form["value"])
        if isinstance(form["dead_letter"], int):
            self.feed.window.republished.add(form["dead_letter"])
        return _json({"topic": form["topic"], "key": form["key"].decode(errors="replace")})

    # -- classifiers, taxonomies, diff ----------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        snap = self.rt.state.snapshot()
        classifiers = [c.spec.model_dump(mode="json", by_alias=True, exclude={"op"})
                       for cs in snap.classifiers_by_class.values() for c in cs]
        taxonomies = {}
        for name in sorted(set(snap.taxonomies) | set(self.feed.taxonomies)):
            versions = self.feed.taxonomies.get(name, {})
            current = snap.taxonomies.get(name)
            taxonomies[name] = {"current": current.version if current else None, "versions": sorted(versions),
                                "document": versions.get(current.version) if current else None}
        return _json({"classifiers": sorted(classifiers, key=lambda c: c["name"]), "taxonomies": taxonomies})

    async def diff(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        try:
            a, b = int(request.query.get("from", "")), int(request.query.get("to", ""))
        except ValueError:
            return _error(request, 400, "'from' and 'to' must be version numbers")
        versions = self.feed.taxonomies.get(name)
        if not versions:
            return _error(request, 404, f"no taxonomy {name!r}")
        missing = [v for v in (a, b) if v not in versions]
        if missing:
            return _error(request, 404, f"taxonomy {name!r} has no version {missing[0]} on the training topic "
                          f"(available: {sorted(versions)})")
        return _json(taxonomy_diff(versions[a], versions[b]))

    # -- media ------------------------------------------------------------------------------
    async def media(self, request: web.Request) -> web.Response:
        rid = request.query.get("id", "")
        r = self.feed.window.result(rid) if rid else None
        if r is None:
            rows = [s for s in self.feed.window.results({}, 1000) if s["item_kind"] == "media"][:50]
            if rid:
                return _error(request, 404, f"media result {rid!r} is not in the console's recent window")
            return _json({"recent": rows})
        if r.get("method") != "media":
            return _error(request, 400, f"{rid!r} is a {r.get('method')} result, not a media result")
        d = r.get("detail") or {}
        frames = (((d.get("hive") or {}).get("status") or {}).get("response") or {}).get("output") or []
        clips = [{"class": c["name"], **clip} for c in (d.get("twelvelabs") or {}).get("classes", [])
                 for clip in c.get("clips") or []]
        return _json({"result": r, "timeline": timeline(frames, clips, float(d.get("duration") or 0)),
                      "frames": frames, "clips": clips})

    # -- jobs (the worker's /v1/classifications, with the caller's key) --------------------------
    async def jobs(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body: Any = job_form(await self._body(request))
            except FormError as e:
                return _error(request, e.status, e.message)
        else:
            body = None
        key = request.cookies.get(CONSOLE_COOKIE) or ""
        s = self.rt.settings
        url = f"http://127.0.0.1:{s.web_port}/v1/classifications"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.request(request.method, url, json=body,
                                        headers={"Authorization": f"Bearer {key}"} if key else {}) as r:
                    data = await r.read()
                    status = r.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            return _error(request, 502, f"the jobs API did not answer: {e!r}")
        if status == 404 or status == 405:
            return _error(request, 404, "this worker has no jobs API (/v1/classifications) yet")
        try:
            parsed = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            return _error(request, 502, "the jobs API answered something that is not JSON")
        if status >= 400:
            errs = parsed.get("error") if isinstance(parsed, dict) else None
            msg = errs[0].get("message") if isinstance(errs, list) and errs and isinstance(errs[0], dict) else str(parsed)
            return _error(request, status, str(msg))
        return _json(parsed, status)


def register(rt: Runtime) -> ConsoleFeed | None:
    """The console's routes on the worker's web server and its feed as a worker task."""
    if not rt.settings.console_enabled or not rt.settings.web_enabled:
        return None
    feed = ConsoleFeed(rt.settings, rt.sink.publish)
    c = Console(rt, feed)
    web_app = rt.app.web.web_app  # type: ignore[attr-defined]
    web_app.on_shutdown.append(c.on_shutdown)
    router = web_app.router
    router.add_get("/console/login", c.login_form)
    router.add_post("/console/login", c.login)
    router.add_get("/console/logout", c.logout)
    router.add_static("/console/static", STATIC)
    router.add_get("/console", c.page("overview"))
    for p in PAGES[1:]:
        router.add_get(f"/console/{p}", c.page(p))
    api = {"overview": c.overview, "results": c.results, "result": c.result, "stream": c.stream,
           "review": c.review, "verdicts": c.verdicts, "dead": c.dead, "models": c.models, "diff": c.diff,
           "media": c.media, "jobs": c.jobs}
    for name, handler in api.items():
        router.add_get(f"/console/api/{name}", handler)
    for name, handler in {"verdict": c.verdict, "retract": c.retract, "republish": c.republish,
                          "jobs": c.jobs}.items():
        router.add_post(f"/console/api/{name}", handler)

    @rt.app.task
    async def console_feed() -> None:
        await feed.run()

    return feed
