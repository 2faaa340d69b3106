"""PDQ perceptual hashes (Meta's photo hash; ``pdqhash`` runs the reference C++) and Hamming distances.

A PDQ hash is 256 bits, here 32 bytes (``uint8``), written as 64 hex digits the way Meta's
ThreatExchange and Hasher-Matcher-Actioner write them. Two hashes of the same picture (resized,
re-encoded, slightly cropped) differ in few bits; PDQ's recommended match threshold is 31 bits.
The quality score (0-100) says how much structure the image has: PDQ recommends ignoring
hashes below 50 (flat or nearly flat frames match everything flat).

>>> import numpy as np
>>> h = hash_hex(np.arange(32, dtype=np.uint8))
>>> h[:16], len(h), bool((parse_hex(h) == np.arange(32)).all())
('0001020304050607', 64, True)
>>> int(hamming(parse_hex("f" * 64)[None], parse_hex("0" * 63 + "1"))[0])
255
"""

from __future__ import annotations

import numpy as np

__all__ = ["BITS", "BYTES", "pdq_hash", "hash_hex", "parse_hex", "hamming", "as_words"]

BITS, BYTES = 256, 32


def pdq_hash(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """``(32-byte hash, quality 0-100)`` of an ``(h, w, 3)`` uint8 RGB frame."""
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.packbits(bits.astype(np.uint8)), int(quality)


def hash_hex(h: np.ndarray) -> str:
    return bytes(np.asarray(h, dtype=np.uint8)).hex()


def parse_hex(text: str) -> np.ndarray:
    """64 hex digits -> 32 bytes. ``ValueError`` for anything else.

    >>> parse_hex("ab")
    Traceback (most recent call last):
    ...
    ValueError: a PDQ hash is 64 hex digits, got 2 characters
    """
    if len(text) != 2 * BYTES:
        raise ValueError(f"a PDQ hash is {2 * BYTES} hex digits, got {len(text)} characters")
    try:
        return np.frombuffer(bytes.fromhex(text), dtype=np.uint8).copy()
    except ValueError:
        raise ValueError("a PDQ hash is hex digits only (0-9, a-f)") from None


def as_words(hashes: np.ndarray) -> np.ndarray:
    """``(n, 32)`` uint8 -> ``(n, 4)`` uint64 (popcount works on whole words)."""
    return np.ascontiguousarray(hashes, dtype=np.uint8).reshape(-1, BYTES).view(np.uint64)


def hamming(hashes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distances ``(n,)`` from each of ``hashes`` ``(n, 32)`` uint8 to one ``query`` (32,)."""
    x = as_words(hashes) ^ as_words(query)
    return np.bitwise_count(x).sum(axis=1, dtype=np.int32)
