"""The overview's JSON: events/s in and out with sparklines, lag per partition, dead letters per
reason, agent restarts of the whole deployment (the live workers' reports on the ``workers`` topic
summed, with one row per worker), index and taxonomy versions in use, and the online accuracy."""

from __future__ import annotations

import time

from aiohttp import web

from app.console.charts import sparkline
from app.console.workers import cluster
from app.service.console_views.base import Route, Views, json_response


class Overview(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/overview", self.overview)]

    async def overview(self, request: web.Request) -> web.Response:
        feed = self.feed
        rates = feed.rates()[-120:]
        snap = self.rt.state.snapshot()
        acc = feed.accuracy
        workers = cluster(feed.worker_reports(), int(time.time() * 1000))
        return json_response({
            "now": {"in": round(rates[-1][1], 1) if rates else 0.0, "out": round(rates[-1][2], 1) if rates else 0.0},
            "charts": {"in": sparkline([r[1] for r in rates]), "out": sparkline([r[2] for r in rates])},
            "totals": {"in": feed.samples[-1][1] if feed.samples else 0,
                       "out": feed.samples[-1][2] if feed.samples else 0},
            "lag": feed.lag,
            "dead_letters": dict(feed.window.dead_reasons.most_common()),
            "agent_restarts": workers["agent_restarts"], "workers": workers["workers"],
            "indexes": self.rt.state.indexes.stats(),
            "taxonomies": {n: t.version for n, t in sorted(snap.taxonomies.items())},
            "classifiers": sorted(c.name for cs in snap.classifiers_by_class.values() for c in cs),
            "accuracy": [{"classifier": c, "version": v, "actions": acts,
                          "confusion": acc.confusion().get((c, v), {})}
                         for (c, v), acts in sorted(acc.precision().items())],
            "feedback_records": acc.records, "seen": dict(feed.window.counts), "caught_up": feed.caught_up.is_set(),
        })
