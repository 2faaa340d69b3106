"""The overview counts the whole deployment: two real workers on the real broker, one browser.

Each worker republishes its counters on the compacted ``workers`` topic
(``app/service/worker_report.py``); every worker's console sums the live workers' reports. A third
member of the deployment, whose feedback agent restarted twice, reports on the topic like any worker
(its report is what a crashing worker publishes: ``labelstream_agent_restarts_total`` per agent; no
agent here is made to crash, an agent crash is a batch without output). The first worker's overview,
in a browser, shows the deployment's count and one row per worker; when the second worker stops
normally (a tombstone) and the third withdraws its report, their rows and counts leave the overview.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from app.devtools import browser as chromium
from app.devtools import console_scenario as sc
from app.schemas.workers import WorkerReport

pytestmark = pytest.mark.kafka
KEY = "console-cluster-key-0123456789"


def restarts(w) -> int:
    """What the worker itself counted (its own /health/ready: one process's counter)."""
    return int((w.health() or {}).get("agent_restarts") or 0)


async def test_every_workers_restarts_are_on_one_workers_overview(stack, browser):
    await stack.produce("training", sc.training())
    env = {"LABELSTREAM_API_KEYS": KEY, "LABELSTREAM_WORKER_REPORT_INTERVAL": "1"}
    workers = {"a": stack.worker("a", LABELSTREAM_WORKER_ID="a", **env),
               "b": stack.worker("b", LABELSTREAM_WORKER_ID="b", **env)}
    for w in workers.values():
        await stack.wait_ready(w, min_training=len(sc.training()))
    assert all(restarts(w) == 0 for w in workers.values())

    # Another member of the deployment reports two restarts of its feedback agent.
    now = int(time.time() * 1000)
    report = WorkerReport(worker="c", host="elsewhere", pid=1, started_at=now - 60_000, at=now, interval=60,
                          agent_restarts={"feedback": 2}, inputs={"feedback": 3})
    await stack.produce("workers", [("c", report.model_dump(mode="json"))])

    # The first worker's overview: the deployment's count, and a row per worker.
    base = f"http://127.0.0.1:{workers['a'].web_port}/console"
    chromium.login(browser, base, KEY, "ops")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)

    def row(name: str, cell: str) -> str:
        return chromium.text(browser, f'#workers tr[data-worker="{name}"] .{cell}')

    wait.until(lambda b: chromium.text(b, "#restarts") == "2" and row("c", "restarts") == "2")
    assert (row("a", "state"), row("b", "state"), row("c", "state")) == ("live", "live", "live")
    assert (row("a", "restarts"), row("b", "restarts")) == ("0", "0")
    assert all(restarts(w) == 0 for w in workers.values()), "the count came over the topic"

    # The second worker stops normally (its tombstone takes its row off); the third withdraws its report.
    await asyncio.to_thread(workers["b"].stop)
    wait.until(lambda b: not b.find_elements("css selector", 'tr[data-worker="b"]'))
    await stack.produce("workers", [("c", None)])
    wait.until(lambda b: not b.find_elements("css selector", '#workers tr[data-worker="c"]'))
    assert chromium.text(browser, "#restarts") == "0" and row("a", "state") == "live"
