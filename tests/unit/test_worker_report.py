"""A worker's report carries its own counters: an agent restart counted in the process is in the next report."""

from app.service.metrics import AGENT_RESTARTS
from app.service.worker_report import WorkerReporter
from app.settings import Settings


def test_an_agent_restart_is_in_the_next_report():
    reporter = WorkerReporter(Settings(worker_id="w1"))
    before = reporter.report().agent_restarts.get("report-test", 0)
    AGENT_RESTARTS.labels("report-test").inc()
    after = reporter.report()
    assert after.worker == "w1" and after.agent_restarts["report-test"] == before + 1
