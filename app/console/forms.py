"""Checks of everything a console form or endpoint accepts: a :class:`FormError` (an HTTP status
and a message the page shows) or the clean values.

    >>> verdict_form({"hit_id": "c1|tone", "verdict": "relabel"})
    Traceback (most recent call last):
    ...
    app.console.forms.FormError: (400, "a relabel needs 'label'")
    >>> verdict_form({"hit_id": "c1|tone", "verdict": "confirm"})["verdict"]
    'confirm'
    >>> republish_form({"topic": "objects", "value": '{"id": "a1"}'}, ("objects",), 100)["key"]
    b'a1'
    >>> republish_form({"topic": "results", "value": "{}"}, ("objects",), 10)
    Traceback (most recent call last):
    ...
    app.console.forms.FormError: (400, "topic must be one of ['objects']")
"""

from __future__ import annotations

import re
from typing import Any

import orjson

VERDICTS = ("confirm", "reject", "relabel")
NAME = re.compile(r"^[\w .@+-]{1,64}$")


class FormError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status, self.message = status, message


def _obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise FormError(400, "send a JSON object")
    return body


def _text(body: dict[str, Any], field: str, limit: int = 512, required: bool = True) -> str:
    v = body.get(field)
    if v is None or v == "":
        if required:
            raise FormError(400, f"'{field}' is required")
        return ""
    if not isinstance(v, str):
        raise FormError(400, f"'{field}' must be a string")
    if len(v) > limit:
        raise FormError(400, f"'{field}' is longer than {limit} characters")
    return v


def reviewer_name(name: Any) -> str:
    """
    >>> reviewer_name("ana b."), reviewer_name("")
    Traceback (most recent call last):
    ...
    app.console.forms.FormError: (400, 'reviewer name: 1-64 letters, digits, spaces or . @ + - _')
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise FormError(400, "reviewer name: 1-64 letters, digits, spaces or . @ + - _")
    return name


def verdict_form(body: Any) -> dict[str, str]:
    """A verdict on a review-queue hit (``hit_id``) or on any live result (``result_id`` + ``property``)."""
    b = _obj(body)
    verdict = _text(b, "verdict", 16)
    if verdict not in VERDICTS:
        raise FormError(400, f"verdict must be one of {list(VERDICTS)}")
    hit_id, result_id = _text(b, "hit_id", 1024, False), _text(b, "result_id", 1024, False)
    if bool(hit_id) == bool(result_id):
        raise FormError(400, "send exactly one of 'hit_id' and 'result_id'")
    label = _text(b, "label", 256, False).strip()
    if verdict == "relabel" and not label:
        raise FormError(400, "a relabel needs 'label'")
    return {"verdict": verdict, "hit_id": hit_id, "result_id": result_id, "label": label,
            "property": _text(b, "property", 256, False), "note": _text(b, "note", 2000, False)}


def republish_form(body: Any, topics: tuple[str, ...], max_bytes: int) -> dict[str, Any]:
    """A corrected dead letter: the topic to send it to, its key, its value (JSON text)."""
    b = _obj(body)
    topic = _text(b, "topic", 64)
    if topic not in topics:
        raise FormError(400, f"topic must be one of {list(topics)}")
    value = _text(b, "value", max_bytes)
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise FormError(400, f"value is not valid JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise FormError(400, "value must be a JSON object")
    # the key decides the partition (and, for objects, which worker's tables hold the item): the one
    # given, else the record's own id, as producers key each topic
    key = _text(b, "key", 512, False) or next((str(parsed[f]) for f in ("id", "media_id", "item_id", "name")
                                               if isinstance(parsed.get(f), (str, int))), "")
    return {"topic": topic, "key": key.encode(), "value": orjson.dumps(parsed), "dead_letter": b.get("dead_letter")}


def job_form(body: Any) -> dict[str, Any]:
    """A classification job in Weaviate's request shape (``POST /v1/classifications``).

    >>> job_form({"class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["summary"],
    ...           "type": "knn", "settings": {"k": 3}})["settings"]
    {'k': 3}
    >>> job_form({"class": "Article", "classifyProperties": [], "type": "knn"})
    Traceback (most recent call last):
    ...
    app.console.forms.FormError: (400, "'classifyProperties' needs at least one property name")
    """
    b = _obj(body)
    out: dict[str, Any] = {"class": _text(b, "class", 256)}
    kind = b.get("type", "knn")
    if kind not in ("knn", "zeroshot"):
        raise FormError(400, "'type' must be knn or zeroshot")
    out["type"] = kind
    for field in ("classifyProperties", "basedOnProperties"):
        v = b.get(field, [])
        if not isinstance(v, list) or not all(isinstance(p, str) and p for p in v):
            raise FormError(400, f"'{field}' must be a list of property names")
        out[field] = v
    if not out["classifyProperties"]:
        raise FormError(400, "'classifyProperties' needs at least one property name")
    settings = b.get("settings") or {}
    if not isinstance(settings, dict):
        raise FormError(400, "'settings' must be an object")
    if "k" in settings and (not isinstance(settings["k"], int) or isinstance(settings["k"], bool)
                            or not 1 <= settings["k"] <= 1000):
        raise FormError(400, "'settings.k' must be an integer from 1 to 1000")
    if settings:
        out["settings"] = settings
    for field in ("filters", "taxonomies"):
        if field in b:
            out[field] = b[field]
    return out
