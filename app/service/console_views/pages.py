"""The console's HTML: one static shell per page (the script fills ``<main>`` from the JSON API),
and the login form that keeps the API key in an HttpOnly, SameSite=Strict cookie (the HTTP guard
accepts it under ``/console`` only).

    >>> 'data-page="review"' in shell("review"), 'href="/console/live"' in shell("review")
    (True, True)
    >>> "that key" in login_page("that key &")
    True
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from app.console.forms import FormError, reviewer_name
from app.service.console_views.base import REVIEWER_COOKIE, Route, Views, redirect
from app.service.httpguard import CONSOLE_COOKIE, key_matches

STATIC = Path(__file__).resolve().parents[2] / "console" / "static"
PAGES = ("overview", "live", "review", "dead", "models", "media", "jobs")


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


class Pages(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/login", self.login_form), ("POST", "/console/login", self.login),
                ("GET", "/console/logout", self.logout), ("GET", "/console", self.page("overview")),
                *[("GET", f"/console/{p}", self.page(p)) for p in PAGES[1:]]]

    async def login_form(self, request: web.Request) -> web.Response:
        return web.Response(text=login_page(), content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        key, name = str(form.get("key", "")).strip(), str(form.get("reviewer", "")).strip()
        keys = self.rt.settings.api_key_set()
        try:
            name = reviewer_name(name)
        except FormError as e:
            return web.Response(text=login_page(e.message), status=e.status, content_type="text/html")
        if keys and (not key or not key_matches(key, keys)):
            return web.Response(text=login_page("that API key is not valid" if key else "enter an API key"),
                                status=401, content_type="text/html")
        resp = redirect("/console")
        secure = request.secure
        if keys:
            resp.set_cookie(CONSOLE_COOKIE, key, path="/console", httponly=True, samesite="Strict", secure=secure)
        resp.set_cookie(REVIEWER_COOKIE, name, path="/console", samesite="Strict", secure=secure)
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        resp = redirect("/console/login")
        resp.del_cookie(CONSOLE_COOKIE, path="/console")
        resp.del_cookie(REVIEWER_COOKIE, path="/console")
        return resp

    def page(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=shell(name), content_type="text/html")
        return handler
