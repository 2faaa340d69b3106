"""Prometheus metrics of a worker, served at ``GET /metrics`` on the worker's web port.

Counts what every input became (results per method, dead letters per reason, policy hits
per action), how long classification batches take, and agent restarts (each one is a bug:
a batch that escaped per-item isolation), so an operator sees at a glance whether bad input
is rising, a classifier slows down or something crashed.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INPUTS = Counter("labelstream_inputs_total", "records consumed from input topics", ["topic"])
RESULTS = Counter("labelstream_results_total", "results published", ["method"])
DEAD_LETTERS = Counter("labelstream_dead_letters_total", "dead letters published", ["reason"])
HITS = Counter("labelstream_moderation_hits_total", "moderation policy hits published", ["action"])
SEND_ERRORS = Counter("labelstream_send_errors_total", "outputs the producer failed to deliver (after its retries)")
AGENT_RESTARTS = Counter("labelstream_agent_restarts_total", "agent crashes (Faust restarts the agent)", ["agent"])
EXPIRED = Counter("labelstream_expired_total", "table entries removed by the sweeper (TTL, retention)", ["table"])
GC_FROZEN = Gauge("labelstream_gc_frozen_objects", "objects moved out of the cyclic GC's reach once the training "
                  "replica caught up (app/service/worker.py)")
FETCH_FLOWING = Gauge("labelstream_fetch_flowing", "1 while the worker's consumer batches its fetches (records "
                      "flowing), 0 while it long-polls (app/service/fetchpace.py)")
FETCH_SWITCHES = Counter("labelstream_fetch_pace_switches_total", "switches of the consumer's fetch pacing", ["to"])
FETCHES = Counter("labelstream_fetches_total", "the worker consumer's fetch requests: full (every partition) or "
                  "incremental (a fetch session: only changed partitions, app/service/fetchsession.py)", ["kind"])
FETCH_PARTITIONS = Counter("labelstream_fetch_partitions_total", "partitions the worker consumer fetched (wanted) "
                           "and those its requests named (sent; the rest were implied by the fetch session)", ["kind"])
FETCH_SESSION_RESETS = Counter("labelstream_fetch_session_resets_total", "fetch sessions dropped (a failed request, "
                               "or the broker refused or evicted the session): the next fetch is full")
BATCH_SECONDS = Histogram("labelstream_batch_seconds", "time to classify one batch", ["agent"],
                          buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))


def by_label(counter: Counter) -> dict[str, int]:
    """A counter with one label: its value per label value (what this process counted since it started)."""
    return {next(iter(s.labels.values()), ""): int(s.value)
            for m in counter.collect() for s in m.samples if s.name.endswith("_total")}


def agent_restarts() -> int:
    """Agent crashes since the worker started (0 unless something is broken)."""
    return int(sum(s.value for m in AGENT_RESTARTS.collect() for s in m.samples if s.name.endswith("_total")))
