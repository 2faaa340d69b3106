"""A worker's own counters, republished every few seconds on the compacted ``workers`` topic.

Keyed by worker id (``LABELSTREAM_WORKER_ID``, else ``<host>:<web port>``); a null value (a
worker's last record when it stops normally) removes it. The console's overview sums the
counters over the workers whose latest report is recent (``app/console/workers.py``), so every
worker's overview shows the whole deployment's agent restarts, not only its own.

    >>> r = WorkerReport(worker="w1", host="h", pid=7, started_at=1, at=2, interval=5,
    ...                  agent_restarts={"feedback": 1}, inputs={"objects": 10}, results=20)
    >>> r.agent_restarts_total(), r.model_dump()["dead_letters"]
    (1, 0)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WorkerReport(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a newer worker may report more

    worker: str = Field(min_length=1, max_length=256, description="the worker id (the record's key)")
    host: str = Field("", max_length=256)
    pid: int = Field(0, ge=0)
    web_port: int | None = Field(None, description="where its console and API answer")
    started_at: int = Field(ge=0, description="when the worker process started, ms since epoch")
    at: int = Field(ge=0, description="when this report was made, ms since epoch")
    interval: float = Field(gt=0, description="seconds until the next report (a worker silent for 3 of these "
                            "is not counted)")
    agent_restarts: dict[str, int] = Field(default_factory=dict, description="agent crashes since start, per agent")
    inputs: dict[str, int] = Field(default_factory=dict, description="records consumed since start, per input topic")
    results: int = Field(0, ge=0, description="results published since start")
    dead_letters: int = Field(0, ge=0, description="dead letters published since start")

    def agent_restarts_total(self) -> int:
        return sum(self.agent_restarts.values())
