"""Everything a worker is made of, built once: the Faust app, topics, tables, model state,
training replica, sink and classify pool. Agents and web views receive it explicitly
(``app/service/worker.py`` wires them); nothing here imports its importer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, TypeVar

import faust

from app.classify.outcome import Outcome, Record
from app.classify.state import ModelState, Snapshot
from app.service import lean
from app.service.metrics import AGENT_RESTARTS
from app.service.pacing import Pacer
from app.service.replica import ChangelogReplica
from app.service.sink import Sink
from app.service.tables import Tables
from app.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
MIN_SHARE = 64  # below this a thread hop costs more than it saves


def _encoded(step: Callable[[ModelState, Sequence[Record], Snapshot], list[Outcome]], state: ModelState,
             records: Sequence[Record], snap: Snapshot) -> list[Outcome]:
    """The step, then its outputs serialized, both in the pool: the event loop only sends bytes."""
    return [o.encode() for o in step(state, records, snap)]


@dataclass
class Runtime:
    settings: Settings
    app: faust.App
    topics: dict[str, faust.TopicT]
    tables: Tables
    state: ModelState
    replica: ChangelogReplica
    sink: Sink
    pool: ThreadPoolExecutor  # numpy and Annoy release the GIL: classification runs here, off the event loop
    lanes: lean.Lanes | None = field(default=None, init=False)  # the hot topics' batch delivery (lean.py)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the classify pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    async def run_split(self, step: Callable[[ModelState, Sequence[Record], Snapshot], list[Outcome]],
                        records: Sequence[Record], pacer: Pacer | None = None) -> list[Outcome]:
        """A batch step over the pool, split into shares so every core works; outcomes in input order.
        Every share classifies with the one model snapshot taken here: one batch, one version.
        ``pacer``: shares by the expected work (app/service/pacing.py), else by record count; a chunk
        the pacer expects to take less than a thread hop is classified right here, on the loop."""
        snap = self.state.snapshot()
        if pacer is not None and pacer.inline(len(records)):
            return _encoded(step, self.state, records, snap)
        threads = self.settings.classify_threads
        n = pacer.shares(len(records), threads) if pacer else (min(threads, len(records) // MIN_SHARE) or 1)
        size = -(-len(records) // n) if records else 1
        shares = [records[i:i + size] for i in range(0, len(records), size)]
        done = await asyncio.gather(*(self.run(_encoded, step, self.state, s, snap) for s in shares))
        return [o for share in done for o in share]

    def hot(self, topic: str, name: str,
            ready: Callable[[], Awaitable[Any]] | None = None) -> Callable[[lean.Handler], lean.Handler]:
        """``@rt.hot("objects", "objects")``: ``async def handler(records)`` gets the topic's records in
        fetched batches (``app/service/lean.py``), acked once it returns; after ``ready()``.
        ``LABELSTREAM_LEAN=0``: a Faust agent with ``take_events`` batches calls it instead."""
        def register(handler: lean.Handler) -> lean.Handler:
            if lean.enabled():
                if self.lanes is None:
                    self.lanes = lean.Lanes(self.app)
                self.lanes.register(self.topics[topic], name, handler, self.settings.batch_size, ready)
                return handler

            async def agent(stream: Any) -> None:
                if ready is not None:
                    await ready()
                async for batch in stream.take_events(self.settings.batch_size, self.settings.batch_within):
                    await handler([Record.of(e.message) for e in batch])

            agent.__name__ = agent.__qualname__ = handler.__name__
            self.agent(topic, name)(agent)
            return handler
        return register

    def agent(self, topic: str, name: str) -> Callable[[Callable[..., Any]], Any]:
        """``@rt.agent("objects", "objects")``: a Faust agent on a catalog topic whose crashes are counted."""
        def register(fn: Callable[..., Any]) -> Any:
            agent: Any = self.app.agent(self.topics[topic], name=name)(fn)
            faust_handler = agent._on_error  # noqa: SLF001 - Faust's own (tells the consumer); keep it

            async def on_error(a: Any, exc: BaseException) -> None:
                # Faust restarts a crashed agent; a crash is a bug: a batch that escaped per-item isolation.
                AGENT_RESTARTS.labels(name).inc()
                log.error("agent %s crashed: %r", name, exc)
                if faust_handler is not None:
                    await faust_handler(a, exc)

            agent._on_error = on_error  # noqa: SLF001
            return agent
        return register
