"""Prometheus metrics of a worker, served at ``GET /metrics`` on the worker's web port.

Counts what every input became (results per method, dead letters per reason, policy hits
per action) and how long classification batches take, so an operator sees at a glance
whether bad input is rising or a classifier slows down.
"""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from app.main import app

INPUTS = Counter("labelstream_inputs_total", "records consumed from input topics", ["topic"])
RESULTS = Counter("labelstream_results_total", "results published", ["method"])
DEAD_LETTERS = Counter("labelstream_dead_letters_total", "dead letters published", ["reason"])
HITS = Counter("labelstream_moderation_hits_total", "moderation policy hits published", ["action"])
BATCH_SECONDS = Histogram("labelstream_batch_seconds", "time to classify one batch", ["agent"],
                          buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))


@app.page("/metrics")
class Metrics(View):
    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
