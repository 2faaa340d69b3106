"""The console: web pages for moderation and content teams, served by the worker at ``/console``.

Pages are one static shell (``app/console/static/``: HTML, CSS, JS, no CDN) that calls the
JSON endpoints under ``/console/api/``; the numbers come from the worker's
:class:`~app.service.console_feed.ConsoleFeed` and the pure view-model in ``app/console/``.
Behind the API keys: the login form stores the key in an HttpOnly, SameSite=Strict cookie
that the HTTP guard accepts under ``/console`` only. Every endpoint refuses bad input with a
4xx and ``{"error", "message"}`` (the guard's shape), which the page shows.

One module per family of views:

| module | serves |
|---|---|
| ``pages.py`` | the HTML: login form, log in/out, each page's shell |
| ``overview.py`` | ``api/overview``: rates, lag, dead letters, agent restarts (every live worker's), versions, accuracy |
| ``live.py`` | ``api/results``, ``api/result`` (JSON) and ``api/stream`` (server-sent events) |
| ``review.py`` | ``api/review`` (the queue), ``api/verdict``, ``api/verdicts``, ``api/retract`` |
| ``dead_letters.py`` | ``api/dead``, ``api/republish`` |
| ``models.py`` | ``api/models`` (classifiers, taxonomies), ``api/diff`` |
| ``media.py`` | ``api/media`` (a video's timeline and frames) |
| ``jobs.py`` | ``api/jobs`` (the worker's ``/v1/classifications``, GET and POST) |
"""

from __future__ import annotations

from aiohttp import web

from app.service.console_feed import ConsoleFeed
from app.service.console_views.dead_letters import DeadLetters
from app.service.console_views.jobs import Jobs
from app.service.console_views.live import Live
from app.service.console_views.media import Media
from app.service.console_views.models import Models
from app.service.console_views.overview import Overview
from app.service.console_views.pages import STATIC, Pages
from app.service.console_views.review import Review
from app.service.runtime import Runtime
from app.service.worker_report import WorkerReporter

FAMILIES = (Pages, Overview, Live, Review, DeadLetters, Models, Media, Jobs)


def register(rt: Runtime, reporter: WorkerReporter | None = None) -> ConsoleFeed | None:
    """The console's routes on the worker's web server and its feed as a worker task (``reporter``: this
    worker's own counters, shown as they are now next to the other workers' reports)."""
    if not rt.settings.console_enabled or not rt.settings.web_enabled:
        return None
    feed = ConsoleFeed(rt.settings, rt.sink.publish, reporter.report if reporter is not None else None)
    stopping = [False]  # the web server is stopping: live streams end

    async def on_shutdown(app: web.Application) -> None:
        stopping[0] = True

    web_app = rt.app.web.web_app  # type: ignore[attr-defined]
    web_app.on_shutdown.append(on_shutdown)
    router = web_app.router
    router.add_static("/console/static", STATIC)
    for family in FAMILIES:
        for method, path, handler in family(rt, feed, lambda: stopping[0]).routes():
            if method == "GET":
                router.add_get(path, handler)  # and HEAD
            else:
                router.add_route(method, path, handler)

    @rt.app.task
    async def console_feed() -> None:
        await feed.run()

    return feed
