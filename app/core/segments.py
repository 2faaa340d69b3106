"""Segment arrays and chunk assembly for media items.

A media event carries ``segments: [{start, end, option, vector?, text?, thumbnail_url?}]``
and, for long videos, ``chunk: {seq, final, total?}``. This module turns chunks into one
canonical, deduplicated segment list, tells when a chunked item is complete, hashes the
assembled content for the result cache, and packs segments into batch-first arrays for
:mod:`app.core.media` and :mod:`app.core.frames`.

Canonical order and identity (used by every function here):

* a segment's identity is ``(start, end, option)``;
* the canonical order sorts by ``(start, option code, end)`` with option codes
  ``visual=0, conversation=1, text_in_video=2`` (the order of :data:`OPTIONS`).

>>> chunks = [
...     {"chunk": {"seq": 1, "final": True}, "segments": [
...         {"start": 6.0, "end": 12.0, "option": "visual", "vector": [0.0, 2.0]}]},
...     {"chunk": {"seq": 0, "final": False}, "segments": [
...         {"start": 0.0, "end": 6.0, "option": "visual", "vector": [3.0, 4.0]}]},
... ]
>>> segs = merge_chunks(chunks)
>>> [s["start"] for s in segs]
[0.0, 6.0]
>>> arr = SegmentArrays.from_segments(segs)
>>> arr.vectors.tolist()
[[0.6000000238418579, 0.800000011920929], [0.0, 1.0]]
>>> content_hash(segs) == content_hash(merge_chunks(chunks[::-1] + chunks))
True
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "OPTIONS",
    "OPTION_CODE",
    "SegmentArrays",
    "merge_chunks",
    "chunk_info",
    "chunk_status",
    "is_complete",
    "content_hash",
]

OPTIONS: tuple[str, ...] = ("visual", "conversation", "text_in_video")
OPTION_CODE: dict[str, int] = {name: code for code, name in enumerate(OPTIONS)}


@dataclass(frozen=True, eq=False)
class SegmentArrays:
    """Segments of one media item as parallel arrays (row ``i`` is segment ``i``).

    ``vectors`` rows are L2-normalised float32; a segment without a usable vector
    (absent, or all zeros) has a zero row and ``has_vector[i] == False``, so a matrix
    product gives it similarity 0 and callers mask it out.

    >>> a = SegmentArrays.from_segments([
    ...     {"start": 0, "end": 2, "option": "conversation", "text": "hi"},
    ...     {"start": 0, "end": 2, "option": "visual", "vector": [0, 5]}])
    >>> a.n, a.dim, a.options.tolist(), a.has_vector.tolist(), a.texts
    (2, 2, [1, 0], [False, True], ('hi', ''))
    """

    starts: np.ndarray  # (n,) float64 seconds
    ends: np.ndarray  # (n,) float64 seconds
    options: np.ndarray  # (n,) int8 codes into OPTIONS
    vectors: np.ndarray  # (n, d) float32, unit rows or zero rows
    has_vector: np.ndarray  # (n,) bool
    texts: tuple[str, ...]  # "" when absent
    thumbnails: tuple[str | None, ...]

    @property
    def n(self) -> int:
        return int(self.starts.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def durations(self) -> np.ndarray:
        return self.ends - self.starts

    @classmethod
    def from_segments(cls, segments: Sequence[Mapping[str, Any]], dim: int | None = None) -> SegmentArrays:
        """Pack segment dicts (in the given order). Raises ``ValueError`` on bad input:
        unknown option, ``end < start``, non-finite numbers, vectors of different sizes."""
        n = len(segments)
        try:
            starts = np.fromiter((float(s["start"]) for s in segments), np.float64, n)
            ends = np.fromiter((float(s["end"]) for s in segments), np.float64, n)
            options = np.fromiter((OPTION_CODE[s["option"]] for s in segments), np.int8, n)
        except KeyError as exc:
            raise ValueError(f"segment is missing a field or has an unknown option: {exc}") from None
        if not (np.isfinite(starts).all() and np.isfinite(ends).all()):
            raise ValueError("segment times must be finite")
        if (ends < starts).any():
            raise ValueError("segment end before start")
        rows = [i for i, s in enumerate(segments) if s.get("vector") is not None]
        if rows:
            try:
                raw = np.asarray([segments[i]["vector"] for i in rows], dtype=np.float32)
            except ValueError:
                raise ValueError("segment vectors have different sizes") from None
            if raw.ndim != 2 or (dim is not None and raw.shape[1] != dim):
                raise ValueError(f"segment vectors must be 1-d of size {dim or 'd'}")
            if not np.isfinite(raw).all():
                raise ValueError("segment vectors must be finite")
            dim = raw.shape[1]
        vectors = np.zeros((n, dim or 0), np.float32)
        has_vector = np.zeros(n, bool)
        if rows:
            norms = np.linalg.norm(raw, axis=1)
            ok = norms > 0  # a zero vector has no direction: treat it as missing
            idx = np.asarray(rows)[ok]
            vectors[idx] = raw[ok] / norms[ok, None]
            has_vector[idx] = True
        return cls(
            starts=starts,
            ends=ends,
            options=options,
            vectors=vectors,
            has_vector=has_vector,
            texts=tuple(str(s.get("text") or "") for s in segments),
            thumbnails=tuple(s.get("thumbnail_url") for s in segments),
        )


def _identity(seg: Mapping[str, Any]) -> tuple[float, float, str]:
    return float(seg["start"]), float(seg["end"]), seg["option"]


def _sort_key(seg: Mapping[str, Any]) -> tuple[float, int, float]:
    return float(seg["start"]), OPTION_CODE.get(seg["option"], len(OPTIONS)), float(seg["end"])


def _preference(seg: Mapping[str, Any]) -> tuple[bool, bool, bytes]:
    """Smaller is preferred. Identical redeliveries tie (any copy will do); conflicting
    copies of one segment are a producer bug, but we still pick one deterministically —
    the more complete one, then the smallest digest — so arrival order never matters."""
    h = hashlib.blake2b(digest_size=16)
    _feed_segment(h, seg)
    return seg.get("vector") is None, not seg.get("text"), h.digest()


def merge_chunks(chunks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Assemble the segments of all chunk events of one media item.

    Idempotent and order-independent: segments are deduplicated by ``(start, end,
    option)`` and returned in canonical order, so redelivered, duplicated (same ``seq``)
    or reordered chunks give the same list. Deduplicating by ``seq`` is subsumed by the
    segment dedupe. The returned dicts are the input dicts (not copied, not mutated).

    >>> c = {"chunk": {"seq": 0, "final": True}, "segments": [
    ...     {"start": 1, "end": 2, "option": "text_in_video"}, {"start": 1, "end": 2, "option": "visual"}]}
    >>> [s["option"] for s in merge_chunks([c, c])]
    ['visual', 'text_in_video']
    """
    best: dict[tuple[float, float, str], Mapping[str, Any]] = {}
    for chunk in chunks:
        for seg in chunk.get("segments") or ():
            key = _identity(seg)
            kept = best.get(key)
            if kept is None or (kept is not seg and _preference(seg) < _preference(kept)):
                best[key] = seg
    return sorted(best.values(), key=_sort_key)  # type: ignore[arg-type]


