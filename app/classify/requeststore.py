"""Classify pages and Hive async tasks, kept where any worker finds them.

A page token (``GET /v1.2/classify/{page_token}``) and an async task id (``GET
/api/v2/task/{id}``) may reach any worker. Both answers are kept in the changelog-backed
``request-results`` table, each under a key in the id's **home partition** -- the partition the
producer's partitioner gives the id itself (:func:`home`) -- so every worker computes from the id
alone which partition, and so which worker, holds the answer, and forwards the request there.
The worker that makes an id draws random ids until one's home is a partition it owns
(:func:`new_id`): it writes that partition's entries itself, as the owner must (an owner does
not read its own changelog back), and the entries survive a restart or a move of the partition
(changelog recovery).

Why kept, not recomputed from a self-describing token: a token that carried the request would
re-score the whole request for every page (a bulk over thousands of videos, once per page), the
pages would shift under the reader when videos are stored or deleted in between, and classes
with their prompts do not fit a URL. Pages are kept rendered, one entry per page (an entry is
bounded by ``page_limit`` videos, never by the index's size).

Keys and values:

- ``["page", prefix, page, salt]`` -> ``{"at", "expires", "doc": the page as answered}``; a token
  is ``<prefix>-<page>`` (``app.core.media.classify_page``);
- ``["task", task_id, salt]`` -> ``{"at", "expires", "envelope": Hive's task envelope}``.

``at`` (ms) is the write time (``app/classify/expiry.py``: the sweeper removes entries one TTL
after they expired, so an expired token still says when it expired); ``expires`` (s) ends the
answer. An unknown, malformed or expired token is a 400 in Twelve Labs' shape; an unknown or
expired task a 404 in Hive's.

>>> p = lambda page: page_key("tok", page, 8)
>>> first, writes = page_writes([{"video_id": v} for v in "abc"], 2, "tok", now=0.0, ttl=60.0, partitions=8)
>>> first["page_info"]
{'limit_per_page': 2, 'total_results': 3, 'page_expired_at': '1970-01-01T00:01:00Z', 'next_page_token': 'tok-1'}
>>> [w.key for w in writes] == [p(0), p(1)], {partition_of(w.key, 8) for w in writes} == {home("tok", 8)}
(True, True)
>>> store = {w.key: w.value for w in writes}
>>> doc = read_page("tok-1", store.get, now=59.0, partitions=8)
>>> doc["page_info"]["prev_page_token"], [v["video_id"] for v in doc["data"]]
('tok-0', ['c'])
>>> read_page("tok-1", store.get, now=60.0, partitions=8)
Traceback (most recent call last):
...
app.classify.twelvelabs.ApiError: (400, 'parameter_invalid', 'The page token tok-1 has expired (at 1970-01-01T00:01:00Z): send the classify request again.')
>>> read_page("tok-2", store.get, now=1.0, partitions=8)
Traceback (most recent call last):
...
app.classify.twelvelabs.ApiError: (400, 'parameter_invalid', 'The page token tok-2 points past the last page.')
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import orjson

from app.classify.assembly import colocated, partition_of
from app.classify.expiry import stamped
from app.classify.outcome import TableWrite
from app.classify.twelvelabs import ApiError, iso
from app.core.media import classify_page, parse_page_token

TABLE = "request-results"
#: An entry must fit one changelog message (16 MiB, ``app.topics.BIG``) with headroom.
ENTRY_LIMIT = 15 * 1024 * 1024

__all__ = ["TABLE", "ENTRY_LIMIT", "home", "new_id", "page_key", "task_key", "page_writes", "read_page",
           "token_home", "task_write", "read_task", "partition_of"]

Lookup = Callable[[bytes], "bytes | None"]


def home(ident: str, partitions: int) -> int:
    """The partition that holds the answers of a token prefix or task id.

    >>> home("tok", 8) == partition_of(b"tok", 8)
    True
    """
    return partition_of(ident.encode(errors="surrogateescape"), partitions)


def new_id(make: Callable[[], str], owned: Collection[int], partitions: int, tries: int = 10_000) -> str:
    """An id from ``make()`` whose home is one of the ``owned`` partitions (expected
    ``partitions / len(owned)`` draws). ``ValueError`` when this worker owns none.

    >>> ids = iter(["a", "b", "c", "d", "e", "f"])
    >>> ident = new_id(lambda: next(ids), {home("d", 8)}, 8)
    >>> home(ident, 8) == home("d", 8)
    True
    """
    if not owned:
        raise ValueError("this worker owns no partition of the request-results table")
    for _ in range(tries):
        ident = make()
        if home(ident, partitions) in owned:
            return ident
    raise ValueError(f"no id with a home in {sorted(owned)} after {tries} draws")


def page_key(prefix: str, page: int, partitions: int) -> bytes:
    return colocated(["page", prefix, page], home(prefix, partitions), partitions)


def task_key(task_id: str, partitions: int) -> bytes:
    return colocated(["task", task_id], home(task_id, partitions), partitions)


def token_home(token: str, partitions: int) -> int:
    """The home partition of a page token. ``ValueError`` for a malformed token.

    >>> token_home("tok-3", 8) == home("tok", 8)
    True
    """
    return home(parse_page_token(token)[0], partitions)


def _render(videos: Sequence[dict[str, Any]], limit: int, page: int, prefix: str, expires: float) -> dict[str, Any]:
    doc = classify_page(videos, page_limit=limit, page=page, token_prefix=prefix, page_expired_at=iso(expires))
    info = doc["page_info"]
    for k in ("next_page_token", "prev_page_token"):  # absent on the last / first page (v1.2)
        if not info[k]:
            del info[k]
    return doc


def page_writes(videos: Sequence[dict[str, Any]], limit: int, prefix: str, *, now: float, ttl: float,
                partitions: int) -> tuple[dict[str, Any], list[TableWrite]]:
    """The first page and the writes that keep every page (one at least, empty or not) until
    ``now + ttl``. Raises :class:`ApiError` when a page would not fit one entry."""
    expires = now + ttl
    pages = max(1, -(-len(videos) // limit))
    docs = [_render(videos, limit, page, prefix, expires) for page in range(pages)]
    writes = []
    for page, doc in enumerate(docs):
        value = stamped(int(now * 1000), {"expires": expires, "doc": doc})
        if len(value) > ENTRY_LIMIT:
            raise ApiError(400, "parameter_invalid", f"Page {page} of this answer is {len(value)} bytes, more than "
                           f"the {ENTRY_LIMIT} a page may be: ask for a smaller `page_limit`.")
        writes.append(TableWrite(TABLE, page_key(prefix, page, partitions), value))
    return docs[0], writes


def read_page(token: str, lookup: Lookup, *, now: float, partitions: int) -> dict[str, Any]:
    """The page a token names, from the home partition's entries (``lookup``)."""
    try:
        prefix, page = parse_page_token(token)
    except ValueError:
        raise ApiError(400, "parameter_invalid", f"The page token {token} is not valid.") from None
    value = lookup(page_key(prefix, page, partitions))
    first = value if page == 0 or value is not None else lookup(page_key(prefix, 0, partitions))
    if first is None:
        raise ApiError(400, "parameter_invalid", f"The page token {token} is unknown or has expired: send the "
                       "classify request again.")
    entry = orjson.loads(value if value is not None else first)
    if now >= entry["expires"]:
        raise ApiError(400, "parameter_invalid", f"The page token {token} has expired (at {iso(entry['expires'])}): "
                       "send the classify request again.")
    if value is None:
        raise ApiError(400, "parameter_invalid", f"The page token {token} points past the last page.")
    doc: dict[str, Any] = entry["doc"]
    return doc


