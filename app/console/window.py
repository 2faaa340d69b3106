"""What the console shows, as plain data: a bounded recent window of the output topics.

The worker's console feed (``app/service/console_feed.py``) reads ``results``, ``moderation``,
``deadletter``, ``feedback`` and ``training`` and hands every record to a :class:`Window`;
the web views only ask it questions. No Kafka, no HTTP here.

    >>> w = Window(max_results=2)
    >>> for i in range(3):
    ...     _ = w.add_result({"result_id": f"c{i}/tone", "item_id": f"c{i}", "class": "Comment", "classifier": "tone",
    ...                   "method": "zeroshot", "labels": {"tone": "toxic" if i else "calm"},
    ...                   "taxonomies": [{"name": "tone", "version": 1}], "source": {"offset": i}})
    >>> [s["result_id"] for s in w.results({"label": "toxic"})]   # newest first; c0 fell out of the window
    ['c2/tone', 'c1/tone']
    >>> w.add_hit({"item_id": "c1", "action": "review", "rule": "r", "class_name": "toxic", "score": 0.7,
    ...            "scores": {"toxic": 0.7, "calm": 0.3}, "taxonomy": {"name": "tone", "version": 1},
    ...            "source": {"timestamp": 5}})
    >>> q = w.review_queue(("review",)); [(e["id"], e["result_id"]) for e in q]
    [('c1|tone', 'c1/tone')]
    >>> len(w), w.queue(("review",), limit=0)    # results in the window; open hits, none of them decoded
    (2, (1, []))
    >>> w.add_feedback({"op": "verdict", "item_id": "c1", "result_id": "c1/tone", "reviewer": "ana"})
    >>> w.review_queue(("review",))
    []
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections import Counter, OrderedDict, deque
from typing import Any

import orjson

FILTERS = ("classifier", "label", "action", "item")
SEVERITY = {"allow": 0, "review": 1, "block": 2}


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The row of the live table: what one result decided.

    >>> summary({"result_id": "a/k", "item_id": "a", "class": "C", "classifier": "k", "method": "zeroshot",
    ...          "labels": {"p": "x"}, "confidence": {"p": 0.9},
    ...          "detail": {"policy": {"t": {"action": "review"}, "u": {"action": "allow"}}}})["action"]
    'review'
    """
    policy = (r.get("detail") or {}).get("policy") or {}
    actions = [p.get("action") for p in policy.values() if isinstance(p, dict) and p.get("action")]
    action = max(actions, key=lambda a: SEVERITY.get(str(a), 0)) if actions else None
    return {"result_id": r.get("result_id"), "item_id": r.get("item_id"), "item_kind": r.get("item_kind", "object"),
            "class": r.get("class"), "classifier": r.get("classifier"), "method": r.get("method"),
            "labels": r.get("labels") or {}, "confidence": r.get("confidence") or {}, "action": action,
            "taxonomies": [t.get("name") for t in r.get("taxonomies") or []],
            "versions": {**{t["name"]: t["version"] for t in r.get("taxonomies") or []},
                         **{f"index:{p}": v for p, v in (r.get("index_version") or {}).items()}},
            "event_time": r.get("event_time")}


def matches(s: dict[str, Any], filters: dict[str, str]) -> bool:
    """Live-table filters: exact classifier, label (any property), action; item id substring.

    >>> s = {"classifier": "k", "labels": {"p": "x"}, "action": None, "item_id": "abc"}
    >>> matches(s, {"classifier": "k", "label": "x", "item": "b"}), matches(s, {"action": "review"})
    (True, False)
    >>> matches(s, {"action": "allow"}), matches(s, {"label": ""})
    (True, True)
    """
    f = {k: v for k, v in filters.items() if v}
    if "classifier" in f and s.get("classifier") != f["classifier"]:
        return False
    if "label" in f and f["label"] not in (s.get("labels") or {}).values():
        return False
    if "action" in f and (s.get("action") or "allow") != f["action"]:
        return False
    return "item" not in f or f["item"] in (s.get("item_id") or "")