def chunk_info(chunks: Iterable[Mapping[str, Any]]) -> tuple[set[int], int | None, int | None]:
    """``(seqs seen, final seq or None, total or None)`` of chunk events. An event
    without ``chunk`` is a whole item: seq 0, final, total 1. If several chunks claim to
    be final the smallest seq wins (and :func:`chunk_status` reports inconsistency).

    >>> chunk_info([{"chunk": {"seq": 2, "final": True, "total": 3}}, {"chunk": {"seq": 0, "final": False}}])
    ({0, 2}, 2, 3)
    """
    seqs: set[int] = set()
    finals: list[int] = []
    totals: list[int] = []
    for event in chunks:
        c = event.get("chunk") or {"seq": 0, "final": True, "total": 1}
        seq = int(c["seq"])
        seqs.add(seq)
        if c.get("final"):
            finals.append(seq)
        if c.get("total") is not None:
            totals.append(int(c["total"]))
    return seqs, (min(finals) if finals else None), (max(totals) if totals else None)


def chunk_status(
    chunk_seqs: set[int], final_seq: int | None, total: int | None
) -> Literal["complete", "waiting", "inconsistent"]:
    """``complete`` when the final chunk was seen and every seq ``0..final`` is present;
    ``inconsistent`` when no wait can fix it (a seq after the final one, a negative seq,
    or a ``total`` that disagrees with ``final + 1``) so the caller can dead-letter;
    otherwise ``waiting``.

    >>> chunk_status({0, 1}, None, None), chunk_status({0, 2}, 2, None), chunk_status({0, 1}, 1, 2)
    ('waiting', 'waiting', 'complete')
    >>> chunk_status({0, 1, 2}, 1, None), chunk_status({0, 1}, 1, 5)
    ('inconsistent', 'inconsistent')
    """
    if any(s < 0 for s in chunk_seqs):
        return "inconsistent"
    if final_seq is None:
        if total is not None and chunk_seqs and max(chunk_seqs) >= total:
            return "inconsistent"
        return "waiting"
    if (total is not None and total != final_seq + 1) or any(s > final_seq for s in chunk_seqs):
        return "inconsistent"
    return "complete" if all(s in chunk_seqs for s in range(final_seq + 1)) else "waiting"


