"""Files the CLI publishes: JSON lines (or one JSON document) read and checked before anything is sent.

``produce`` needs each line to be a JSON object with its key field; ``examples push`` and
``taxonomy push`` run every record through the training agent's own validator
(``app.classify.training.training_step``, one batch, in file order, so two examples of a class
with different dimensions are caught here too). Every problem is reported with its place in
the file (``FILE:LINE``, or ``FILE[i]`` for an item of a JSON array); nothing is published
unless the whole file passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.classify.outcome import Record
from app.schemas.deadletter import Source
from app.settings import Settings


@dataclass(frozen=True)
class Item:
    """One record of a file: where it is, its JSON text (re-encoded for array items) and value."""

    where: str
    raw: bytes
    value: Any


class FileErrors(Exception):
    """Everything wrong with a file, one ``where: message`` line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def parse_items(name: str, text: bytes, *, allow_document: bool = False) -> list[Item]:
    """JSON lines (blank lines skipped); with ``allow_document``, also one JSON object or array.

    >>> [(i.where, i.value) for i in parse_items("f.jsonl", b'{"a": 1}\\n\\n{"a": 2}\\n')]
    [('f.jsonl:1', {'a': 1}), ('f.jsonl:3', {'a': 2})]
    >>> [(i.where, i.value) for i in parse_items("t.json", b'[{"a": 1}, {"a": 2}]', allow_document=True)]
    [('t.json[0]', {'a': 1}), ('t.json[1]', {'a': 2})]
    >>> parse_items("f.jsonl", b'{"a": 1}\\n{"a": \\n[1]\\n')
    Traceback (most recent call last):
    ...
    app.devtools.pushfile.FileErrors: f.jsonl:2: not valid JSON: unexpected end of data at column 7
    f.jsonl:3: expected a JSON object, got list
    """
    if allow_document:
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            doc = None  # not one document: JSON lines
        if isinstance(doc, dict):
            return _objects([(name, orjson.dumps(doc), doc)])
        if isinstance(doc, list):
            return _objects([(f"{name}[{i}]", orjson.dumps(v), v) for i, v in enumerate(doc)])
    items, errors = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((f"{name}:{n}", line.strip(), orjson.loads(line)))
        except orjson.JSONDecodeError as e:
            errors.append(f"{name}:{n}: not valid JSON: {e.msg} at column {e.colno}")
    try:
        out = _objects(items)
    except FileErrors as e:
        errors += e.lines
    if errors:
        raise FileErrors(sorted(errors, key=_order))
    return out


def _order(line: str) -> tuple[int, str]:
    head = line.split(": ", 1)[0]
    num = head.rsplit(":", 1)[-1] if ":" in head else head.rsplit("[", 1)[-1].rstrip("]")
    return (int(num) if num.isdigit() else 0, line)


def _objects(items: list[tuple[str, bytes, Any]]) -> list[Item]:
    errors = [f"{w}: expected a JSON object, got {type(v).__name__}" for w, _, v in items if not isinstance(v, dict)]
    if errors:
        raise FileErrors(errors)
    if not items:
        raise FileErrors(["the file holds no records"])
    return [Item(w, raw, v) for w, raw, v in items]


def keyed(items: list[Item], key_field: str | None) -> list[tuple[str | None, bytes]]:
    """``(key, value)`` pairs, the key from each record's ``key_field`` (None: no keys).

    >>> keyed(parse_items("f", b'{"id": "a"}\\n{"id": 7}'), "id")
    [('a', b'{"id": "a"}'), ('7', b'{"id": 7}')]
    >>> keyed(parse_items("f", b'{"id": "a"}\\n{"name": "b"}\\n{"id": ""}'), "id")
    Traceback (most recent call last):
    ...
    app.devtools.pushfile.FileErrors: f:2: no 'id' field (the record's key): use --key-field or --no-key
    f:3: 'id' must be a non-empty string or an integer, got ''
    """
    if key_field is None:
        return [(None, i.raw) for i in items]
    out: list[tuple[str | None, bytes]] = []
    errors = []
    for i in items:
        k = i.value.get(key_field)
        if k is None:
            errors.append(f"{i.where}: no {key_field!r} field (the record's key): use --key-field or --no-key")
        elif isinstance(k, bool) or not isinstance(k, (str, int)) or k == "":
            errors.append(f"{i.where}: {key_field!r} must be a non-empty string or an integer, got {k!r}")
        else:
            out.append((str(k), i.raw))
    if errors:
        raise FileErrors(errors)
    return out


def training_records(items: list[Item], kind: str, settings: Settings,
                     make_state: Callable[[Settings], Any] | None = None) -> list[tuple[str, bytes]]:
    """Validate ``kind`` records (``example`` | ``taxonomy``) as the training agent does: the
    ``(training table key, value)`` pairs to publish, or ``FileErrors`` naming every bad record.

    A record without ``record`` gets ``kind``; another kind is refused (each command pushes one).
    """
    from app.classify.state import ModelState
    from app.classify.training import training_step

    errors, values = [], []
    for i in items:
        doc = dict(i.value)
        doc.setdefault("record", kind)
        if doc["record"] != kind:
            errors.append(f"{i.where}: record is {doc['record']!r}, this command pushes {kind!r} records")
        values.append(orjson.dumps(doc))
    if errors:
        raise FileErrors(errors)
    state = (make_state or ModelState)(settings)
    try:
        outcomes = training_step(state, [Record(None, v, Source(topic="file", partition=0, offset=n))
                                         for n, v in enumerate(values)])
    finally:
        close = getattr(state, "close", None)
        if close is not None:
            close()
    out = []
    for item, value, outcome in zip(items, values, outcomes):
        if outcome.rejected is not None:
            r = outcome.rejected
            errors.append(f"{item.where}: {r.reason}: {r.detail}" + (f" (at {r.path})" if r.path else ""))
        else:
            out.append((outcome.writes[0].key.decode(), value))
    if errors:
        raise FileErrors(errors)
    return out


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise FileErrors([f"{path}: cannot read: {e.strerror}"]) from None
