"""One isolated deployment on a shared broker: its own app id, topic prefix and workers.

Used by the integration tests (the ``stack`` fixture), the fault scenarios and the benchmarks,
so every one of them runs real worker processes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.devtools import clients
from app.devtools.process import WorkerProcess
from app.service.admin import ensure_topics
from app.settings import Settings


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

    async def produce(self, topic: str, records: Any) -> int:
        return await clients.produce(topic, records, self.settings)

    async def collect(self, topic: str, n: int, timeout: float = 60.0,
                      where: Callable[[Any, Any], bool] = lambda k, v: True) -> Any:
        return await clients.collect(topic, n, timeout, settings=self.settings, where=where)

    async def wait_ready(self, w: WorkerProcess, timeout: float = 90.0, min_training: int = 0) -> dict:
        return await asyncio.to_thread(w.wait_ready, timeout, min_training)


@contextlib.asynccontextmanager
async def deployment(broker: str, root: Path, partitions: int = 8, name: str = "ls-test",
                     **env: str) -> AsyncIterator[Stack]:
    """An isolated app id and topic prefix on ``broker``, its topics created; workers stopped at the end."""
    run = uuid.uuid4().hex[:8]
    full_env = {
        "LABELSTREAM_BROKER": broker,
        "LABELSTREAM_APP_ID": f"{name}-{run}",
        "LABELSTREAM_TOPIC_PREFIX": f"t{run}.",
        "LABELSTREAM_TOPIC_PARTITIONS": str(partitions),
        "LABELSTREAM_LOG_LEVEL": "info",
        **env,
    }
    settings = Settings(broker=broker, app_id=full_env["LABELSTREAM_APP_ID"],
                        topic_prefix=full_env["LABELSTREAM_TOPIC_PREFIX"], topic_partitions=partitions,
                        replication_factor=int(full_env.get("LABELSTREAM_REPLICATION_FACTOR", "1")),
                        min_insync_replicas=int(full_env.get("LABELSTREAM_MIN_INSYNC_REPLICAS", "1")))
    await ensure_topics(settings)
    s = Stack(settings, full_env, Path(root))
    try:
        yield s
    finally:
        for w in s.workers:
            await asyncio.to_thread(w.stop)
