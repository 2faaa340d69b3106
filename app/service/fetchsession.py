"""Incremental fetch sessions (Kafka's KIP-227) for an aiokafka consumer: a fetch names only what changed.

aiokafka sends every fetch without a session: each request lists every fetchable partition, and
each response carries a header for every one of them, records or not. A worker is assigned 40
partitions (objects, media, training, jobs and feedback, 8 each), most of them idle, and aiokafka
encodes and decodes all 40 in pure Python on every fetch, in Faust's consumer thread: under a
paced load that was most of the thread's GIL time (``bench/RESULTS.md``, "Fetch sessions").

The Java client has used sessions since Kafka 1.1: the broker keeps the session's partitions and
their fetch positions; a request lists only the partitions whose position changed (or that are new)
and forgets the ones no longer wanted; a response lists only partitions with records or a changed
high watermark, log start or error. Everything else is implied: nothing new there.

:class:`FetchSession` is the client side of one session, pure. :func:`attach` puts it under an
aiokafka consumer's fetcher without changing the fetcher: its requests still name every partition
it wants (so aiokafka checks each answered partition against the position it asked for, as
before); only what goes on the wire is the session's difference, and only the answered partitions
come back. A session is dropped (the next fetch is full, and opens a new one) on any top-level
error, a failed or cancelled request, or a broker that speaks Fetch below v7.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition

from app.service.metrics import FETCH_PARTITIONS, FETCH_SESSION_RESETS, FETCHES

INITIAL_EPOCH = 0  # a full fetch that opens a session (and closes the one named, if any)
FETCH_SESSION_ID_NOT_FOUND = 70  # the broker evicted the session: open a new one
STAMP_EVERY = 1.0  # s: implied partitions get their last-fetch timestamp this often

Wanted = list[tuple[str, list[tuple[int, int, int]]]]  # aiokafka's FetchRequest.topics: (partition, offset, max bytes)


class Plan(NamedTuple):
    """The next request: its session id and epoch, the partitions to send and to forget, and the
    partitions the session holds once the broker has it."""

    session_id: int
    epoch: int
    send: Wanted
    forget: list[tuple[str, list[int]]]
    held: dict[tuple[str, int], tuple[int, int]]

    @property
    def full(self) -> bool:
        return self.epoch == INITIAL_EPOCH


def next_epoch(epoch: int) -> int:
    """Epochs count 1, 2, ... and wrap to 1 (0 and -1 mean a full fetch)."""
    return 1 if epoch >= 2**31 - 1 else epoch + 1


class FetchSession:
    """The client side of one broker's fetch session.

    >>> s = FetchSession()
    >>> p = s.plan([("objects", [(0, 10, 1024), (1, 5, 1024)])])
    >>> p.full, p.send
    (True, [('objects', [(0, 10, 1024), (1, 5, 1024)])])
    >>> s.answered(p, error_code=0, session_id=77)
    True
    >>> p = s.plan([("objects", [(0, 12, 1024), (1, 5, 1024)])])  # partition 0 moved on
    >>> p.session_id, p.epoch, p.send, p.forget
    (77, 1, [('objects', [(0, 12, 1024)])], [])
    >>> s.answered(p, error_code=0, session_id=77)
    True
    >>> p = s.plan([("objects", [(0, 12, 1024)])])  # partition 1 paused
    >>> p.epoch, p.send, p.forget
    (2, [], [('objects', [1])])
    >>> s.answered(p, error_code=71, session_id=0)  # INVALID_FETCH_SESSION_EPOCH: full again
    False
    >>> p = s.plan([("objects", [(0, 12, 1024)])])
    >>> p.session_id, p.full, p.send
    (77, True, [('objects', [(0, 12, 1024)])])
    """

    __slots__ = ("session_id", "epoch", "held")

    def __init__(self) -> None:
        self.session_id = 0
        self.epoch = INITIAL_EPOCH
        self.held: dict[tuple[str, int], tuple[int, int]] = {}

    def plan(self, wanted: Wanted) -> Plan:
        """What to send for a fetch of ``wanted`` (every partition the fetcher wants now)."""
        held: dict[tuple[str, int], tuple[int, int]] = {}
        if self.epoch == INITIAL_EPOCH:
            for topic, parts in wanted:
                for p, offset, max_bytes in parts:
                    held[(topic, p)] = (offset, max_bytes)
            return Plan(self.session_id, INITIAL_EPOCH, wanted, [], held)
        before = self.held
        send: Wanted = []
        for topic, parts in wanted:
            changed = []
            for p, offset, max_bytes in parts:
                key = (topic, p)
                held[key] = value = (offset, max_bytes)
                if before.get(key) != value:
                    changed.append((p, offset, max_bytes))
            if changed:
                send.append((topic, changed))
        forget: dict[str, list[int]] = {}
        for key in before:
            if key not in held:
                forget.setdefault(key[0], []).append(key[1])
        return Plan(self.session_id, self.epoch, send, list(forget.items()), held)

    def answered(self, plan: Plan, error_code: int, session_id: int) -> bool:
        """The broker's answer to ``plan``: False if the session is gone (the next fetch is full)."""
        if error_code or (not plan.full and session_id != plan.session_id):
            if error_code == FETCH_SESSION_ID_NOT_FOUND:
                self.session_id = 0
            self.failed()
            return False
        if plan.full:
            self.session_id = session_id
            self.epoch = 1 if session_id else INITIAL_EPOCH  # 0: the broker kept no session
        else:
            self.epoch = next_epoch(plan.epoch)
        self.held = plan.held if self.epoch != INITIAL_EPOCH else {}
        return True

    def failed(self) -> None:
        """No answer (or an unusable one): the broker may or may not have applied the request, so
        the next fetch is full; it names the old session, which closes it."""
        self.epoch = INITIAL_EPOCH
        self.held = {}


