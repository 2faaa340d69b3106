"""Runtime fixes for faust-streaming 0.15.3 (on aiokafka 0.14.0): records lost on takeover, at recovery
and on a fresh group's backlog; commits stuck on holes.

Found by ``tests/integration/test_faults.py::test_survivor_takes_over_partitions_and_recovers_tables``:
when a worker takes over partitions that have a backlog (another worker died), 1-7 % of
the backlog was never processed, and the committed offsets still moved past it. Two holes:

1. **Drop below the read offset.** ``Consumer._drain_messages`` drops every fetched record
   whose offset is below the partition's ``_read_offset`` (meant to skip re-fetched
   duplicates). A batch fetched *before* a seek to the committed offsets but handed to the
   stream *after* it moves the read offset far ahead; the records re-fetched from the
   committed offset are then dropped as "duplicates" although nobody processed them.
2. **Queues cleared after the seek.** ``Recovery.on_recovery_completed`` (and
   ``_resume_streams``) seek to the committed offsets and *then* call
   ``flow_control.resume()``, which clears every stream queue: records fetched from the
   committed offset in between are thrown away while the fetch position is already past them.

The fixes keep at-least-once (a duplicate is reprocessed, never a record skipped):

1. for stream (non-changelog) partitions the read offset reads as unknown, so nothing is
   dropped: a re-fetched record is delivered again and reprocessed (idempotent results);
2. after recovery completes and the queues have been cleared, seek to the committed
   offsets once more, so whatever the clear threw away is fetched again.

**Offset holes (fix 3).** Faust commits a partition up to the first offset nobody acked, so
an offset that never arrives (a record removed by compaction, a transaction marker, an
aborted transaction's records under ``read_committed``) must be known as a hole, or the
partition's commits stop there for the life of the process (``Consumer._new_offset``
refuses when the first acked offset is 2 or more past the committed one). Faust learns
holes in ``_drain_messages`` from the read offset: a record more than 1 past the last one
read means the offsets between are holes (``_add_gap``). Fix 1 makes that read offset
unknown, which switched the hole detection off. It cannot simply be switched back on: the
drop and the hole detection read the same value in the same line, and in the takeover race
above that value is wrong both ways -- after the seek to committed offset C, a stale record
at S > C+1 is taken for "S follows C", so C+1..S are marked as holes and the commit jumps
to S+1 over records that were only re-fetched, not processed (lost if the worker dies).

So holes are taken from where they are known exactly instead: aiokafka itself. Each
``FetchResult.getall`` hands out the records of one fetched range: it starts at the
consumer's position (aiokafka checks that, which also discards results made stale by a
seek) and moves the position to ``next_fetch_offset``, past every record, control batch,
aborted batch or compacted-away offset in the range. Every offset in that range that is not
a returned record will never be returned by the broker: a hole, a fact independent of seeks,
rebalances and the order in which the stream sees the records. ``getall`` notes the holes
(only while Faust's consumer thread is fetching, via a context variable, so other aiokafka
consumers in the process are untouched); back on Faust's loop, ``_getmany`` feeds them to
Faust's own ``_add_gap`` for the stream partitions it owns, and Faust's commit logic does
the rest, unchanged. A record fetched but not delivered (Faust skips records of inactive
partitions) is not a hole, so the commit never passes it.

**Partitions the group never committed (fix 4).** Fix 2's seek back cannot help a partition
that has no committed offset (a new group, a new partition): aiokafka's ``seek_to_committed``
leaves it alone, so after ``flow_control.resume()`` cleared the first records fetched from it
(up to a stream buffer's worth: 4,096 per topic with a backlog), fetching went on behind them.
And Faust's ``_new_offset`` committed past them anyway: its head check (``min(acked) -
committed > 1``) is skipped when there is no committed offset, or it is 0, and lets one missing
record at the head through otherwise. Found by ``bench/e2e.py`` (a worker started on a backlog
of 10,000 events answered 5,903-9,824 of them, every input offset committed); pinned by
``tests/integration/test_fresh_group_backlog.py``. The fix: the queue clear notes the lowest offset it throws
away per partition, and the seek after it moves a partition the group has not committed back
there (only then: records the stream took before the clear are processed and acked as usual,
so nothing is redone when nothing was lost); where the first range a worker fetched of a
partition began (the ``auto_offset_reset`` position, known exactly in the same ``getall`` as
the holes) is remembered as its start; and a commit is refused while the lowest acked (or known
hole) offset is above the committed offset, or above the start when nothing is committed. A hole is still known
exactly (fix 3), so a partition never waits on an offset that will not come. Two refinements,
found by the takeover test failing about one run in six (a partition's head never committed, by
either worker, and once 405 of its records never processed): a lane's task takes chunks before
the recovery's seek is settled and then drops them (``app/service/lean.py``), so those held
chunks count as thrown away too, or the seek moved past them; and a note only counts in the
generation it was made in (a revocation's clear is followed by a reassignment that resets the
position, and seeking to the note then could only skip records).

**Records fetched for a partition no longer active (fix 5)** are fetched again, not lost:
``app/service/activefetch.py`` says how Faust's live active-partition set let a fetch hand out
records of paused partitions at every recovery, and how they are noted for fix 4's seek.

**For the lean consume path** (``app/service/lean.py``, no fix of Faust's own): ``getall`` also
notes each handed-out range's *position mark* (``position_mark``: the partition state and how
often a seek or reset moved its position, counted on aiokafka's ``TopicPartitionState``), so a
batch fetched before a seek is known as such exactly, not by when it reached Faust's loop; and
the seek after recovery records the generation it settled (``Consumer._labelstream_settled``).

``apply()`` is idempotent and is called by ``app.service.faust_app.make_app`` before the app is created. It
refuses (``UnsupportedVersion``) when the installed faust-streaming or aiokafka is not the
version these patches were written against, since they replace private internals.
``LABELSTREAM_FAUSTFIX=0`` turns it all off, check included: the takeover test then loses
records again, and holes are left to Faust's own detection, which besides the race above
never sees a hole right after offset 0 (``if gap > 1 and r_offset``: 0 is false), so
``tests/integration/test_offset_holes.py`` fails unpatched too (commits stop at 1).
"""

