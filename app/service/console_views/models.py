"""Classifiers and taxonomies: what is in use (the model state) and every taxonomy version still
on the training topic, and the diff between two of them."""

from __future__ import annotations

from aiohttp import web

from app.console.diff import taxonomy_diff
from app.service.console_views.base import Route, Views, error, json_response


class Models(Views):
    def routes(self) -> list[Route]:
        return [("GET", "/console/api/models", self.models), ("GET", "/console/api/diff", self.diff)]

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
        return json_response({"classifiers": sorted(classifiers, key=lambda c: c["name"]), "taxonomies": taxonomies})

    async def diff(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        try:
            a, b = int(request.query.get("from", "")), int(request.query.get("to", ""))
        except ValueError:
            return error(request, 400, "'from' and 'to' must be version numbers")
        versions = self.feed.taxonomies.get(name)
        if not versions:
            return error(request, 404, f"no taxonomy {name!r}")
        missing = [v for v in (a, b) if v not in versions]
        if missing:
            return error(request, 404, f"taxonomy {name!r} has no version {missing[0]} on the training topic "
                         f"(available: {sorted(versions)})")
        return json_response(taxonomy_diff(versions[a], versions[b]))
