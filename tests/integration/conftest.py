"""Integration fixtures: the real local broker (started by ``make test``) and real workers.

Every test gets its own app id and topic prefix, so tests never see each other's records
even though they share one broker.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app import clients
from app.admin import ensure_topics
from app.localkafka import port_open
from app.process import WorkerProcess
from app.settings import Settings

BROKER = os.environ.get("LABELSTREAM_BROKER")


@pytest.fixture(scope="session")
def broker() -> str:
    if not BROKER:
        pytest.fail("integration tests need the real broker: run them with 'make test' (or set LABELSTREAM_BROKER)")
    port = int(BROKER.rsplit(":", 1)[1])
    assert port_open(port), f"no broker answers at {BROKER}: 'make test' starts one"
    return BROKER


@dataclass
class Stack:
    """One isolated deployment: a topic prefix, an app id, and its workers."""

    settings: Settings
    env: dict[str, str]
    root: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, name: str = "w", **env: str) -> WorkerProcess:
        w = WorkerProcess({**self.env, "LABELSTREAM_DATA_DIR": str(self.root / name), **env},
                          self.root / f"{name}.log")
        self.workers.append(w)
        return w.start()

    async def produce(self, topic: str, records) -> int:
        return await clients.produce(topic, records, self.settings)

    async def collect(self, topic: str, n: int, timeout: float = 60.0, where=lambda k, v: True):
        return await clients.collect(topic, n, timeout, settings=self.settings, where=where)

    async def wait_ready(self, w: WorkerProcess, timeout: float = 90.0, min_training: int = 0) -> dict:
        return await asyncio.to_thread(w.wait_ready, timeout, min_training)


@pytest.fixture
async def stack(broker, tmp_path, request):
    run = uuid.uuid4().hex[:8]
    partitions = getattr(request, "param", None) or 2
    env = {
        "LABELSTREAM_BROKER": broker,
        "LABELSTREAM_APP_ID": f"ls-test-{run}",
        "LABELSTREAM_TOPIC_PREFIX": f"t{run}.",
        "LABELSTREAM_TOPIC_PARTITIONS": str(partitions),
        "LABELSTREAM_LOG_LEVEL": "info",
    }
    settings = Settings(broker=broker, app_id=env["LABELSTREAM_APP_ID"], topic_prefix=env["LABELSTREAM_TOPIC_PREFIX"],
                        topic_partitions=partitions)
    await ensure_topics(settings)
    s = Stack(settings, env, tmp_path)
    yield s
    for w in s.workers:
        await asyncio.to_thread(w.stop)