from __future__ import annotations

import contextvars
import importlib.metadata
import logging
import os
from collections import defaultdict, deque
from typing import Any, Iterable, Mapping, Sequence

from app.service import activefetch
from app.service.activefetch import note_cleared

#: The exact versions whose source these patches were read against.
PATCHED_FOR = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

_applied = False
log = logging.getLogger(__name__)

#: While Faust's consumer thread is fetching: that Faust consumer (its hole deque and partition starts).
_fetching_for: contextvars.ContextVar[Any] = contextvars.ContextVar("labelstream_fetching_for", default=None)


class UnsupportedVersion(RuntimeError):
    """The installed faust-streaming or aiokafka is not the one the patches were written for."""


def installed_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in PATCHED_FOR}


def check_versions(found: Mapping[str, str] | None = None) -> None:
    """Raise ``UnsupportedVersion`` (one line: what was found, what to do) unless the versions match.

    >>> check_versions(PATCHED_FOR)
    >>> try:
    ...     check_versions({**PATCHED_FOR, "faust-streaming": "0.16.0"})
    ... except UnsupportedVersion as e:
    ...     print(str(e).split(":")[0])  # doctest: +ELLIPSIS
    faust-streaming 0.16.0 is installed, but app...faustfix patches private internals of faust-streaming 0.15.3
    """
    found = installed_versions() if found is None else found
    wrong = {name: found.get(name) for name, want in PATCHED_FOR.items() if found.get(name) != want}
    if wrong:
        have = " and ".join(f"{name} {v}" for name, v in wrong.items())
        want = " and ".join(f"{name} {PATCHED_FOR[name]}" for name in wrong)
        pins = " ".join(f"{name}=={v}" for name, v in PATCHED_FOR.items())
        raise UnsupportedVersion(
            f"{have} {'is' if len(wrong) == 1 else 'are'} installed, but {__name__} patches private internals of "
            f"{want}: install {pins} (the pins in pyproject.toml: 'make install'), or re-check each patch against the "
            f"installed source and update PATCHED_FOR, or set LABELSTREAM_FAUSTFIX=0 to run unpatched (records may be "
            f"lost when partitions move between workers)"
        )


