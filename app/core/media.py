"""Twelve Labs ``classify`` semantics over time-coded segments, batch-first.

One matrix product scores every segment against every prompt of every class; the rest
is masking and per-class reductions. Shapes follow the Twelve Labs classify reference:
``{video_id, classes: [{name, score, duration_ratio, clips?, detailed_scores?}]}`` per
video and ``{data, page_info}`` per page.

Definitions (segment ``i`` with option ``o_i``, class ``c``, media duration ``D``):

* **eligible** — ``o_i`` is in the class's ``options`` (or, when the class has none,
  the request's ``options``).
* **segment score** ``s(i, c)`` on 0..100 —
  *semantic*: ``100 * max(0, max_p cos(v_i, q_p))`` over the class's prompt vectors,
  and the argmax prompt is the segment's prompt; 0 for a segment without a vector.
  *exact_match* (conversation segments only, when the class's ``conversation_option``,
  else the request's, is ``exact_match``): 100 if ``\\b(?:p1|p2|…)\\b`` (escaped prompts,
  case-insensitive) occurs in the segment text, the prompt being the leftmost match
  (first listed on a tie); else 0. Visual and text_in_video are always semantic.
* **match** — eligible, ``s > 0`` and ``s >= thr[o_i]`` where ``thr[o] =
  threshold[o]``, else ``threshold["min_clip_score"]``, else :data:`DEFAULT_MIN_CLIP_SCORE`.
* **class score** — duration-weighted mean of ``s`` over matched segments, weights
  ``end - start`` (plain mean when all weights are 0, e.g. an image).
* **duration_ratio** — length of the union of matched intervals (all options, clipped
  to ``[0, D]``) divided by ``D``, so overlapping segments never count twice; for
  ``D <= 0`` (images) 1 if anything matched.
* A class is returned iff it has a match, ``score >= threshold["min_video_score"]``
  and ``duration_ratio >= threshold["min_duration_ratio"]`` (both default 0). The
  reference types ``threshold`` as an untyped dict; these six keys (three options and
  three ``min_*``) are our schema, and any other key raises ``ValueError``.
* **clips** — matched segments of one option, in time order, merge while the next
  starts at or before the running end (+1e-6 s): ``start`` = first start, ``end`` =
  max end, ``score`` = max ``s``, ``prompt`` = that segment's prompt,
  ``thumbnail_url`` = first thumbnail in time order. Sorted by score descending.
* **detailed_scores** — ``max_score`` / ``avg_score`` = max / plain mean of matched
  ``s``; ``normalized_score = 100 * score / sum(scores of the returned classes)``,
  from the rounded scores, unrounded — exactly as in the reference example
  (37.83 and 33.35 give 53.14695139084012 and 46.85304860915988), so it sums to 100.
* Scores, ``duration_ratio`` and clip scores are rounded to ``ndigits`` (2, as in the
  reference); times are not. Classes sort by score descending, then name.

>>> import numpy as np
>>> from app.core.segments import SegmentArrays
>>> segs = SegmentArrays.from_segments([
...     {"start": 0, "end": 4, "option": "visual", "vector": [0.6, 0.8]},
...     {"start": 4, "end": 10, "option": "visual", "vector": [1.0, 0.0]}])
>>> dance = MediaClass("Dance", ["dance"], np.array([[1.0, 0.0]]))
>>> classify_media(segs, 10.0, [dance], video_id="v1", threshold={"visual": 50})
{'video_id': 'v1', 'classes': [{'name': 'Dance', 'score': 84.0, 'duration_ratio': 1.0}]}
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from app.core.segments import OPTION_CODE, OPTIONS, SegmentArrays
from app.schemas.media import THRESHOLD_KEYS

__all__ = ["MediaClass", "classify_media", "classify_page", "parse_page_token", "DEFAULT_MIN_CLIP_SCORE"]

#: Default per-option minimum segment score. Twelve Labs returns clips scoring ~28 in its
#: examples, so its floor is below that; 20 keeps chance-level cosines (|cos| < 0.2)
#: from matching everything. Override per request via ``threshold``.
DEFAULT_MIN_CLIP_SCORE = 20.0
DEFAULT_PAGE_LIMIT = 10
MAX_PAGE_LIMIT = 50
_TOUCH_EPS = 1e-6  # seconds: segment boundaries that differ by float noise still touch
_CONV = OPTION_CODE["conversation"]


@dataclass(frozen=True, eq=False)
class MediaClass:
    """A classify class with its prompts already vectorised (rows L2-normalised).

    ``options`` / ``conversation_option`` of ``None`` inherit the request's values.
    """

    name: str
    prompts: Sequence[str]
    prompt_vectors: np.ndarray  # (p, d)
    options: tuple[str, ...] | None = None
    conversation_option: str | None = None  # "semantic" | "exact_match" | None
    head: int = 0

    def __post_init__(self) -> None:
        pv = np.asarray(self.prompt_vectors)
        if not self.prompts or pv.ndim != 2 or pv.shape[0] != len(self.prompts):
            raise ValueError(f"class {self.name!r}: need one prompt vector row per prompt")
        if not all(isinstance(p, str) and p.strip() for p in self.prompts):
            # an empty prompt would exact-match every word boundary of every text
            raise ValueError(f"class {self.name!r}: prompts must be non-empty strings")
        _check_options(self.options or OPTIONS)
        _check_conversation_option(self.conversation_option or "semantic")


def _check_options(options: Collection[str]) -> None:
    if not options or any(o not in OPTION_CODE for o in options):
        raise ValueError(f"options must be a non-empty subset of {OPTIONS}, got {options!r}")


def _check_conversation_option(value: str) -> None:
    if value not in ("semantic", "exact_match"):
        raise ValueError(f"conversation_option must be semantic or exact_match, got {value!r}")


@lru_cache(maxsize=1024)
def _prompt_regex(prompts: tuple[str, ...]) -> re.Pattern[str]:
    # One alternation per class: a single scan per segment text instead of one per prompt.
    return re.compile(r"\b(?:" + "|".join(f"({re.escape(p)})" for p in prompts) + r")\b", re.IGNORECASE)


def _segment_scores(
    seg: SegmentArrays, classes: Sequence[MediaClass], options: Collection[str], conversation_option: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (n, C) float64 in 0..100, prompt index (n, C) int)``; ineligible → 0."""
    n, n_cls = seg.n, len(classes)
    scores = np.zeros((n, n_cls))
    prompt_idx = np.zeros((n, n_cls), np.intp)
    if n == 0 or n_cls == 0:
        return scores, prompt_idx
    if seg.dim and seg.has_vector.any():
        q = np.concatenate([np.asarray(c.prompt_vectors, np.float32) for c in classes])
        if q.shape[1] != seg.dim:
            raise ValueError(f"prompt vectors have dim {q.shape[1]}, segments {seg.dim}")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        sims = seg.vectors @ q.T  # the one matrix product: (n, d) x (d, P)
        bounds = np.cumsum([0] + [len(c.prompts) for c in classes])
        for c in range(n_cls):
            block = sims[:, bounds[c] : bounds[c + 1]]
            prompt_idx[:, c] = block.argmax(axis=1)
            best = np.take_along_axis(block, prompt_idx[:, c : c + 1], axis=1)[:, 0]
            scores[:, c] = 100.0 * np.maximum(best, 0.0)
        scores[~seg.has_vector] = 0.0  # zero rows already give 0; be explicit for clarity
    allowed = np.zeros((n_cls, len(OPTIONS)), bool)
    for c, cls in enumerate(classes):
        allowed[c, [OPTION_CODE[o] for o in (cls.options or options)]] = True
    scores *= allowed[:, seg.options].T
    conv_rows = np.flatnonzero(seg.options == _CONV)
    for c, cls in enumerate(classes):
        if (cls.conversation_option or conversation_option) != "exact_match" or not allowed[c, _CONV]:
            continue
        rx = _prompt_regex(tuple(cls.prompts))
        scores[conv_rows, c] = 0.0
        for i in conv_rows.tolist():
            m = rx.search(seg.texts[i]) if seg.texts[i] else None
            if m is not None:
                assert m.lastindex is not None  # every alternative is a group: a match sets one
                scores[i, c], prompt_idx[i, c] = 100.0, m.lastindex - 1
    return scores, prompt_idx


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Total length covered by intervals ``[starts, ends]`` (overlaps counted once)."""
    if starts.size == 0:
        return 0.0
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    first = np.r_[True, s[1:] > reach[:-1]]  # a new block starts past everything before
    block_end = np.maximum.reduceat(e, np.flatnonzero(first))
    return float(np.sum(block_end - s[first]))


def _clips(cls: MediaClass, rows: np.ndarray, seg: SegmentArrays, s: np.ndarray,
           p_idx: np.ndarray, rnd: Any) -> list[dict[str, Any]]:
    """Merge matched segment rows into clips; ``s`` / ``p_idx`` are full columns (by row)."""
    clips: list[dict[str, Any]] = []
    for code in np.unique(seg.options[rows]).tolist():
        sel = rows[seg.options[rows] == code]  # absolute row numbers, then time order
        sel = sel[np.lexsort((seg.ends[sel], seg.starts[sel]))]
        st, en = seg.starts[sel], seg.ends[sel]
        reach = np.maximum.accumulate(en)
        new = np.r_[True, st[1:] > reach[:-1] + _TOUCH_EPS]  # a gap opens a new clip
        g0, gid = np.flatnonzero(new), np.cumsum(new) - 1
        g_end = np.maximum.reduceat(en, g0)
        # Best segment per clip: sort by (clip, -score); the first row of each clip wins.
        order = np.lexsort((-s[sel], gid))
        best = sel[order[np.r_[0, np.cumsum(np.bincount(gid))[:-1]]]]
        has_thumb = np.fromiter((seg.thumbnails[i] is not None for i in sel.tolist()), bool, sel.size)
        thumb = np.minimum.reduceat(np.where(has_thumb, np.arange(sel.size), sel.size), g0)
        for k in range(g0.size):
            b = int(best[k])
            clips.append({
                "start": float(st[g0[k]]), "end": float(g_end[k]), "score": rnd(s[b]),
                "option": OPTIONS[code], "prompt": cls.prompts[int(p_idx[b])],
                "thumbnail_url": seg.thumbnails[sel[thumb[k]]] if thumb[k] < sel.size else None,
            })
    clips.sort(key=lambda c: (-c["score"], c["start"], OPTION_CODE[c["option"]]))
    return clips


def classify_media(
    segments: SegmentArrays,
    duration: float | None,
    classes: Sequence[MediaClass],
    *,
    video_id: str = "",
    options: Collection[str] = OPTIONS,
    conversation_option: str = "semantic",
    include_clips: bool = False,
    show_detailed_score: bool = False,
    threshold: Mapping[str, float] | None = None,
    ndigits: int | None = 2,
) -> dict[str, Any]:
    """Classify one video (or image/audio) as Twelve Labs ``classify`` would; see the
    module docstring for every formula. Raises ``ValueError`` on invalid options,
    ``conversation_option``, threshold keys or mismatched vector sizes."""
    _check_options(options)
    _check_conversation_option(conversation_option)
    duration = float(duration or 0.0)  # images may carry no duration
    threshold = dict(threshold or {})
    if unknown := set(threshold) - THRESHOLD_KEYS:
        raise ValueError(f"unknown threshold keys {sorted(unknown)}; allowed {sorted(THRESHOLD_KEYS)}")
    default_thr = float(threshold.get("min_clip_score", DEFAULT_MIN_CLIP_SCORE))
    thr = np.array([float(threshold.get(o, default_thr)) for o in OPTIONS])
    min_video = float(threshold.get("min_video_score", 0.0))
    min_ratio = float(threshold.get("min_duration_ratio", 0.0))

    def rnd(x: float) -> float:
        return float(x) if ndigits is None else round(float(x), ndigits)

    scores, prompt_idx = _segment_scores(segments, classes, options, conversation_option)
    matched = (scores > 0) & (scores >= thr[segments.options][:, None])
    weights = np.maximum(segments.durations, 0.0)
    clipped_ends = np.minimum(segments.ends, duration) if duration > 0 else segments.ends
    out: list[tuple[float, dict[str, Any]]] = []
    for c, cls in enumerate(classes):
        rows = np.flatnonzero(matched[:, c])
        if rows.size == 0:
            continue
        s, w = scores[rows, c], weights[rows]
        score = float(w @ s / w.sum()) if w.sum() > 0 else float(s.mean())
        if duration > 0:
            starts = np.clip(segments.starts[rows], 0.0, duration)
            ratio = min(1.0, _union_length(starts, np.maximum(clipped_ends[rows], starts)) / duration)
        else:
            ratio = 1.0
        if score < min_video or ratio < min_ratio:
            continue
        entry: dict[str, Any] = {"name": cls.name, "score": rnd(score), "duration_ratio": rnd(ratio)}
        if include_clips:
            entry["clips"] = _clips(cls, rows, segments, scores[:, c], prompt_idx[:, c], rnd)
        if show_detailed_score:
            entry["detailed_scores"] = {"max_score": rnd(s.max()), "avg_score": rnd(s.mean())}
        out.append((score, entry))
    out.sort(key=lambda t: (-t[0], t[1]["name"]))
    result = [e for _, e in out]
    if show_detailed_score:
        total = sum(e["score"] for e in result)
        for e in result:
            e["detailed_scores"]["normalized_score"] = 100.0 * e["score"] / total if total > 0 else 0.0
    return {"video_id": video_id, "classes": result}


def classify_page(
    videos: Sequence[Mapping[str, Any]],
    *,
    page_limit: int | None = None,
    page: int = 0,
    token_prefix: str = "",
    page_expired_at: str = "",
) -> dict[str, Any]:
    """One page of a classify response: ``{data, page_info: {limit_per_page,
    total_results, page_expired_at, next_page_token, prev_page_token}}``. Tokens are
    ``f"{token_prefix}-{page}"`` (``""`` when there is no such page); the caller stores
    the full result under ``token_prefix`` and supplies the expiry time (no clock here).

    >>> p = classify_page([{"video_id": "a"}, {"video_id": "b"}, {"video_id": "c"}], page_limit=2, token_prefix="q1")
    >>> [v["video_id"] for v in p["data"]], p["page_info"]["next_page_token"], p["page_info"]["prev_page_token"]
    (['a', 'b'], 'q1-1', '')
    >>> parse_page_token("q1-1")
    ('q1', 1)
    """
    limit = DEFAULT_PAGE_LIMIT if page_limit is None else int(page_limit)
    if not 1 <= limit <= MAX_PAGE_LIMIT or page < 0:
        raise ValueError(f"page_limit must be in 1..{MAX_PAGE_LIMIT} and page >= 0")
    total = len(videos)
    has_next = (page + 1) * limit < total
    return {
        "data": list(videos[page * limit : (page + 1) * limit]),
        "page_info": {
            "limit_per_page": limit,
            "total_results": total,
            "page_expired_at": page_expired_at,
            "next_page_token": f"{token_prefix}-{page + 1}" if has_next else "",
            "prev_page_token": f"{token_prefix}-{page - 1}" if page > 0 else "",
        },
    }


def parse_page_token(token: str) -> tuple[str, int]:
    """Inverse of the tokens made by :func:`classify_page`; ``ValueError`` if malformed."""
    prefix, sep, page = token.rpartition("-")
    if not sep or not page.isdigit():
        raise ValueError(f"malformed page token {token!r}")
    return prefix, int(page)