class SessionFetchRequest(FetchRequest):
    """aiokafka's FetchRequest that encodes ``plan`` (only the session's difference) for Fetch v7+,
    and the whole request below v7 (no sessions there)."""

    def __init__(self, wanted: FetchRequest, plan: Plan):
        super().__init__(wanted._max_wait_ms, wanted._min_bytes, wanted._max_bytes,  # noqa: SLF001
                         wanted._isolation_level, plan.send, rack_id=wanted._rack_id)  # noqa: SLF001
        self.wanted, self.plan = wanted, plan
        self.version = -1  # set when the connection picks the version

    def build(self, request_struct_class: Any) -> Any:
        self.version = request_struct_class.API_VERSION
        if self.version < 7:
            return self.wanted.build(request_struct_class)
        struct = super().build(request_struct_class)
        struct.session_id, struct.session_epoch = self.plan.session_id, self.plan.epoch
        struct.forgotten_topics_data = self.plan.forget
        return struct


class Sessions:
    """One :class:`FetchSession` per broker for one consumer's fetcher; counts what it saved (here and
    in the worker's metrics)."""

    def __init__(self) -> None:
        self.by_node: dict[Any, FetchSession] = {}
        self.full = self.incremental = self.resets = 0
        self.partitions_wanted = self.partitions_sent = 0
        self._fetches = (FETCHES.labels("incremental"), FETCHES.labels("full"))
        self._partitions = (FETCH_PARTITIONS.labels("wanted"), FETCH_PARTITIONS.labels("sent"))

    async def send(self, send: Any, node_id: Any, request: Any, **kw: Any) -> Any:
        """``client.send`` for a fetch: the session's request on the wire, the broker's answer back."""
        session = self.by_node.setdefault(node_id, FetchSession())
        plan = session.plan(request.topics)
        wire = SessionFetchRequest(request, plan)
        try:
            response = await send(node_id, wire, **kw)
        except BaseException:
            session.failed()  # includes a cancelled fetch: the broker may have moved the epoch on
            self._reset()
            raise
        if wire.version < 7:
            session.failed()
        elif not session.answered(plan, response.error_code, response.session_id):
            self._reset()
        wanted = len(plan.held)  # every partition of the request, once
        sent = sum(len(parts) for _, parts in plan.send) if wire.version >= 7 else wanted
        self.full += plan.full
        self.incremental += not plan.full
        self.partitions_wanted += wanted
        self.partitions_sent += sent
        self._fetches[plan.full].inc()
        self._partitions[0].inc(wanted)
        self._partitions[1].inc(sent)
        return response

    def _reset(self) -> None:
        self.resets += 1
        FETCH_SESSION_RESETS.inc()


def attach(consumer: Any) -> Sessions:
    """Fetch through sessions in a started aiokafka ``consumer`` (its fetcher exists once started).

    Only fetches change: the client's ``send`` is wrapped on this consumer's client instance, and a
    fetch answered in a session stamps the partitions it implied with the time, as aiokafka stamps the
    ones it answered (``consumer.last_poll_timestamp``; at most every :data:`STAMP_EVERY` s).
    """
    sessions = Sessions()
    fetcher = consumer._fetcher  # noqa: SLF001
    client = fetcher._client  # noqa: SLF001
    plain_send = client.send

    async def send(node_id: Any, request: Any, **kw: Any) -> Any:
        if type(request) is FetchRequest:
            return await sessions.send(plain_send, node_id, request, **kw)
        return await plain_send(node_id, request, **kw)

    client.send = send
    proc = fetcher._proc_fetch_request  # noqa: SLF001
    stamped = 0.0

    async def proc_fetch_request(assignment: Any, node_id: Any, request: Any) -> Any:
        nonlocal stamped
        had_records = await proc(assignment, node_id, request)
        now = time.monotonic()
        if now - stamped >= STAMP_EVERY and assignment.active:
            stamped = now
            now_ms = int(1000 * time.time())
            for topic, parts in request.topics:
                for p, *_ in parts:
                    state = assignment.state_value(TopicPartition(topic, p))
                    if state is not None and state.has_valid_position:
                        state.timestamp = now_ms
        return had_records

    fetcher._proc_fetch_request = proc_fetch_request  # noqa: SLF001
    return sessions

