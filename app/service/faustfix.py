"""Runtime fixes for faust-streaming 0.15.3 rebalance races that lose records.

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

``apply()`` is idempotent and is called by ``app.service.faust_app.make_app`` before the app is created;
``LABELSTREAM_FAUSTFIX=0`` turns it off (the takeover test then loses records again).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

_applied = False


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

    recover_then_reseek.__wrapped__ = recover
    return recover_then_reseek


def apply() -> None:
    """Patch faust-streaming; ``LABELSTREAM_FAUSTFIX=0`` leaves it as shipped (to reproduce the loss)."""
    global _applied
    if _applied or os.environ.get("LABELSTREAM_FAUSTFIX", "1") == "0":
        return
    from faust.tables.recovery import Recovery
    from faust.transport.consumer import Consumer

    init = Consumer.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._read_offset = StreamReadOffsets(self)

    Consumer.__init__ = __init__
    Recovery.on_recovery_completed = _reseek_after(Recovery.on_recovery_completed)
    Recovery._resume_streams = _reseek_after(Recovery._resume_streams)  # noqa: SLF001
    _applied = True
