"""The overview counts the whole deployment: two real workers on the real broker, one browser.

Each worker republishes its counters on the compacted ``workers`` topic
(``app/service/worker_report.py``); every worker's console sums the live workers' reports. An
agent restart is provoked for real: the training topic is made to refuse records over 100 bytes,
and a trusted reviewer's verdict makes the feedback agent publish a learned example there; the
broker's refusal escapes the agent's batch, Faust restarts the agent and the worker counts it
(``labelstream_agent_restarts_total``). The *other* worker's overview, in a browser, shows that
count as the deployment's and on the crashed worker's row; when the crashed worker stops, its
row (a tombstone on the topic) and its count leave the other worker's overview.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from selenium.webdriver.support.ui import WebDriverWait

from app.devtools import browser as chromium
from app.devtools import console_scenario as sc
from app.devtools.scenarios import until
from app.schemas.feedback import Decision, Feedback
from app.service.admin import bootstrap
from app.topics import BIG

pytestmark = pytest.mark.kafka
KEY = "console-cluster-key-0123456789"


async def set_max_message_bytes(settings, topic: str, value: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(topic),
                                                  {"max.message.bytes": value})])
    finally:
        await admin.close()


def restarts(w) -> int:
    """What the worker itself counted (its own /health/ready: one process's counter)."""
    return int((w.health() or {}).get("agent_restarts") or 0)


async def test_a_restart_on_one_worker_is_on_the_other_workers_overview(stack, browser):
    await stack.produce("training", sc.training())
    env = {"LABELSTREAM_API_KEYS": KEY, "LABELSTREAM_WORKER_REPORT_INTERVAL": "1"}
    workers = {"a": stack.worker("a", LABELSTREAM_WORKER_ID="a", **env),
               "b": stack.worker("b", LABELSTREAM_WORKER_ID="b", **env)}
    for w in workers.values():
        await stack.wait_ready(w, min_training=len(sc.training()))
    assert all(restarts(w) == 0 for w in workers.values())

    # A stored object, then the training topic refuses what the feedback agent will publish to it.
    await stack.produce("objects", [sc.comment("x1", sc.review_vector(1))])
    got = await stack.collect("results", 1, timeout=30, where=lambda k, v: v.get("result_id") == "x1/tone-knn")
    assert got and got[0][1]["labels"]["tone"] == "calm"
    await set_max_message_bytes(stack.settings, "training", "100")
    verdict = Feedback(feedback_id=uuid.uuid4().hex, item_id="x1", result_id="x1/tone-knn", classifier="tone-knn",
                       class_="Comment", property="tone", decision=Decision(label="calm"), verdict="relabel",
                       label="toxic", reviewer="lead", at=int(time.time() * 1000))
    await stack.produce("feedback", [("x1", verdict.model_dump(mode="json", by_alias=True))])
    assert await until(lambda: sum(restarts(w) for w in workers.values()) >= 1, timeout=60), \
        "no agent restart: " + "\n".join(w.tail(10) for w in workers.values())
    await set_max_message_bytes(stack.settings, "training", BIG)

    counts = {name: restarts(w) for name, w in workers.items()}
    crashed = max(counts, key=lambda n: counts[n])  # the one owning x1's partition
    other = next(n for n in workers if n != crashed)
    assert counts[crashed] >= 1 and counts[other] == 0, counts

    # The other worker's overview: the deployment's count, and the crashed worker's row.
    base = f"http://127.0.0.1:{workers[other].web_port}/console"
    chromium.login(browser, base, KEY, "ops")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)

    def row(name: str, cell: str) -> str:
        return chromium.text(browser, f'#workers tr[data-worker="{name}"] .{cell}')

    wait.until(lambda b: chromium.text(b, "#restarts") == str(counts[crashed]) and row(crashed, "restarts") == str(counts[crashed]))
    assert (row(crashed, "state"), row(other, "state"), row(other, "restarts")) == ("live", "live", "0")
    assert restarts(workers[other]) == 0, "the other worker's own counter never moved: the count came over the topic"

    # The crashed worker stops normally: its tombstone takes its row and its count off the overview.
    await asyncio.to_thread(workers[crashed].stop)
    wait.until(lambda b: not b.find_elements("css selector", f'#workers tr[data-worker="{crashed}"]'))
    assert chromium.text(browser, "#restarts") == "0" and row(other, "state") == "live"
