"""The other workers: who owns which partition of a table, and one hop of a request to them.

At every rebalance Faust's assignor gives each worker the web URL (``canonical_url``:
``LABELSTREAM_WEB_CANONICAL_URL``, else ``http://<web_host>:<web_port>``) of the worker that
owns each table partition (``app.router.table_metadata``, what ``@app.table_route`` uses). A
request for data in another worker's partition is sent there once, marked :data:`ROUTED`: a
routed request is answered where it lands, never forwarded again, so a layout that changes in
between costs an answer (503, try again), never a loop. Forwarded requests carry the caller's
key (the workers share their keys) and count against its rate limit where they land too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from faust.web import Request, Response, View
from yarl import URL

from app.service.runtime import Runtime

log = logging.getLogger(__name__)
ROUTED = "x-labelstream-routed"  # a forwarded request is answered where it lands: no second hop
#: Headers of one connection, not of the request: never forwarded.
_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"})
#: The caller's credentials, all a fan-out leg needs of its headers.
CREDENTIALS = ("authorization", "x-api-key")


class Peers:
    def __init__(self, rt: Runtime):
        self.rt, self.app = rt, rt.app

    def ready(self) -> bool:
        """Partitions assigned and recovered: what this worker holds is complete."""
        app = self.app
        try:
            return not (app.rebalancing or app.in_recovery
                        or not app.tables.recovery.completed.is_set())  # type: ignore[attr-defined]
        except AttributeError:  # before the worker started
            return False

    def active(self, table: str) -> set[int]:
        """This worker's partitions of ``table`` whose data it holds completely (none while it rebalances)."""
        if not self.ready():
            return set()
        topic = self.rt.tables.changelog(table)
        try:
            return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        except Exception:  # noqa: BLE001 - before the first assignment
            return set()

    def owners(self, table: str) -> dict[int, str]:
        """partition -> the URL of the worker that owns it, as of the last rebalance."""
        topic = self.rt.tables.changelog(table)
        try:
            meta = self.app.router.table_metadata(table)
        except Exception:  # noqa: BLE001 - before the first assignment
            return {}
        return {p: url for url, topics in meta.items() for p in topics.get(topic, [])}

    def is_here(self, url: str) -> bool:
        a, b = URL(url), self.app.conf.canonical_url
        return (a.host, a.port) == (b.host, b.port)

    @staticmethod
    def routed(request: Request) -> bool:
        return ROUTED in request.headers

    @staticmethod
    def credentials(request: Request) -> dict[str, str]:
        return {k: v for k, v in request.headers.items() if k.lower() in CREDENTIALS}

    async def forward(self, view: View, request: Request, url: str, timeout: float) -> Response | None:
        """The request, sent to the worker at ``url`` once; its answer as is. None: it could not be reached."""
        dest = URL(url)
        target = request.url.with_scheme(dest.scheme or "http").with_host(dest.host or "127.0.0.1") \
            .with_port(dest.port)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers[ROUTED] = "1"
        body = await request.read() if request.method in ("POST", "PUT", "PATCH") else None
        try:
            async with self.app.http_client.request(request.method, target, headers=headers, data=body,
                                                    timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                relayed = {k: v for k, v in r.headers.items() if k.lower() == "retry-after"}
                return view.bytes(await r.read(), content_type=r.content_type, status=r.status, headers=relayed)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("forwarding %s %s to %s failed: %r", request.method, request.url.path, url, e)
            return None

    async def post(self, url: str, path: str, query: Mapping[str, str], body: bytes, headers: Mapping[str, str],
                   timeout: float) -> tuple[int, Mapping[str, Any], bytes]:
        """``POST`` to another worker (a fan-out leg): status, headers, body. Raises aiohttp's errors."""
        target = URL(url).with_path(path).with_query(dict(query))
        async with self.app.http_client.post(target, data=body, headers={**headers, ROUTED: "1",
                                                                         "Content-Type": "application/json"},
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, dict(r.headers), await r.read()
