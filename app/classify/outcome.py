"""The typed seam between the pure step and the sink: what one input record became.

Every pipeline (objects, media, training; jobs and REST requests later) has one shape:
decode -> a pure step (in the classify pool) -> one sink. The step never touches Kafka or
a table: it returns, per input :class:`Record`, one :class:`Outcome` holding the outputs and
the table writes *as data*; the sink (``app/service/sink.py``) is the only place that sends
and writes.

    >>> from app.schemas.deadletter import Source
    >>> rec = Record(b"k", b"{}", Source(topic="t", partition=0, offset=7))
    >>> Outcome.reject(Rejected("invalid_json", "nope")).rejected.reason
    'invalid_json'
    >>> Outcome().writes
    []
    >>> out = Outcome(results=[Result(result_id="a/c", item_id="a", class_="C", classifier="c", method="knn",
    ...                               labels={}, source=rec.source)])
    >>> out.encode().encoded[0][:24]
    b'{"result_id":"a/c","item'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.classify.codec import Rejected, dumps, internal_error
from app.schemas.deadletter import Source
from app.schemas.results import ModerationHit, Result, ResultDoc

__all__ = ["Record", "TableWrite", "Outcome", "Rejected"]


@dataclass(frozen=True)
class Record:
    """One consumed input, transport-free: what the step and the dead letter need of a Kafka message."""

    key: bytes | None
    value: bytes | None
    source: Source

    @classmethod
    def of(cls, message: Any) -> "Record":
        """From a Faust/aiokafka message (``event.message``)."""
        ts = getattr(message, "timestamp", None)
        return cls(message.key, message.value,
                   Source(topic=message.topic, partition=message.partition, offset=message.offset,
                          timestamp=int(ts * 1000) if ts else None))


@dataclass(frozen=True)
class TableWrite:
    """Set ``table[key] = value``, or delete ``key`` when ``value`` is None.

    The value is kept as an exact-size copy: a table value lives as long as its key (in a memory
    store, for good), and ``orjson.dumps`` (3.12+) hands back its working buffer, over-allocated
    ~8-15x and never shrunk -- a 2.2 kB stored object held 32 kB, so 10,000 stored objects took
    150 MB instead of 22 MB (``bench/RESULTS.md``, "Latency, GC and memory"; home-assistant/core#181513 measured the same).

    >>> import orjson, tracemalloc
    >>> tracemalloc.start(); w = TableWrite("t", b"k", orjson.dumps({"v": "x" * 2000}))
    >>> tracemalloc.get_traced_memory()[0] < 4000, len(w.value); tracemalloc.stop()
    (True, 2008)
    """

    table: str
    key: bytes
    value: bytes | None

    def __post_init__(self) -> None:
        if self.value is not None:
            object.__setattr__(self, "value", bytes(memoryview(self.value)))  # frozen: set once, here


@dataclass
class Outcome:
    """Results and moderation hits, or one rejection (a dead letter); plus table writes, applied in order.

    A rejection wins: the sink sends the dead letter and none of the results, so every input
    leaves as results or as exactly one dead letter. Table writes are applied either way (a
    discarded media assembly is cleaned up even though the item is dead-lettered).
    """

    results: list[Result | ResultDoc] = field(default_factory=list)  # ResultDoc: the hot path's plain form
    hits: list[ModerationHit] = field(default_factory=list)
    rejected: Rejected | None = None
    writes: list[TableWrite] = field(default_factory=list)
    #: ``dumps`` of ``results`` and ``hits``, in order, made in the classify pool by :meth:`encode`
    #: (serializing on the event loop was a large share of the sink's time); None: not encoded yet.
    encoded: list[bytes] | None = None
    encoded_hits: list[bytes] | None = None

    @classmethod
    def reject(cls, r: Rejected, writes: list[TableWrite] | None = None) -> "Outcome":
        return cls(rejected=r, writes=writes or [])

    def fail(self, r: Rejected) -> None:
        """Turn this outcome into a rejection: partial results are dropped, writes are kept."""
        self.rejected = r
        self.results.clear()
        self.hits.clear()
        self.encoded = self.encoded_hits = None

    def encode(self) -> "Outcome":
        """Serialize the results and hits (the exact bytes the sink sends: a pure function of them,
        so a redelivery sends the same bytes). A value that cannot be serialized fails this outcome."""
        if self.rejected is None:
            try:
                self.encoded = [dumps(r) for r in self.results]
                self.encoded_hits = [dumps(h) for h in self.hits]
            except Exception as e:  # noqa: BLE001 - errors are data: this item's dead letter
                self.fail(internal_error(e))
        return self
