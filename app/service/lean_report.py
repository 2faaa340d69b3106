"""What this worker knows of some hot partitions, on one line: for a worker that waits too long.

A worker whose group never commits a partition (the training replica's readiness waits for it:
``app/service/admin.py``'s ``group_consumed``) is either not fetching it, fetching and dropping
it, or processing it and not committing. Each leaves a different trace in the consumer (aiokafka's
fetch position, Faust's acks and commits, faustfix's notes) and in the lanes
(``app/service/lean.py``); this reads them all, without changing anything, from the event loop.

>>> describe(object(), [])
'no consumer'
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.service.lean import assignment_of


def describe(app: Any, tps: list[Any]) -> str:
    """``app``'s view of ``tps`` (aiokafka ``TopicPartition``s), then where its lane tasks wait."""
    consumer = getattr(app, "_consumer", None)
    if consumer is None:
        return "no consumer"
    assignment = assignment_of(consumer)
    lanes = getattr(app, "_labelstream_lanes", None)
    assigned = consumer.assignment()
    active = consumer._active_partitions or set()  # noqa: SLF001
    parts = [f"generation {app.consumer_generation_id} settled {getattr(consumer, '_labelstream_settled', None)} "
             f"flow {'on' if consumer.flow_active else 'off'}"]
    for tp in tps:
        state = assignment.state_value(tp) if assignment is not None else None
        acked = consumer._acked.get(tp) or []  # noqa: SLF001
        lane = lanes.by_topic.get(tp.topic) if lanes is not None else None
        queued = sum(len(c.records) for c in lane.chunks if c.tp == tp) if lane is not None else 0
        held = sum(len(c.records) for c in lane.held if c.tp == tp) if lane is not None else 0
        dropped = {why: n for (t, why), n in lanes.dropped.items() if t == tp} if lanes is not None else {}
        dropped.update({why: n for (t, why), n in getattr(consumer, "_labelstream_fetched_past", {}).items()
                        if t == tp})  # app/service/activefetch.py
        parts.append(
            f"[{tp.partition}] {'assigned' if tp in assigned else 'unassigned'} "
            f"{'active' if tp in active else 'inactive'} "
            f"position {getattr(state, '_position', None)} ({getattr(state, '_status', None)}"
            f"{', paused' if getattr(state, 'paused', False) else ''}) "
            f"committed {consumer._committed_offset.get(tp)} "  # noqa: SLF001
            f"start {getattr(consumer, '_labelstream_starts', {}).get(tp)} "
            f"acked {len(acked)}{f' {min(acked)}..{max(acked)}' if acked else ''} "
            f"gaps {len(consumer._gap.get(tp) or ())} lane {queued} queued {held} held dropped {dropped}")
    waits = [w for w in map(_lane_wait, asyncio.all_tasks()) if w]
    parts.append("lane tasks at " + ("; ".join(sorted(waits)) or "none"))
    return ", ".join(parts)


def _lane_wait(task: asyncio.Task) -> str:
    """``lane_<name> <file:line function>`` -- the innermost line of ours a lane's task waits at (its
    coroutine chain followed down through ``await``; Faust wraps the lane's coroutine in its own);
    '' for any other task."""
    coro: Any = task.get_coro()
    name, where = "", "?"
    while coro is not None:
        qualname = getattr(coro, "__qualname__", "")
        if qualname.startswith("lane_"):
            name = qualname
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        if "/app/" in frame.f_code.co_filename:  # the innermost of ours says more than asyncio's Event.wait
            where = f"{frame.f_code.co_filename.rsplit('/app/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return f"{name} {where}" if name else ""
