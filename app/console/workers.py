"""The deployment's counters on the overview: every worker's latest report (``workers`` topic) summed.

A worker is *live* while its latest report is younger than three of its report intervals; the
totals count live workers only (a Prometheus counter restarts with its process, so a worker gone
for good no longer adds to what the running deployment did). Silent workers keep a row for an
hour, marked, so a crash loop on one machine stays visible.

    >>> from app.schemas.workers import WorkerReport
    >>> a = WorkerReport(worker="a", started_at=0, at=10_000, interval=5, agent_restarts={"feedback": 2},
    ...                  inputs={"objects": 7}, results=14)
    >>> b = WorkerReport(worker="b", started_at=0, at=9_000, interval=5, inputs={"objects": 3}, results=6)
    >>> gone = WorkerReport(worker="c", started_at=0, at=1_000, interval=1, agent_restarts={"objects": 5})
    >>> c = cluster({"a": a, "b": b, "c": gone}, now_ms=12_000)
    >>> c["agent_restarts"], c["inputs"], c["results"], c["live"]
    (2, 10, 20, 2)
    >>> [(r["worker"], r["live"], r["agent_restarts"]) for r in c["workers"]]
    [('a', True, 2), ('b', True, 0), ('c', False, 5)]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.schemas.workers import WorkerReport

SILENT_AFTER = 3  # report intervals without a report: not counted
FORGET_AFTER_MS = 3_600_000  # silent workers' rows are shown this long


def is_live(r: WorkerReport, now_ms: int) -> bool:
    return now_ms - r.at <= SILENT_AFTER * r.interval * 1000


def cluster(reports: Mapping[str, WorkerReport], now_ms: int) -> dict[str, Any]:
    """Totals over the live workers and one row per worker (by id; silent ones for an hour)."""
    rows = []
    totals = {"agent_restarts": 0, "inputs": 0, "results": 0, "dead_letters": 0}
    for wid in sorted(reports):
        r = reports[wid]
        live = is_live(r, now_ms)
        if not live and now_ms - r.at > FORGET_AFTER_MS:
            continue
        counts = {"agent_restarts": r.agent_restarts_total(), "inputs": sum(r.inputs.values()),
                  "results": r.results, "dead_letters": r.dead_letters}
        rows.append({"worker": r.worker, "host": r.host, "web_port": r.web_port, "live": live,
                     "age_s": round(max(0, now_ms - r.at) / 1000, 1), "started_at": r.started_at,
                     "restarts_by_agent": dict(sorted(r.agent_restarts.items())), **counts})
        if live:
            for k, n in counts.items():
                totals[k] += n
    return {**totals, "live": sum(1 for row in rows if row["live"]), "workers": rows}
