"""The worker's HTTP endpoints (Faust web, aiohttp): health and Prometheus metrics.

- ``GET /health/live``: the process and its event loop answer.
- ``GET /health/ready``: 200 only when the consumer has its partitions, table recovery is
  complete and the training replica has caught up; 503 with the reasons otherwise. With API
  keys configured, a probe without a key gets only ``{"ready": ...}`` (``httpguard.py``). With
  a key (or none configured): the checks and the keys per table (``tables``, counted off the
  event loop; ``tables_age_s``: how old that count is, ``?fresh=1`` for one counted now).
- ``GET /metrics``: Prometheus text format (``app/service/metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.service.httpguard import authenticated
from app.service.metrics import agent_restarts
from app.service.runtime import Runtime


def _check(fn: Callable[[], bool]) -> bool:
    try:
        return bool(fn())
    except Exception:  # noqa: BLE001 - a part not started yet (the consumer before the worker's start) is not ready
        return False


def readiness(rt: Runtime) -> dict[str, Any]:
    app, snap = rt.app, rt.state.snapshot()
    checks = {
        "consumer_assigned": _check(lambda: bool(app.consumer.assignment())),
        "not_rebalancing": _check(lambda: not app.rebalancing),
        "tables_recovered": _check(lambda: app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
                                   and not app.in_recovery),
        "training_replica_caught_up": rt.replica.caught_up.is_set(),
    }
    return {
        "ready": all(checks.values()),
        "checks": checks,
        "training_records_applied": rt.replica.applied,
        "classifiers": sum(len(v) for v in snap.classifiers_by_class.values()),
        "taxonomies": sorted(snap.taxonomies),
        "agent_restarts": agent_restarts(),  # each one is a bug: a batch that escaped per-item isolation
    }


async def _cached_body(request: Any) -> bytes:
    return bytes(await request.read())


def register(rt: Runtime) -> None:
    # The guard has read (and checked) the body already: Faust's driver reads the raw stream,
    # which is then empty; aiohttp's read() returns the cached bytes.
    rt.app.web.read_request_content = _cached_body  # type: ignore[method-assign]

    @rt.app.page("/health/live")
    class Live(View):
        async def get(self, request: Request) -> Response:
            return self.json({"live": True})

    @rt.app.page("/health/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            body = readiness(rt)
            status = 200 if body["ready"] else 503
            if not authenticated(request):
                return self.json({"ready": body["ready"]}, status=status)
            # keys this worker holds per table (its partitions): what changelog recovery restored.
            # Counted in a thread after the checks; a count over 50 ms serves 10x its time (app/service/table_sizes.py)
            counted = await rt.tables.counts.sizes(fresh=request.query.get("fresh") in ("1", "true"))
            body["tables"], body["tables_age_s"] = counted.sizes, round(counted.age, 3)
            return self.json(body, status=status)

    @rt.app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