def decode_original(dl: dict[str, Any]) -> dict[str, Any]:
    """A dead letter's original record, decoded where possible.

    >>> decode_original({"value_b64": base64.b64encode(b'{"id": 1}').decode()})
    {'text': '{"id": 1}', 'json': {'id': 1}, 'binary': False}
    >>> decode_original({"value_b64": "////"})["binary"], decode_original({})
    (True, {'text': None, 'json': None, 'binary': False})
    """
    try:
        raw = base64.b64decode(dl.get("value_b64") or "", validate=True)
    except (binascii.Error, ValueError):
        return {"text": None, "json": None, "binary": True}
    if not dl.get("value_b64"):
        return {"text": None, "json": None, "binary": False}
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return {"text": None, "json": None, "binary": True}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    return {"text": text, "json": parsed, "binary": False}


class Window:
    """The recent results (``max_results``), open moderation hits, recent dead letters, and the
    judged items; counts per dead-letter reason since the feed started."""

    def __init__(self, max_results: int = 10_000, max_hits: int = 10_000, max_dead: int = 2_000):
        self._seq = itertools.count()
        # result_id -> the result as JSON bytes, oldest first: a decoded result costs ~10x its JSON in
        # memory (10,000 zero-shot results: ~97 MB as dicts, ~10 MB as bytes); decoded when asked for
        self._results: OrderedDict[str, bytes] = OrderedDict()
        self._rows: dict[str, dict[str, Any]] = {}  # result_id -> its summary (made once: filters scan these)
        self._by_item: dict[str, list[str]] = {}
        self.max_results = max_results
        self._hits: OrderedDict[str, dict[str, Any]] = OrderedDict()  # "<item>|<taxonomy>" -> hit
        self.max_hits = max_hits
        self._judged: set[str] = set()  # result ids with a verdict
        self._judged_hits: set[str] = set()  # "<item>|<taxonomy>" with a verdict (also when the result has left)
        self.dead: deque[dict[str, Any]] = deque(maxlen=max_dead)
        self.dead_reasons: Counter[str] = Counter()
        self.republished: set[int] = set()
        self.counts: Counter[str] = Counter()  # records seen per topic family

    # -- writers (the feed) -------------------------------------------------------------
    def add_result(self, r: dict[str, Any], raw: bytes | None = None) -> dict[str, Any]:
        """Keep a result (``raw``: its JSON as read, else it is serialized); returns its summary."""
        self.counts["results"] += 1
        rid = str(r.get("result_id"))
        self._results.pop(rid, None)
        self._results[rid] = raw if raw is not None else orjson.dumps(r)
        row = self._rows[rid] = summary(r)
        self._by_item.setdefault(str(r.get("item_id")), []).append(rid)
        while len(self._results) > self.max_results:
            old_id, _ = self._results.popitem(last=False)
            old = self._rows.pop(old_id)
            ids = self._by_item.get(str(old.get("item_id")), [])
            if old_id in ids:
                ids.remove(old_id)
            if not ids:
                self._by_item.pop(str(old.get("item_id")), None)
        return row

    def add_hit(self, h: dict[str, Any]) -> None:
        self.counts["moderation"] += 1
        hid = f"{h.get('item_id')}|{(h.get('taxonomy') or {}).get('name')}"
        self._hits.pop(hid, None)
        self._hits[hid] = {**h, "id": hid, "seq": next(self._seq)}
        while len(self._hits) > self.max_hits:
            self._hits.popitem(last=False)

    def add_dead(self, dl: dict[str, Any]) -> None:
        self.counts["deadletter"] += 1
        self.dead_reasons[str(dl.get("reason"))] += 1
        self.dead.append({**dl, "id": next(self._seq)})

    def add_feedback(self, fb: dict[str, Any]) -> None:
        self.counts["feedback"] += 1
        rid = str(fb.get("result_id"))
        tax = (fb.get("taxonomy") or {}).get("name")
        hid = f"{fb.get('item_id')}|{tax}" if tax else ""
        if fb.get("op", "verdict") == "retract":
            self._judged.discard(rid)
            self._judged_hits.discard(hid)
        else:
            self._judged.add(rid)
            if hid:
                self._judged_hits.add(hid)

    def restart_outputs(self) -> None:
        """Forget the outputs (results, hits, dead letters) before they are read again from the
        topics' recent window; verdicts are kept.

        >>> w = Window()
        >>> w.add_dead({"reason": "invalid_json"}); w.restart_outputs(); w.add_dead({"reason": "invalid_json"})
        >>> w.dead_reasons["invalid_json"], len(w.dead)
        (1, 1)
        """
        self._results.clear()
        self._rows.clear()
        self._by_item.clear()
        self._hits.clear()
        self.dead.clear()
        self.dead_reasons.clear()
        for family in ("results", "moderation", "deadletter"):
            self.counts.pop(family, None)

    # -- readers (the views) ------------------------------------------------------------
    def result(self, result_id: str) -> dict[str, Any] | None:
        raw = self._results.get(result_id)
        return None if raw is None else orjson.loads(raw)

    def results(self, filters: dict[str, str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first, filtered."""
        out = []
        rows = self._rows
        for rid in reversed(self._results):
            s = rows[rid]
            if matches(s, filters or {}):
                out.append(s)
                if len(out) >= limit:
                    break
        return out

    def __len__(self) -> int:
        """Results in the window."""
        return len(self._results)

    def recent_media(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest media results anywhere in the window (rows, newest first)."""
        out = []
        for rid in reversed(self._results):
            if self._rows[rid]["item_kind"] == "media":
                out.append(self._rows[rid])
                if len(out) >= limit:
                    break
        return out

    def result_id_for_hit(self, h: dict[str, Any]) -> str | None:
        """The result that carried the hit: the item's result scored with the hit's taxonomy."""
        name = (h.get("taxonomy") or {}).get("name")
        for rid in reversed(self._by_item.get(str(h.get("item_id")), [])):
            if name in self._rows[rid]["taxonomies"]:
                return rid
        return None

    def hit(self, hit_id: str) -> dict[str, Any] | None:
        h = self._hits.get(hit_id)
        return None if h is None else self._entry(h)

    def review_queue(self, actions: tuple[str, ...] = ("review",), limit: int = 100) -> list[dict[str, Any]]:
        """Open hits with one of ``actions``, oldest first (record time, then arrival), with their evidence."""
        return self.queue(actions, limit)[1]

    def queue(self, actions: tuple[str, ...] = ("review",), limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
        """How many hits are open, and the oldest ``limit`` of them with their evidence (a page of the queue:
        only those are decoded)."""
        open_hits = []
        for h in self._hits.values():
            if h.get("action") in actions and h["id"] not in self._judged_hits and self._result_id(h) not in self._judged:
                open_hits.append(h)
        open_hits.sort(key=lambda h: ((h.get("source") or {}).get("timestamp") or 0, h["seq"]))
        return len(open_hits), [self._entry(h) for h in open_hits[:limit]]

    def _result_id(self, h: dict[str, Any]) -> str:
        return self.result_id_for_hit(h) or f"{h.get('item_id')}/?"

    def _entry(self, h: dict[str, Any]) -> dict[str, Any]:
        rid = self.result_id_for_hit(h)
        r = self.result(rid) if rid else None
        name = (h.get("taxonomy") or {}).get("name")
        return {**h, "result_id": r["result_id"] if r else f"{h.get('item_id')}/?",
                "classifier": r.get("classifier") if r else None, "class": r.get("class") if r else None,
                "labels": r.get("labels") if r else {},
                "matched": ((r or {}).get("detail") or {}).get("zeroshot"),
                "policy": (((r or {}).get("detail") or {}).get("policy") or {}).get(name)}

    def dead_letter(self, ident: int) -> dict[str, Any] | None:
        return next((d for d in self.dead if d["id"] == ident), None)

    def dead_letters(self, reason: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        out = [d for d in reversed(self.dead) if not reason or d.get("reason") == reason]
        return out[:limit]
