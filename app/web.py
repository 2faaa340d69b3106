"""Health endpoints on the worker's web server (Faust web, aiohttp).

- ``GET /health/live``: the process and its event loop answer.
- ``GET /health/ready``: 200 only when the consumer has its partitions, table recovery is
  complete and the training replica has caught up; 503 with the reasons otherwise.
"""

from __future__ import annotations

from faust.web import Request, Response, View

from app.main import app


def readiness() -> dict:
    from app import tables
    from app.live import replica, state

    checks = {
        "consumer_assigned": bool(app.consumer.assignment()) if app.consumer else False,
        "not_rebalancing": not app.rebalancing,
        "tables_recovered": app.tables.recovery.completed.is_set() and not app.in_recovery,
        "training_replica_caught_up": replica.caught_up.is_set(),
    }
    return {
        "ready": all(checks.values()),
        "checks": checks,
        "training_records_applied": replica.applied,
        "classifiers": sum(len(v) for v in state.snapshot().classifiers_by_class.values()),
        "taxonomies": sorted(state.snapshot().taxonomies),
        # keys this worker holds per table (its partitions): shows what changelog recovery restored
        "tables": {t.name: len(t) for t in (tables.training, tables.stored_objects)},
    }


@app.page("/health/live")
class Live(View):
    async def get(self, request: Request) -> Response:
        return self.json({"live": True})


@app.page("/health/ready")
class Ready(View):
    async def get(self, request: Request) -> Response:
        body = readiness()
        return self.json(body, status=200 if body["ready"] else 503)
