"""Kafka's key hash (murmur2, as ``org.apache.kafka.common.utils.Utils.murmur2``), memoized.

Every record a worker produces with a key is placed by this hash: a result and its stored-object
changelog record (the same key) each paid aiokafka's pure-Python ``murmur2`` -- one byte at a time,
~6 us for an object id, two calls per event, most of the sink's own time after the records
themselves (``bench/RESULTS.md``, "Per-event cost"). Here the key is read four bytes at a time
with one ``struct`` call, and the hash of a recent key is remembered, so the second record of an
event costs a dict lookup. The values are aiokafka's (``tests/unit/test_murmur2.py`` checks them
against it on random keys).

>>> murmur2(b"21"), partition(b"21", 8)  # Kafka's own test vector for "21": -973932308
(3321034988, 4)
"""

from __future__ import annotations

import struct
from functools import lru_cache

__all__ = ["murmur2", "partition"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def _hash(data: bytes) -> int:
    n = len(data)
    h = 0x9747B28C ^ n
    words = n // 4
    if words:
        unpack = _WORDS.get(words)
        if unpack is None:
            unpack = _WORDS[words] = struct.Struct(f"<{words}I")
        for k in unpack.unpack_from(data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = n & 3
    if rest:
        tail = n & ~3
        if rest >= 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


#: A sink call hashes a result's key and then its changelog record's (the same key) within one
#: batch of at most a few thousand records: 8k recent keys (ids, ~1 MB) cover it.
murmur2 = lru_cache(maxsize=8192)(_hash)


def partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` by Kafka's default partitioner."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
