"""A rejected record as a dead letter that always fits the dead-letter topic.

The original bytes ride along in base64 so a record can be replayed after a fix. Base64
grows a value by a third, so a value near the producer's message limit would make a dead
letter over it (and the send would fail, taking the batch with it). Such a value travels as
a bounded prefix with its size and sha256, marked ``value_truncated``; keys, details and
paths are bounded the same way, so every dead letter fits.

    >>> from app.classify.outcome import Record
    >>> from app.schemas.deadletter import Source
    >>> rec = Record(b"k1", b"x" * 5000, Source(topic="t", partition=0, offset=1))
    >>> doc = orjson.loads(dead_letter(rec, Rejected("payload_too_large", "big"), max_bytes=4096))
    >>> doc["value_truncated"], doc["value_size"], len(base64.b64decode(doc["value_b64"])) < 4096
    (True, 5000, True)
    >>> orjson.loads(dead_letter(rec, Rejected("invalid_json", "no"), max_bytes=1 << 20))["value_truncated"]
    False
"""

from __future__ import annotations

import base64
import hashlib

import orjson

from app.classify.codec import Rejected, dumps
from app.classify.outcome import Record
from app.schemas.deadletter import DeadLetter

MAX_DETAIL = 4000  # characters of detail and path: enough to say what and where
MAX_KEY = 4096  # bytes of key carried verbatim
ENVELOPE = 16 * 1024  # room for everything but the value (source, reason, detail, key)


def dead_letter(record: Record, rejected: Rejected, max_bytes: int) -> bytes:
    """The serialized dead letter of ``record``: at most ``max_bytes`` long."""
    key, value = record.key, record.value
    key_text = None
    if key is not None:
        try:
            key_text = key[:MAX_KEY].decode()
        except UnicodeDecodeError:
            key_text = None
    room = max(0, (max_bytes - ENVELOPE) * 3 // 4)  # value bytes whose base64 still fits
    truncated = value is not None and len(value) > room
    doc = DeadLetter(
        reason=rejected.reason,
        detail=rejected.detail[:MAX_DETAIL],
        path=rejected.path[:MAX_DETAIL] if rejected.path else rejected.path,
        source=record.source,
        key=key_text,
        key_b64=base64.b64encode(key[:MAX_KEY]).decode() if key is not None else None,
        key_truncated=key is not None and len(key) > MAX_KEY,
        value_b64=base64.b64encode(value[:room] if truncated else value).decode() if value is not None else None,
        value_size=len(value) if value is not None else None,
        value_truncated=truncated,
        value_sha256=hashlib.sha256(value).hexdigest() if truncated and value is not None else None,
    )
    return dumps(doc)
