"""Bytes in, a validated model or a rejection out; rejections become dead letters.

Agents consume raw bytes and decode here (not through a Faust codec) because a Faust
decode error is logged and the record skipped: that would lose it. Every rejection has a
machine-readable reason, a detail and, for schema errors, the field path.

    >>> from app.schemas.objects import ObjectEvent
    >>> decode(b'{"id": "a", "class": "C", "vector": [1, 2]}', ObjectEvent, 1000).id
    'a'
    >>> try: decode(b'{"id": "a", "class": "C", "vector": [1, "x"]}', ObjectEvent, 1000)
    ... except Rejected as r: print(r.reason, r.path)
    schema_violation vector
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from app.schemas.deadletter import REASONS
from app.schemas.results import ResultDoc

M = TypeVar("M", bound=BaseModel)

# pydantic error types raised by our own validators that are reasons in their own right
_OWN_REASONS = {"vector_not_finite", "vector_too_large", "invalid_classifier"}


class Rejected(Exception):
    """An input that cannot be classified: becomes exactly one dead letter."""

    def __init__(self, reason: str, detail: str, path: str | None = None):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.path = reason, detail, path


def from_validation_error(err: ValidationError, skip: int = 0) -> Rejected:
    """``skip`` leading loc entries are dropped (a tagged union puts its tag first)."""
    first = err.errors(include_url=False)[0]
    path = ".".join(str(p) for p in first["loc"][skip:]) or None
    reason = first["type"] if first["type"] in _OWN_REASONS else "schema_violation"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return Rejected(reason, f"{path or 'value'}: {first['msg']}{more}", path)


def load_json(value: bytes | None, max_bytes: int) -> Any:
    if value is None:
        raise Rejected("empty_value", "record has no value")
    if len(value) > max_bytes:
        raise Rejected("payload_too_large", f"value is {len(value)} bytes, the limit is {max_bytes}")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise Rejected("invalid_json", f"value is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise Rejected("invalid_json", f"value must be a JSON object, not {type(data).__name__}")
    return data


def decode(value: bytes | None, model: type[M], max_bytes: int) -> M:
    data = load_json(value, max_bytes)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise from_validation_error(e) from None


#: Deepest nesting of an object's (or example's) ``properties``. JSON parses up to 1024 levels,
#: but pydantic and orjson serialize only about 255: a deeper value would be accepted and then
#: fail when the object is stored, so it is refused up front (a schema violation, with its path).
MAX_PROPERTY_DEPTH = 64


def check_depth(value: Any, path: str, limit: int = MAX_PROPERTY_DEPTH) -> None:
    """Raise ``Rejected`` (schema_violation) if ``value`` nests lists/objects deeper than ``limit``.

    Iterative, so a hostile value cannot exhaust the stack.

    >>> check_depth({"a": [1, {"b": 2}]}, "properties", limit=3)
    >>> deep = 1
    >>> for _ in range(100): deep = [deep]
    >>> try: check_depth({"p": deep}, "properties")
    ... except Rejected as r: print(r.reason, r.path, "|", r.detail)
    schema_violation properties | properties: nested deeper than 64 levels
    """
    if not isinstance(value, (dict, list)):
        return
    stack = [(value, 1)]  # containers only: scalars (most property values) are never pushed
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            raise Rejected("schema_violation", f"{path}: nested deeper than {limit} levels", path)
        for c in (v.values() if isinstance(v, dict) else v):
            if isinstance(c, (dict, list)):
                stack.append((c, depth + 1))


def dumps(obj: Any) -> bytes:
    """JSON bytes of a model (by alias, nothing excluded) or of plain data.

    A model is turned into plain data field by field and handed to orjson, without pydantic's
    ``model_dump``: that walk over a result's ``detail`` (100 classes x 2 shapes for a zero-shot
    result) cost more than orjson's whole serialization. Where orjson refuses a value that
    pydantic would convert (bytes, sets, non-string keys, a model inside ``detail``), the bytes
    come from ``model_dump`` as before; ``tests/unit/test_codec_dumps.py`` holds both to the
    same bytes.

    >>> from app.schemas.results import TaxonomyRef
    >>> dumps(TaxonomyRef(name="tone", version=2))
    b'{"name":"tone","version":2}'
    """
    if type(obj) is ResultDoc:  # already plain data, in the schema's key order
        return orjson.dumps(obj.doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if isinstance(obj, BaseModel):
        try:
            return orjson.dumps(_plain(obj), option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            obj = obj.model_dump(mode="json", by_alias=True, exclude_none=False)
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields(cls: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) of a model class, in declaration order (model_dump's order)."""
    out = _FIELDS.get(cls)
    if out is None:
        if _custom_serialization(cls.__pydantic_core_schema__) or cls.model_config.get("extra") == "allow":
            # e.g. a Vector field (float32 array -> tolist()): only pydantic knows its JSON
            raise TypeError(f"{cls.__name__}: custom serialization goes through model_dump")
        out = _FIELDS[cls] = tuple((name, f.serialization_alias or f.alias or name)
                                   for name, f in cls.model_fields.items())
    return out


def _custom_serialization(schema: Any) -> bool:
    """A ``serialization`` entry anywhere in a core schema: a field serializer, a computed field..."""
    stack = [schema]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if "serialization" in x or x.get("type") == "computed-field":
                return True
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return False


#: Values that are never a model: checked by exact type first, because ``isinstance(v, BaseModel)``
#: goes through ABCMeta's ``__instancecheck__`` (most of this function's cost, once per field).
_LEAF_TYPES = frozenset({str, int, float, bool, type(None), dict})


def _plain(m: BaseModel) -> dict[str, Any]:
    values = m.__dict__  # pydantic v2 keeps the fields' values here (getattr would find them there too)
    out = {}
    for name, key in _fields(type(m)):
        v = values[name]
        t = type(v)
        if t in _LEAF_TYPES:
            pass
        elif t is list:
            if v and isinstance(v[0], BaseModel):
                v = [_plain(x) if isinstance(x, BaseModel) else x for x in v]
        elif isinstance(v, BaseModel):
            v = _plain(v)
        out[key] = v
    return out


def internal_error(e: BaseException) -> Rejected:
    """An unexpected exception while classifying one item: that item's dead letter, nobody else's.

    >>> internal_error(ValueError("all input arrays must have the same shape")).detail
    'ValueError: all input arrays must have the same shape'
    """
    return Rejected("internal_error", f"{type(e).__name__}: {e}"[:2000])
