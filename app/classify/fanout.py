"""A classify request over every worker's media: who answers which partitions, and the merge.

The media store (``media-store``) is partitioned like the media topic: a worker holds the items
of its partitions. The worker that takes ``POST /v1.2/classify`` or ``/bulk`` asks the owner of
every partition (itself included) for the answers of the items it holds there -- each item is
classified where it is stored, as a job's runner works its own partitions -- and merges the
answers here into exactly what one worker holding everything answers: the same items (a video
stored under several partitions counts once, from its lowest partition, as the single-worker
lookup finds it), the same order (the request's video ids; an index's items by media_id), the
same first error (``app.classify.twelvelabs.first_error``), the same scores (the same pure step,
``classify_each``, on the same stored bytes).

A **share** is one worker's answer for some partitions: ``{"answered": [partition...], "count":
n, "refused": bool, "items": [item...]}`` -- ``count`` the index's items it holds (bulk),
``refused`` when that alone is over the limit (nothing classified) -- and an **item** is
``{"media_id", "index_id", "partition", "result": {...}}`` or the same with ``"error": {"status",
"code", "message"}``. Partitions a worker was asked for and no longer owns (a rebalance) are not
in ``answered``: the caller asks their new owner.

>>> g = Gathered()
>>> g.add(share([0, 1], [item("b", "i", 1, {"video_id": "b"})], count=1))
>>> g.add(share([2], [item("a", "i", 2, {"video_id": "a"}), item("b", "i", 2, {"video_id": "b2"})], count=2))
>>> [v["video_id"] for v in merge_index("i", g, declared=True, max_videos=5)]
['a', 'b', 'b2']
>>> [v["video_id"] for v in merge_videos(["b", "a"], g.items)]
['b', 'a']
>>> merge_index("i", g, declared=True, max_videos=2)
Traceback (most recent call last):
...
app.classify.twelvelabs.ApiError: (400, 'parameter_invalid', 'The index i holds 3 videos; one request classifies at most 2.')
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.classify.twelvelabs import ApiError, first_error

__all__ = ["plan", "item", "share", "Gathered", "merge_videos", "merge_index"]


def plan(needed: Collection[int], owners: Mapping[int, str]) -> dict[str, list[int]]:
    """The partitions to ask each worker for (``owners``: partition -> the URL of its worker); a
    partition without an owner (being reassigned) is in no list.

    >>> plan({0, 1, 2, 3}, {0: "http://a", 1: "http://b", 3: "http://a", 7: "http://b"})
    {'http://a': [0, 3], 'http://b': [1]}
    """
    out: dict[str, list[int]] = {}
    for p in sorted(needed):
        if p in owners:
            out.setdefault(owners[p], []).append(p)
    return out


def item(media_id: str, index_id: str, partition: int, answer: Mapping[str, Any] | ApiError) -> dict[str, Any]:
    """One stored item's answer, as a share carries it.

    >>> item("v", "i", 3, ApiError(400, "parameter_invalid", "no"))
    {'media_id': 'v', 'index_id': 'i', 'partition': 3, 'error': {'status': 400, 'code': 'parameter_invalid', 'message': 'no'}}
    """
    out: dict[str, Any] = {"media_id": media_id, "index_id": index_id, "partition": partition}
    if isinstance(answer, ApiError):
        out["error"] = {"status": answer.status, "code": answer.code, "message": answer.message}
    else:
        out["result"] = answer
    return out


def share(answered: Sequence[int], items: Sequence[dict[str, Any]], count: int = 0,
          refused: bool = False) -> dict[str, Any]:
    return {"answered": sorted(answered), "count": count, "refused": refused, "items": list(items)}


@dataclass
class Gathered:
    """The shares of every partition, added up."""

    items: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    refused: bool = False
    answered: set[int] = field(default_factory=set)

    def add(self, s: Mapping[str, Any]) -> None:
        """One share; a partition answered twice (it cannot be: each is asked once) counts once."""
        new = set(s["answered"]) - self.answered
        if new != set(s["answered"]):
            raise ValueError(f"partitions {sorted(set(s['answered']) & self.answered)} were answered twice")
        self.answered |= new
        self.items.extend(s["items"])
        self.count += int(s["count"])
        self.refused = self.refused or bool(s["refused"])


def _answers(ordered: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    answers = [ApiError(e["status"], e["code"], e["message"]) if (e := it.get("error")) else it["result"]
               for it in ordered]
    if (err := first_error([it["index_id"] for it in ordered], answers)) is not None:
        raise err
    return [a for a in answers if not isinstance(a, ApiError)]


def merge_videos(video_ids: Sequence[str], items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``POST /v1.2/classify``: the answers in the request's order (a repeated id once); an id no
    worker holds is a 404 (the first one, in the request's order)."""
    best: dict[str, Mapping[str, Any]] = {}
    for it in items:
        if it["media_id"] not in best or it["partition"] < best[it["media_id"]]["partition"]:
            best[it["media_id"]] = it
    ids = list(dict.fromkeys(video_ids))
    if missing := [v for v in ids if v not in best]:
        raise ApiError(404, "resource_not_exist", f"The video {missing[0]} does not exist.")
    return _answers([best[v] for v in ids])


def merge_index(index_id: str, gathered: Gathered, *, declared: bool, max_videos: int) -> list[dict[str, Any]]:
    """``POST /v1.2/classify/bulk``: the index's items by media_id. No item and no ``index`` record:
    404; more items than one request may score: 400."""
    if gathered.count == 0 and not declared:
        raise ApiError(404, "resource_not_exist", f"The index {index_id} does not exist.")
    if gathered.refused or gathered.count > max_videos:  # one request scores them all before the first page
        raise ApiError(400, "parameter_invalid", f"The index {index_id} holds {gathered.count} videos; "
                       f"one request classifies at most {max_videos}.")
    return _answers(sorted(gathered.items, key=lambda it: (it["media_id"], it["partition"])))
