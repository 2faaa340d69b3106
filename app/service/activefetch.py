"""faustfix fix 5: records fetched for a partition that is no longer active are fetched again, not lost.

Faust hands aiokafka's ``Fetcher.fetched_records`` its *live* set of active partitions
(``Consumer._active_partitions``, changed in place on Faust's loop by ``pause_partitions`` and
``resume_partitions`` while the consumer thread waits for records), and aiokafka filters with
``if partitions and tp not in partitions``: an emptied set filters nothing. That happens at every
start with table recovery: while the changelogs are read, the set holds only changelog partitions
(the stream partitions are paused for recovery, but aiokafka fetches them into its buffer all the
same); when reading is done Faust pauses those too, the set is empty, and the fetch in flight hands
out every buffered partition. Faust's ``getmany`` (and ``app/service/lean.py``) then drop the records
of partitions that are not active -- with the fetch positions already past them. For a partition
the group has committed, the seek to the committed offsets after recovery fetches them again. A
partition the group never committed is not sought: its records were never processed, and (fix 4's
strict head) nothing of it was ever committed. Found in CI: a worker restarted where the group had
never committed the training topic never got ready (the training replica waits for the group to
commit that backlog); the log showed every training record "fetched for an inactive partition".

The fix, in two parts:

- the fetch gets a view of the active set (:class:`ActiveView`): a partition's records are handed
  out only while it is active at that moment, and an empty set hands out nothing (a partition
  resumed while the fetch waits is handed out in that same fetch, as before; a frozen copy
  delayed the first records after every recovery by up to the fetch's 1 s timeout);
- records that still come back for a partition no longer active (paused between aiokafka handing
  them out and Faust's loop reading them), or while the flow is stopped, are fetched again: noted
  as fix 4 notes a queue clear, so the next seek (after recovery, or Faust's own when the flow is
  stopped) moves a never-committed partition back to them; once this generation's recovery has
  settled (no seek is coming), a partition still assigned is sought back to them at once.

Every such record is counted per partition and reason in ``Consumer._labelstream_fetched_past``
(``app/service/lean_report.py`` shows it) and logged.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable

log = logging.getLogger(__name__)


def note_cleared(cleared: dict, tp: Any, offset: int, generation: int | None) -> None:
    """Note that a queue clear (fix 4), or a fetch past records nobody will process (fix 5), threw away
    ``tp`` from ``offset`` on, fetched in consumer ``generation``: the
    lowest offset of the newest generation counts (an older generation's position was reset by its
    reassignment, so seeking there now could skip records).

    >>> c = {}
    >>> note_cleared(c, "a", 7, 2); note_cleared(c, "a", 5, 2); note_cleared(c, "a", 3, 1); c
    {'a': (2, 5)}
    >>> note_cleared(c, "a", 9, 3); c
    {'a': (3, 9)}
    """
    gen = -1 if generation is None else generation
    had = cleared.get(tp)
    if had is None or gen > had[0] or (gen == had[0] and offset < had[1]):
        cleared[tp] = (gen, offset)


class ActiveView:
    """Faust's live set of active partitions as aiokafka's ``fetched_records`` reads it: a partition
    is handed out while it is active *now* (one membership test of the live set per buffered
    partition, no iteration of a set Faust's loop changes), and an empty set is no partition at all,
    never "every partition".

    >>> live = {"objects-0"}
    >>> view = ActiveView(live)
    >>> bool(view), "objects-0" in view, "training-0" in view
    (True, True, False)
    >>> live.clear(); live.add("training-0")  # Faust pauses one partition and resumes another
    >>> bool(view), "objects-0" in view, "training-0" in view
    (True, False, True)
    >>> live.clear(); bool(view), "training-0" in view
    (True, False)
    """

    __slots__ = ("live",)

    def __init__(self, live: Any):
        self.live = live

    def __bool__(self) -> bool:
        return True  # aiokafka: ``if partitions and tp not in partitions`` -- always filter

    def __contains__(self, tp: Any) -> bool:
        return tp in self.live

    def __repr__(self) -> str:
        return f"ActiveView({self.live!r})"


def _viewing_active(getmany: Callable[..., Any]) -> Callable[..., Any]:
    """``AIOKafkaConsumer._getmany`` that hands aiokafka an :class:`ActiveView` of the active set."""

    async def getmany_viewing(self: Any, active_partitions: Any, timeout: float) -> Any:
        if active_partitions is not None:  # None: a client-only app, every partition (as before)
            active_partitions = ActiveView(active_partitions)
        return await getmany(self, active_partitions, timeout)

    getmany_viewing.__wrapped__ = getmany  # type: ignore[attr-defined]
    return getmany_viewing


def _refetching_dropped(wait_next_records: Callable[..., Any]) -> Callable[..., Any]:
    """``Consumer._wait_next_records`` that takes out, and fetches again, what Faust would drop."""

    async def wait_next_records_refetching(self: Any, timeout: float) -> Any:
        records, active = await wait_next_records(self, timeout)
        if not records:
            return records, active
        if not self.flow_active or self.should_stop:  # Faust's getmany drops everything, seeks to committed
            await fetched_past(self, records, "the flow stopped", seek_now=False)
            return {}, active
        if active is None:  # a client-only app: Faust filters nothing
            return records, active
        buffered = self._buffered_partitions  # noqa: SLF001
        gone = {tp: recs for tp, recs in records.items() if tp not in active and tp not in buffered}
        if not gone:
            return records, active
        await fetched_past(self, gone, "not active")
        return {tp: recs for tp, recs in records.items() if tp not in gone}, active

    wait_next_records_refetching.__wrapped__ = wait_next_records  # type: ignore[attr-defined]
    return wait_next_records_refetching


async def fetched_past(consumer: Any, records: dict[Any, list[Any]], why: str, seek_now: bool = True) -> None:
    """The fetch positions of ``records``' partitions went past records nobody will process: fetch
    them again (a stream partition; changelogs are Faust's recovery's own business).

    Sought back at once only when no seek is coming (this generation has settled, ``seek_now``: the
    flow is not stopped, whose ``getmany`` seeks next) and the partition is still assigned (a seek of
    a revoked one raises in the consumer thread); noted for the next seek otherwise."""
    generation = consumer.app.consumer_generation_id
    settled = seek_now and getattr(consumer, "_labelstream_settled", None) == generation
    assigned = consumer.assignment() if settled else set()
    counts: Counter[tuple[Any, str]] = consumer.__dict__.setdefault("_labelstream_fetched_past", Counter())
    cleared = consumer.app.flow_control.__dict__.setdefault("_labelstream_cleared", {})
    for tp, recs in records.items():
        if not recs or consumer._is_changelog_tp(tp):  # noqa: SLF001
            continue
        first = recs[0].offset
        counts[(tp, why)] += len(recs)
        now = settled and tp in assigned
        log.info("%d record(s) of %s from offset %d fetched when %s: %s", len(recs), tp, first, why,
                 "seeking back to it" if now else "noted for the next seek")
        if now:
            await consumer.seek(tp, first)
        else:
            note_cleared(cleared, tp, first, generation)


def apply(consumer_class: Any, aiokafka_consumer_class: Any) -> None:
    """Patch Faust's ``Consumer`` and its aiokafka driver's ``Consumer`` (from ``faustfix.apply``)."""
    consumer_class._wait_next_records = _refetching_dropped(consumer_class._wait_next_records)  # noqa: SLF001
    aiokafka_consumer_class._getmany = _viewing_active(aiokafka_consumer_class._getmany)  # noqa: SLF001
