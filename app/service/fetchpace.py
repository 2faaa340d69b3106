"""Adaptive fetch batching for Faust's consumer: short waits for fuller fetches while records flow.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and the default
``fetch_min_bytes=1``: the broker answers a fetch as soon as one record is there. Idle, that is
right (one request per 1.5 s, and a new record goes out at once). Under a steady load it is not:
at 1,000-2,000 events/s every fetch carries a handful of records, and each small batch pays the
whole per-batch cost again (a fetch round trip, the hand-over to the event loop, a thread hop, a
produce request): a paced event cost ~3x one from a backlog, which kept the worker near
saturation and p99 in the hundreds of ms (``bench/RESULTS.md``, "Latency at a fixed rate").

A fixed ``fetch_min_bytes`` with a short wait batches well but polls the broker every few ms
when idle (16-26 % of a core, measured). So the wait adapts, per fetcher, from what the last
fetch brought (:class:`FetchPace`):

- a fetch that returned records switches to **flowing**: ``fetch_min_bytes`` =
  :data:`FLOW_MIN_BYTES`, ``fetch_max_wait_ms`` = the ``fetch_batch_wait_ms`` setting (10 ms):
  the broker holds the answer until that many bytes or that long;
- a fetch that returned nothing switches back to **idle**: Faust's own 1 byte / 1,500 ms.

So a record waits at most ``fetch_batch_wait_ms`` more on the broker while records flow, never
when they start flowing again (an idle fetch answers at the first byte), and an idle worker polls
as before. ``fetch_batch_wait_ms=0`` keeps Faust's fixed settings.

The same hook gives the worker consumer incremental fetch sessions (``app/service/fetchsession.py``).

Only Faust's worker consumer is paced (``AIOKafkaConsumerThread._create_worker_consumer``); the
replicas and other aiokafka consumers in the process keep their own settings.
"""

from __future__ import annotations

from typing import Any

from app.service import fetchsession
from app.service.metrics import FETCH_FLOWING, FETCH_SWITCHES

FLOW_MIN_BYTES = 64 * 1024  # enough for 30-300 events; the wait, not the bytes, ends most fetches at 1-2k/s

_applied = False


class FetchPace:
    """``fetch_min_bytes`` / ``fetch_max_wait_ms`` for the next fetch, from whether the last one
    brought records.

    >>> p = FetchPace(flow_wait_ms=10, idle_wait_ms=1500)
    >>> p.settings
    (1, 1500)
    >>> p.observe(True); p.settings
    (65536, 10)
    >>> p.observe(True); p.settings  # still flowing
    (65536, 10)
    >>> p.observe(False); p.settings  # an empty fetch: idle again
    (1, 1500)
    >>> p.switches
    2
    """

    __slots__ = ("flow", "idle", "flowing", "switches")

    def __init__(self, flow_wait_ms: int, idle_wait_ms: int, flow_min_bytes: int = FLOW_MIN_BYTES,
                 idle_min_bytes: int = 1):
        self.flow = (flow_min_bytes, flow_wait_ms)
        self.idle = (idle_min_bytes, idle_wait_ms)
        self.flowing = False
        self.switches = 0

    @property
    def settings(self) -> tuple[int, int]:
        return self.flow if self.flowing else self.idle

    def observe(self, had_records: bool) -> None:
        if had_records != self.flowing:
            self.flowing = had_records
            self.switches += 1


def pace(fetcher: Any, flow_wait_ms: int) -> FetchPace:
    """Make ``fetcher`` (an aiokafka ``Fetcher``) adapt its fetch settings after every response.

    The fetcher builds each request from ``_fetch_min_bytes``/``_fetch_max_wait_ms`` and
    ``_proc_fetch_request`` returns whether the response added records: its instance attribute
    wraps the method, so nothing else in aiokafka changes.
    """
    state = FetchPace(flow_wait_ms, fetcher._fetch_max_wait_ms, idle_min_bytes=fetcher._fetch_min_bytes)  # noqa: SLF001
    proc = fetcher._proc_fetch_request  # noqa: SLF001

    async def proc_fetch_request(assignment: Any, node_id: Any, request: Any) -> Any:
        had_records = await proc(assignment, node_id, request)
        was = state.flowing
        state.observe(bool(had_records))
        if state.flowing != was:
            fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms = state.settings  # noqa: SLF001
            FETCH_SWITCHES.labels("flowing" if state.flowing else "idle").inc()
            FETCH_FLOWING.set(int(state.flowing))
        return had_records

    fetcher._proc_fetch_request = proc_fetch_request  # noqa: SLF001
    return state


def _hooked_worker_consumer(create: Any) -> Any:
    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        wait_ms = getattr(self.app, "_labelstream_fetch_batch_wait_ms", 0)
        sessions = getattr(self.app, "_labelstream_fetch_sessions", False)
        if wait_ms <= 0 and not sessions:
            return consumer
        start = consumer.start

        async def start_hooked() -> None:
            await start()  # the fetcher (and its request loop) exists once start() returns
            if sessions:
                fetchsession.attach(consumer)  # counted in the worker's metrics
            if wait_ms > 0:
                pace(consumer._fetcher, wait_ms)  # noqa: SLF001

        consumer.start = start_hooked
        return consumer

    return create_worker_consumer


def apply(app: Any, flow_wait_ms: int, sessions: bool = True) -> None:
    """Pace ``app``'s worker consumer (``flow_wait_ms`` 0: Faust's fixed settings) and, with
    ``sessions``, make its fetches incremental (``app/service/fetchsession.py``)."""
    global _applied
    app._labelstream_fetch_batch_wait_ms = flow_wait_ms  # noqa: SLF001 - read when Faust builds its consumer
    app._labelstream_fetch_sessions = sessions  # noqa: SLF001
    if _applied:
        return
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    AIOKafkaConsumerThread._create_worker_consumer = _hooked_worker_consumer(  # type: ignore[method-assign]  # noqa: SLF001
        AIOKafkaConsumerThread._create_worker_consumer)  # noqa: SLF001
    _applied = True
