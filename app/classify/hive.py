"""Hive's task API on request, as a pure step: one media item in, the task envelope out.

``POST /api/v2/task/sync`` posts a whole media item (our media event shape, ``app/schemas/media.py``)
and names the media classifier (Hive's model) in ``classifier`` (or ``model``; optional when
exactly one media classifier applies to the item's index). The item is classified exactly as the
media pipeline would (``app.classify.media``: prepare, the result cache, classify), so an identical
item under the same taxonomy version and settings is served from the ``media-cache`` table and the
envelope says ``from_cache: true``. The step returns the envelope, the result record (for the
async form, published to the results topic) and the cache writes, as data.

Errors are :class:`HiveError` (HTTP status, message), answered in Hive's shape by the view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.classify import media as engine
from app.classify.codec import Rejected, from_validation_error
from app.classify.outcome import TableWrite
from app.classify.state import ModelState
from app.schemas.deadletter import Source
from app.schemas.media import MediaEvent
from app.schemas.results import Result

CACHE = "media-cache"
#: Rejections that mean "no such thing" (404) rather than a bad request (400).
_NOT_FOUND = {"unknown_classifier", "no_media_classifier", "unknown_taxonomy"}


class HiveError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status, self.message = status, message


@dataclass
class Task:
    envelope: dict[str, Any]
    result: Result
    writes: list[TableWrite] = field(default_factory=list)


def parse_task(body: Any) -> MediaEvent:
    """The media event of a task request. ``model`` is accepted as Hive's name for ``classifier``.

    >>> parse_task({"media_id": "m", "kind": "image", "model": "nsfw",
    ...             "segments": [{"start": 0, "end": 0, "vector": [1]}]}).classifier
    'nsfw'
    >>> parse_task({"media_id": "m", "kind": "video", "segments": []})
    Traceback (most recent call last):
    ...
    app.classify.hive.HiveError: (400, 'segments: List should have at least 1 item after validation, not 0')
    """
    if not isinstance(body, dict):
        raise HiveError(400, "the request body must be a JSON object: a media item and its classifier")
    if "model" in body and "classifier" not in body:
        body = {**body, "classifier": body["model"]}
    try:
        ev = MediaEvent.model_validate(body)
    except ValidationError as e:
        r = from_validation_error(e)
        raise HiveError(400, r.detail) from None
    if ev.chunk is not None:
        raise HiveError(400, "a task takes a whole media item: send chunks to the media topic instead")
    return ev


def run_task(state: ModelState, ev: MediaEvent, read_cache: Callable[[bytes], bytes | None], *, source: Source,
             now: int) -> Task:
    """Classify one media item with its classifier: the Hive envelope, the result, the cache writes."""
    settings = state.settings
    if len(ev.segments) > settings.max_segments:
        raise HiveError(400, f"{len(ev.segments)} segments, the limit is {settings.max_segments}")
    item = engine.whole(ev, source)
    try:
        job = engine.prepare(state, item)
        if len(job.runs) != 1:
            names = sorted(r.classifier.name for r in job.runs)
            raise HiveError(400, f"{len(names)} media classifiers apply to index {ev.index_id!r} ({names}): "
                            "name one in 'classifier'")
        run = job.runs[0]
        if engine.media_settings(run.classifier).output == "twelvelabs":
            raise HiveError(400, f"classifier {run.classifier.name!r} has output 'twelvelabs': it writes no "
                            "Hive per-frame output")
        computed = engine.classify(job, {k: read_cache(k) for k in job.cache_keys}, now)
    except Rejected as r:
        raise HiveError(404 if r.reason in _NOT_FOUND else 400, f"{r.reason}: {r.detail}") from None
    [result] = computed.results
    return Task(result.detail["hive"], result, [TableWrite(CACHE, k, v) for k, v in computed.cache_writes.items()])


def pending(task_id: str, created_on: str) -> Mapping[str, Any]:
    """The envelope of an async task not finished yet (Hive's status while the task runs)."""
    return {"id": task_id, "code": 200, "created_on": created_on,
            "status": {"status": {"code": 1, "message": "PENDING"}, "response": None}, "from_cache": False,
            "metadata": None}
