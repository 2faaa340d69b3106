"""What expires in a worker's tables: pure decisions, applied by the sweeper (``app/service/sweeper.py``).

Every value that can expire carries ``"at"`` (ms since the epoch, the worker's clock when it
was last written) as its **first** JSON field, so its age is read from a short prefix without
parsing the rest (a media-cache body can be megabytes):

    >>> stamp(stamped(1_700_000_000_000, {"object": {"id": "a1"}, "results": {}}))
    1700000000000
    >>> expire_plain("stored-objects", b"a1", stamped(1_000, {}), now=61_000, ttl=60_000, first_seen={})
    [TableWrite(table='stored-objects', key=b'a1', value=None)]
    >>> expire_plain("stored-objects", b"a1", stamped(1_000, {}), now=60_999, ttl=60_000, first_seen={})
    []

**Values written before stamps existed** (no ``"at"``) count from the moment the sweeper first
sees them in this process (``first_seen``): they expire one TTL later, never at once, and a
restart starts their clock again. Nothing is rewritten to add a stamp (that would copy every
legacy cache body through the changelog).

    >>> seen = {}
    >>> expire_plain("media-cache", b"k", b'{"classes":[]}', now=5_000, ttl=1_000, first_seen=seen), seen
    ([], {b'k': 5000})
    >>> expire_plain("media-cache", b"k", b'{"classes":[]}', now=6_000, ttl=1_000, first_seen=seen)
    [TableWrite(table='media-cache', key=b'k', value=None)]

A TTL of 0 keeps entries forever. The media-assembly table has its own rules
(``app.classify.assembly.expire``): an incomplete item leaves a ``media_incomplete`` dead letter.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.classify.codec import Rejected
from app.classify.outcome import Record, TableWrite

PREFIX = b'{"at":'


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stamped(at: int, doc: dict[str, Any]) -> bytes:
    """``doc`` as JSON with ``"at": at`` first (any older ``"at"`` replaced)."""
    return orjson.dumps({"at": at, **{k: v for k, v in doc.items() if k != "at"}})


def stamp(value: bytes) -> int | None:
    """The ``"at"`` of a value written by :func:`stamped`, or None (a legacy value).

    >>> stamp(b'{"at":12,"x":1}'), stamp(b'{"at":12}'), stamp(b'{"x":1}'), stamp(b'{"at":"no"}')
    (12, 12, None, None)
    """
    if not value.startswith(PREFIX):
        return None
    end = next((i for i in (value.find(b",", 6), value.find(b"}", 6)) if i > 0), -1)
    try:
        return int(value[len(PREFIX):end])
    except ValueError:
        return None


def since(key: bytes, value: bytes, now: int, first_seen: MutableMapping[bytes, int]) -> int:
    """When ``key``'s age started: its stamp, or when it was first seen without one."""
    at = stamp(value)
    if at is not None:
        first_seen.pop(key, None)
        return at
    return first_seen.setdefault(key, now)


def expire_plain(table: str, key: bytes, value: bytes, *, now: int, ttl: int,
                 first_seen: MutableMapping[bytes, int]) -> list[TableWrite]:
    """The deletion of ``key`` if it is at least ``ttl`` ms old (``ttl`` 0: never), else nothing."""
    if ttl <= 0 or now - since(key, value, now, first_seen) < ttl:
        return []
    return [TableWrite(table, key, None)]


@dataclass
class Expiry:
    """What the sweeper does for one expired entry: table writes, and a dead letter if something
    the user sent is dropped unanswered (``dead_letter`` is the record it stands for and why)."""

    writes: list[TableWrite] = field(default_factory=list)
    dead_letter: tuple[Record, Rejected] | None = None