def holes(start: int, stop: int, offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Offsets in ``[start, stop)`` missing from the sorted ``offsets``, as inclusive ``(first, last)`` runs.

    >>> holes(10, 20, [10, 11, 15, 16])
    [(12, 14), (17, 19)]
    >>> holes(10, 12, [10, 11])
    []
    >>> holes(5, 9, [])
    [(5, 8)]
    """
    out = []
    expected = start
    for offset in offsets:
        if offset > expected:
            out.append((expected, offset - 1))
        expected = offset + 1
    if stop > expected:
        out.append((expected, stop - 1))
    return out


class StreamReadOffsets(defaultdict):
    """``Consumer._read_offset`` that never makes the consumer drop a stream record."""

    def __init__(self, consumer: Any):
        super().__init__(lambda: None)
        self._consumer = consumer

    def __getitem__(self, tp):
        if not self._consumer._is_changelog_tp(tp):  # noqa: SLF001
            return None
        return super().__getitem__(tp)


def _reseek_after(recover):
    async def recover_then_reseek(self, generation_id: int = 0) -> None:
        await recover(self, generation_id)
        app = self.app
        consumer = app.consumer
        if app.consumer_generation_id == generation_id and consumer.assignment():
            self.log.info("Seek stream partitions to committed offsets again (after the queues were cleared).")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        if app.consumer_generation_id == generation_id:
            # app/service/lean.py processes a generation's records only from here on: what it
            # fetched before this seek is fetched again anyway.
            consumer._labelstream_settled = generation_id  # noqa: SLF001

    recover_then_reseek.__wrapped__ = recover
    return recover_then_reseek


def _noting_cleared(clear):
    """``FlowControlEvent.clear`` that notes, per partition, the lowest offset it throws away (fix 4)."""

    def clear_noting_offsets(self) -> None:
        cleared = self.__dict__.setdefault("_labelstream_cleared", {})
        for queue in list(self._queues):  # noqa: SLF001
            pending = getattr(queue, "labelstream_pending", None)  # app/service/lean.py's lanes
            if pending is not None:
                held = list(pending())
            else:
                events = list(getattr(queue, "_queue", ()))  # a stream's queue: events and their messages
                held = [(m.tp, m.offset, m.generation_id)
                        for m in (getattr(e, "message", None) for e in events) if m is not None]
            for tp, offset, generation in held:
                note_cleared(cleared, tp, offset, generation)
        clear(self)

    clear_noting_offsets.__wrapped__ = clear
    return clear_noting_offsets


async def _seek_fresh_partitions(consumer: Any) -> None:
    """Seek each assigned stream partition the group never committed back to the first record a queue
    clear threw away (fix 4). Only those: what was taken by the stream before the clear is processed
    and acked as usual, so nothing is redone unless something was thrown away.

    Every note is used up here: this seek (or the seek to the committed offsets before it) covers
    what was cleared so far, and a note of an earlier generation is stale (its reassignment reset
    the position; seeking there could only skip forward)."""
    cleared = getattr(consumer.app.flow_control, "_labelstream_cleared", None)
    if not cleared:
        return
    noted = dict(cleared)
    cleared.clear()
    generation = consumer.app.consumer_generation_id
    committed = consumer._committed_offset  # noqa: SLF001
    for tp in consumer.assignment():
        gen, offset = noted.get(tp, (None, None))
        if gen == generation and committed[tp] is None and not consumer._is_changelog_tp(tp):  # noqa: SLF001
            log.info("Seek %s (never committed) back to %d: a queue clear threw away its records from there", tp, offset)
            await consumer.seek(tp, offset)


def _seeking_fresh_partitions(perform_seek):
    """``Consumer.perform_seek`` that also seeks never-committed stream partitions to their start."""

    async def perform_seek_with_starts(self) -> None:
        await perform_seek(self)
        await _seek_fresh_partitions(self)

    perform_seek_with_starts.__wrapped__ = perform_seek
    return perform_seek_with_starts


def lowest_pending(acked: Sequence[int], gaps: Iterable[tuple[int, int]]) -> int | None:
    """The lowest offset known done: acked, or the first offset of a hole (``(begin, end)``, end excluded).

    >>> lowest_pending([7, 5, 9], [(3, 5)])
    3
    >>> lowest_pending([], [(3, 5)]) is None
    True
    """
    if not acked:
        return None
    top = max(acked)
    return min(min(acked), min((begin for begin, _ in gaps if begin <= top), default=top))


def _strict_head(new_offset):
    """``Consumer._new_offset`` that never commits past an offset nobody acked at the head (fix 4)."""

    def new_offset_strict_head(self, tp):
        acked = self._acked[tp]  # noqa: SLF001
        if acked:
            head = self._committed_offset[tp]  # noqa: SLF001
            if head is None:
                head = self._labelstream_starts.get(tp)  # noqa: SLF001
            if head is not None and not self._is_changelog_tp(tp):  # noqa: SLF001
                lowest = lowest_pending(acked, ((iv.begin, iv.end) for iv in self._gap[tp]))  # noqa: SLF001
                if lowest is not None and lowest > head:
                    return None
        return new_offset(self, tp)

    new_offset_strict_head.__wrapped__ = new_offset
    return new_offset_strict_head


def _noting_holes(getall):
    """``FetchResult.getall`` that reports the holes of the range it hands out (aiokafka's consumer thread)."""

    def getall_noting_holes(self, max_records=None):
        records = self._partition_records  # getall drops the reference when it is done
        start = records.next_fetch_offset if records is not None else None
        consumer = _fetching_for.get()
        # Read before getall checks the position: a seek from Faust's loop after this read makes
        # the mark stale (the range is then fetched again), never newer than the range.
        mark = position_mark(self._assignment.state_value(self._topic_partition)) if consumer is not None else None
        out = getall(self, max_records)
        if consumer is not None and out:
            consumer._labelstream_marks[self._topic_partition] = mark  # noqa: SLF001
        # The position moved from start only if getall handed out the range (assignment and position checked).
        if consumer is not None and start is not None and records.next_fetch_offset > start:
            tp = self._topic_partition
            consumer._labelstream_starts.setdefault(tp, start)  # noqa: SLF001 - fix 4: where this worker began tp
            consumer._labelstream_holes.extend(  # noqa: SLF001
                (tp, first, last) for first, last in holes(start, records.next_fetch_offset, (r.offset for r in out)))
        return out

    getall_noting_holes.__wrapped__ = getall
    return getall_noting_holes


def position_mark(state: Any) -> tuple[int, int] | None:
    """Which position a partition's fetch position descends from: its state object (a new
    assignment makes a new one) and how often a seek or reset moved it (``_counting_moves``).
    Two ranges with the same mark were fetched with no seek between them; Faust reads the
    mark of the range it handed out last per partition in ``Consumer._labelstream_marks``."""
    return None if state is None else (id(state), state.__dict__.get("_labelstream_moves", 0))


def _counting_moves(move):
    """A ``TopicPartitionState`` method that moves the position (``seek``, ``await_reset``), counted."""

    def moved(self, *args):
        self._labelstream_moves = self.__dict__.get("_labelstream_moves", 0) + 1
        return move(self, *args)

    moved.__wrapped__ = move
    return moved


def _fetching_into_sink(fetch_records):
    """``AIOKafkaConsumerThread._fetch_records`` with this Faust consumer noted as the one fetching."""

    async def fetch_records_into_sink(self, *args, **kwargs):
        token = _fetching_for.set(self.consumer)
        try:
            return await fetch_records(self, *args, **kwargs)
        finally:
            _fetching_for.reset(token)

    fetch_records_into_sink.__wrapped__ = fetch_records
    return fetch_records_into_sink


def _adding_gaps(getmany):
    """``Consumer._getmany`` that hands the holes noted while fetching to Faust's gap tracking (Faust's loop)."""

    async def getmany_adding_gaps(self, *args, **kwargs):
        records = await getmany(self, *args, **kwargs)
        sink = self._labelstream_holes  # noqa: SLF001
        if sink:
            assigned = self.assignment()
            acks_enabled_for = self.app.topics.acks_enabled_for
            while sink:
                tp, first, last = sink.popleft()
                # Changelog partitions keep Faust's own read-offset detection (fix 1 leaves them alone).
                if tp in assigned and not self._is_changelog_tp(tp) and acks_enabled_for(tp.topic):
                    await self._add_gap(tp, first, last)  # noqa: SLF001
        return records

    getmany_adding_gaps.__wrapped__ = getmany
    return getmany_adding_gaps


def apply() -> None:
    """Patch faust-streaming; ``LABELSTREAM_FAUSTFIX=0`` leaves it as shipped (to reproduce the loss)."""
    global _applied
    if os.environ.get("LABELSTREAM_FAUSTFIX", "1") == "0":
        return
    check_versions()
    if _applied:
        return
    from aiokafka.consumer.fetcher import FetchResult
    from aiokafka.consumer.subscription_state import TopicPartitionState
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
    from mode.utils.queues import FlowControlEvent

    init = Consumer.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._read_offset = StreamReadOffsets(self)
        self._labelstream_holes = deque()
        self._labelstream_starts = {}  # fix 4: TP -> where this worker's first fetch of it began
        self._labelstream_marks = {}  # TP -> position_mark of the range fetched last (app/service/lean.py)

    Consumer.__init__ = __init__
    Recovery.on_recovery_completed = _reseek_after(Recovery.on_recovery_completed)
    Recovery._resume_streams = _reseek_after(Recovery._resume_streams)  # noqa: SLF001
    FetchResult.getall = _noting_holes(FetchResult.getall)
    TopicPartitionState.seek = _counting_moves(TopicPartitionState.seek)
    TopicPartitionState.await_reset = _counting_moves(TopicPartitionState.await_reset)
    AIOKafkaConsumerThread._fetch_records = _fetching_into_sink(AIOKafkaConsumerThread._fetch_records)  # noqa: SLF001
    AIOKafkaConsumer._getmany = _adding_gaps(AIOKafkaConsumer._getmany)  # noqa: SLF001
    Consumer.perform_seek = _seeking_fresh_partitions(Consumer.perform_seek)
    FlowControlEvent.clear = _noting_cleared(FlowControlEvent.clear)
    Consumer._new_offset = _strict_head(Consumer._new_offset)  # noqa: SLF001
    activefetch.apply(Consumer, AIOKafkaConsumer)  # fix 5
    _applied = True
