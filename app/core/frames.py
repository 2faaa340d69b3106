"""Hive-style per-frame output for multi-head models, and the Hive task envelope.

Segments are grouped by time step (the segment ``start`` in seconds; always 0 for an
image). At each time step every class of the model gets a score:

* class similarity = max over the class's prompt vectors and over the segments of that
  time step that have vectors (cosine, one matrix product for all segments and prompts);
* scores = :func:`app.core.heads.head_softmax` of those similarities, so the classes of
  each head sum to 1 at every time step.

Time steps with no vector-bearing segment are omitted (no evidence to score). Output
shape (``status.response.output`` in hive-classification-output.md)::

    [{"time": t, "classes": [{"class": name, "score": s}, ...]}, ...]   # time ascending

>>> import numpy as np
>>> from app.core.media import MediaClass
>>> from app.core.segments import SegmentArrays
>>> segs = SegmentArrays.from_segments([{"start": 0, "end": 0, "option": "visual", "vector": [1.0, 0.0]}])
>>> model = [MediaClass("gun", ["a gun"], np.array([[1.0, 0.0]])),
...          MediaClass("no_gun", ["no gun"], np.array([[0.0, 1.0]]))]
>>> out = frame_scores(segs, model, temperature=1.0, image=True)
>>> out[0]["time"], [c["class"] for c in out[0]["classes"]], round(sum(c["score"] for c in out[0]["classes"]), 6)
(0, ['gun', 'no_gun'], 1.0)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from app.core.heads import head_softmax
from app.core.media import MediaClass
from app.core.segments import OPTION_CODE, SegmentArrays

__all__ = ["frame_similarities", "frame_scores", "hive_media", "hive_envelope"]


def _number(x: float) -> int | float:
    # Hive writes whole seconds as integers ("time": 0); keep fractions as floats.
    return int(x) if float(x).is_integer() else float(x)


def frame_similarities(
    segments: SegmentArrays,
    classes: Sequence[MediaClass],
    *,
    image: bool = False,
    options: Collection[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(times (T,) ascending, class similarities (T, C) float32)``.

    Only segments with vectors (and, if given, an option in ``options``) count.

    >>> from app.core.media import MediaClass
    >>> segs = SegmentArrays.from_segments([
    ...     {"start": 2, "end": 4, "option": "visual", "vector": [1.0, 0.0]},
    ...     {"start": 2, "end": 4, "option": "text_in_video", "vector": [0.0, 1.0]},
    ...     {"start": 0, "end": 2, "option": "visual", "vector": [0.6, 0.8]}])
    >>> t, s = frame_similarities(segs, [MediaClass("a", ["x", "y"], np.array([[1.0, 0.0], [-1.0, 0.0]]))])
    >>> t.tolist(), s.astype(float).round(3).tolist()
    ([0.0, 2.0], [[0.6], [1.0]])
    """
    keep = segments.has_vector.copy()
    if options is not None:
        keep &= np.isin(segments.options, [OPTION_CODE[o] for o in options])
    rows = np.flatnonzero(keep)
    if rows.size == 0 or not classes:
        return np.zeros(0), np.zeros((0, len(classes)), np.float32)
    q = np.concatenate([np.asarray(c.prompt_vectors, np.float32) for c in classes])
    if q.shape[1] != segments.dim:
        raise ValueError(f"prompt vectors have dim {q.shape[1]}, segments {segments.dim}")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    sims = segments.vectors[rows] @ q.T  # (r, P): every kept segment against every prompt
    bounds = np.cumsum([0] + [len(c.prompts) for c in classes])[:-1]
    per_class = np.maximum.reduceat(sims, bounds, axis=1)  # max over each class's prompts
    times = np.zeros(rows.size) if image else segments.starts[rows]
    uniq, inv = np.unique(times, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    first = np.r_[0, np.cumsum(np.bincount(inv))[:-1]]
    return uniq, np.maximum.reduceat(per_class[order], first, axis=0)  # max over the step


def frame_scores(
    segments: SegmentArrays,
    classes: Sequence[MediaClass],
    *,
    temperature: float,
    image: bool = False,
    options: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Per-time-step scores of every class, each head summing to 1 (see module doc)."""
    times, sims = frame_similarities(segments, classes, image=image, options=options)
    if times.size == 0:
        return []
    heads = np.asarray([c.head for c in classes], dtype=np.int64)
    probs = np.asarray(head_softmax(sims.astype(np.float64), heads, temperature))
    names = [c.name for c in classes]
    return [
        {"time": _number(t), "classes": [{"class": n, "score": float(p)} for n, p in zip(names, row)]}
        for t, row in zip(times.tolist(), probs.tolist())
    ]


def hive_media(event: Mapping[str, Any]) -> dict[str, Any]:
    """``input.media`` from a media event (``kind`` becomes ``type``; absent numbers 0).

    >>> hive_media({"kind": "image", "mimetype": "image/png", "width": 640, "height": 480})
    {'type': 'image', 'mimetype': 'image/png', 'duration': 0, 'width': 640, 'height': 480}
    """
    return {
        "type": event.get("kind") or "",
        "mimetype": event.get("mimetype") or "",
        "duration": _number(event.get("duration") or 0),
        "width": int(event.get("width") or 0),
        "height": int(event.get("height") or 0),
    }


def hive_envelope(
    *,
    task_id: str,
    output: list[dict[str, Any]],
    model: str,
    model_version: int | str,
    model_type: str,
    created_on: str,
    media: Mapping[str, Any],
    code: int = 200,
    status_code: int = 0,
    message: str = "SUCCESS",
    charge: float = 0,
    project_id: int | str | None = None,
    user_id: int | str | None = None,
    from_cache: bool = False,
    metadata: Any = None,
    input_id: str | None = None,
    input_created_on: str | None = None,
) -> dict[str, Any]:
    """The task record of hive-classification-output.md around a per-frame ``output``.

    ``project_id`` / ``user_id`` appear (top level and in ``input``) only when given;
    ``input.id`` and ``input.created_on`` default to ``task_id`` and ``created_on``.
    Pure: the caller supplies ids and timestamps.

    >>> env = hive_envelope(task_id="t1", output=[], model="nsfw", model_version=1, model_type="CATEGORIZATION",
    ...                     created_on="2020-05-25T19:55:02.312Z", media=hive_media({"kind": "image"}))
    >>> list(env), env["status"]["status"], list(env["status"]["response"]["input"])
    (['id', 'code', 'created_on', 'status', 'from_cache', 'metadata'], {'code': 0, 'message': 'SUCCESS'}, \
['id', 'charge', 'model', 'model_version', 'model_type', 'created_on', 'media'])
    """
    ids = {k: v for k, v in (("project_id", project_id), ("user_id", user_id)) if v is not None}
    inp: dict[str, Any] = {
        "id": input_id if input_id is not None else task_id,
        "charge": charge,
        "model": model,
        "model_version": model_version,
        "model_type": model_type,
        "created_on": input_created_on if input_created_on is not None else created_on,
        "media": {k: media[k] for k in ("type", "mimetype", "duration", "width", "height")},
    }
    if user_id is not None:
        inp["user_id"] = user_id
    if project_id is not None:
        inp["project_id"] = project_id
    return {
        "id": task_id,
        "code": code,
        **ids,
        "created_on": created_on,
        "status": {
            "status": {"code": status_code, "message": message},
            "response": {"input": inp, "output": output},
        },
        "from_cache": from_cache,
        "metadata": metadata,
    }