def is_complete(chunk_seqs: set[int], final_seq: int | None, total: int | None) -> bool:
    """True when the final chunk was seen and every seq ``0..final`` is present (and
    ``total``, if given, agrees). See :func:`chunk_status`.

    >>> is_complete({0, 1, 2}, 2, None), is_complete({0, 2}, 2, 3), is_complete({0}, None, 1)
    (True, False, False)
    """
    return chunk_status(chunk_seqs, final_seq, total) == "complete"


def _feed_str(h: Any, s: str | None) -> None:
    # Length-prefixed so ("ab", "c") and ("a", "bc") differ; None differs from "".
    if s is None:
        h.update(b"\xff" * 8)
    else:
        b = s.encode("utf-8")
        h.update(struct.pack("<q", len(b)) + b)


def _feed_segment(h: Any, seg: Mapping[str, Any]) -> None:
    h.update(struct.pack("<dd", float(seg["start"]), float(seg["end"])))
    _feed_str(h, seg["option"])
    _feed_str(h, seg.get("text"))
    _feed_str(h, seg.get("thumbnail_url"))
    v = seg.get("vector")
    h.update(b"" if v is None else np.asarray(v, dtype="<f4").tobytes())


def content_hash(segments: SegmentArrays | Sequence[Mapping[str, Any]]) -> str:
    """Stable hex digest of assembled content: times (float64), options, normalised
    vectors (little-endian float32 bytes, with the missing-vector mask), texts and
    thumbnail URLs (thumbnails are echoed in clips, so a cached result must not be
    reused across them). Row order does not matter: rows are hashed in canonical order.

    >>> s = [{"start": 0, "end": 1, "option": "visual", "vector": [1.0, 0.0]}]
    >>> content_hash(s) == content_hash(SegmentArrays.from_segments(s))
    True
    >>> len(content_hash(s))
    32
    """
    arr = segments if isinstance(segments, SegmentArrays) else SegmentArrays.from_segments(segments)
    order = np.lexsort((arr.ends, arr.options, arr.starts))  # last key is primary
    h = hashlib.blake2b(digest_size=16, person=b"lsseg1")
    h.update(struct.pack("<qq", arr.n, arr.dim))
    h.update(arr.starts[order].astype("<f8").tobytes())
    h.update(arr.ends[order].astype("<f8").tobytes())
    h.update(arr.options[order].astype("i1").tobytes())
    h.update(np.packbits(arr.has_vector[order]).tobytes())
    h.update(np.ascontiguousarray(arr.vectors[order], dtype="<f4").tobytes())
    for i in order.tolist():
        _feed_str(h, arr.texts[i])
        _feed_str(h, arr.thumbnails[i])
    return h.hexdigest()