def task_write(task_id: str, envelope: dict[str, Any], *, now: float, ttl: float, partitions: int) -> TableWrite:
    """The write that keeps a task's envelope until ``now + ttl`` (one too large to keep is replaced
    by an error envelope: the result itself is on the results topic).

    >>> w = task_write("t1", {"id": "t1"}, now=0.0, ttl=60.0, partitions=8)
    >>> read_task(w.value, now=59.0), read_task(w.value, now=60.0), read_task(None, now=0.0)
    ({'id': 't1'}, None, None)
    """
    value = stamped(int(now * 1000), {"expires": now + ttl, "envelope": envelope})
    if len(value) > ENTRY_LIMIT:
        message = f"the task's envelope is {len(value)} bytes, too large to keep: its result is on the results topic"
        value = stamped(int(now * 1000), {"expires": now + ttl, "envelope": {
            **{k: envelope.get(k) for k in ("id", "code", "created_on")}, "code": 500,
            "status": {"status": {"code": 500, "message": message}, "response": None}}})
    return TableWrite(TABLE, task_key(task_id, partitions), value)


def read_task(value: bytes | None, *, now: float) -> dict[str, Any] | None:
    """A kept envelope, or None when there is none or it has expired."""
    if value is None:
        return None
    entry = orjson.loads(value)
    if now >= entry["expires"]:
        return None
    envelope: dict[str, Any] = entry["envelope"]
    return envelope

