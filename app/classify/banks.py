"""Bank records on the training topic: validated on the way in, applied to each worker's banks.

Validation turns an entry into its canonical stored form, ``hashes`` as hex (an entry sent as
``content`` is decoded and hashed here, with the same decoder and limits as media events, and
only frames of sufficient PDQ quality are kept), so the replica only parses hex. Applying a
stored record is :func:`apply_bank`, called by ``ModelState.apply`` under its lock.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import orjson

from app.classify.codec import Rejected
from app.core.decode_media import DecodeError, MediaLimits, decode_media
from app.core.pdq import hash_hex, parse_hex, pdq_hash
from app.index.hashbank import BankSpec, Entry, HashBanks
from app.schemas.banks import BANK_ENTRY_PREFIX, BANK_PREFIX, BankEntry, BankRecord
from app.settings import Settings


def media_limits(settings: Settings) -> MediaLimits:
    return MediaLimits(max_bytes=settings.max_media_bytes, max_pixels=settings.max_media_pixels,
                       max_duration=settings.max_media_duration, max_frames=settings.max_media_frames,
                       fps=settings.media_frame_rate)


def b64_content(text: str, path: str = "content") -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("content_undecodable", "content is not valid base64", path) from None


def validate_bank(rec: BankRecord) -> bytes:
    return orjson.dumps(rec.model_dump(mode="json", exclude={"op"}), option=orjson.OPT_SORT_KEYS)


def validate_entry(rec: BankEntry, settings: Settings) -> bytes:
    """The canonical stored entry (``hashes`` as hex). Raises ``Rejected``."""
    if rec.content is not None:
        data = b64_content(rec.content)
        try:
            media = decode_media(data, "image", media_limits(settings))  # a video container is detected too
        except DecodeError as e:
            raise Rejected(e.reason, e.detail, "content") from None
        hashes = []
        for f in media.frames:
            h, q = pdq_hash(f.rgb)
            if q >= settings.pdq_min_quality:
                hashes.append(hash_hex(h))
        if not hashes:
            raise Rejected("content_undecodable", f"no frame of the content reaches PDQ quality "
                           f"{settings.pdq_min_quality}: nothing to match against", "content")
        hashes = sorted(set(hashes), key=hashes.index)
    else:
        texts = [rec.hash] if rec.hash is not None else list(rec.hashes or [])
        hashes = []
        for i, text in enumerate(texts):
            try:
                hashes.append(hash_hex(parse_hex(text.lower())))
            except ValueError as e:
                raise Rejected("schema_violation", str(e), "hash" if rec.hash is not None else f"hashes.{i}") from None
        if not hashes:
            raise Rejected("schema_violation", "hashes is empty", "hashes")
    doc = rec.model_dump(mode="json", exclude={"op", "hash", "content"})
    doc["hashes"] = hashes
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def apply_bank(banks: HashBanks, key: str, value: bytes | None) -> None:
    """Apply one stored bank record (None: delete) to ``banks``."""
    if key.startswith(BANK_PREFIX):
        name = key[len(BANK_PREFIX):]
        if value is None:
            banks.delete_bank(name)
            return
        b = BankRecord.model_validate(orjson.loads(value))
        banks.set_bank(BankSpec(b.name, b.signal_type, b.threshold, dict(b.labels), b.action, b.index_id, b.version))
        return
    eid = key[len(BANK_ENTRY_PREFIX):]
    if value is None:
        banks.delete_entry(eid)
        return
    e = BankEntry.model_validate(orjson.loads(value))
    hashes = np.stack([parse_hex(h) for h in e.hashes or []])
    banks.upsert_entry(Entry(e.id, e.bank, hashes, e.label, dict(e.provenance)))


def is_bank_key(key: str) -> bool:
    return key.startswith((BANK_PREFIX, BANK_ENTRY_PREFIX))
