"""Weaviate ``where`` filters, compiled once to closures over a properties dict.

A filter body is either a leaf::

    {"path": ["wordCount"], "operator": "GreaterThan", "valueInt": 100}

or a compound ``{"operator": "And" | "Or" | "Not", "operands": [...]}`` (``Not`` takes
exactly one operand; it is the newer Weaviate operator and costs nothing to support).

Semantics (chosen to match Weaviate where it is observable, and written down where it is not):

* ``path`` is a list of property names; more than one element is a dotted lookup into
  nested dicts. A bare string is taken as a one-element path (GraphQL list coercion).
* A missing property, or one whose value is ``None``, makes every operator false except
  ``NotEqual`` (true) and ``IsNull``.
* Type mismatch (a string property against ``valueInt``, a bool against ``valueNumber``...)
  is false, never an exception: filters run per event and bad data must not stop a worker.
  Ints and floats compare numerically with each other; bools are never numbers.
* Text ``Equal`` is exact and case-sensitive (Weaviate's ``field`` tokenization); ``Like``
  matches the whole value case-insensitively, ``*`` = any run, ``?`` = one character, in time
  linear in the value's length (:mod:`app.core.like`; no backtracking regex).
* A list-valued property matches a scalar operator when ANY element does (as Weaviate's
  inverted index does for array properties); ``NotEqual`` is the negation of ``Equal``.
* ``valueDate`` is an RFC3339 string with an offset; compared as aware datetimes.
  A property date without an offset is read as UTC.
* ``ContainsAny`` / ``ContainsAll`` take a non-empty list (``value*Array`` or a scalar key
  holding a list); a scalar property is treated as a one-element list.
* ``IsNull`` takes ``valueBoolean``: true matches a missing/None property.

Work per filter is bounded (:class:`FilterLimits`): nesting depth, operands per ``And``/``Or``,
total nodes and ``Like`` pattern length. A filter over a limit raises :class:`FilterError` with
``reason == "filter_too_complex"`` (checked without recursion, before compiling).

>>> f = compile_where({"operator": "And", "operands": [
...     {"path": ["lang"], "operator": "Equal", "valueText": "en"},
...     {"path": ["title"], "operator": "Like", "valueText": "kafka*"}]})
>>> f({"lang": "en", "title": "Kafka Streams"}), f({"lang": "de", "title": "Kafka"})
(True, False)
"""
from __future__ import annotations

import operator as _op
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from app.core.like import compile_like

Predicate = Callable[[Mapping[str, Any]], bool]

__all__ = ["FilterError", "FilterLimits", "Predicate", "compile_where", "validate_where"]


class FilterError(ValueError):
    """An invalid where filter; ``path`` locates the offending key, e.g. ``operands[1].valueInt``.

    ``reason`` is the dead-letter reason: ``invalid_filter`` for a malformed filter,
    ``filter_too_complex`` for one over a :class:`FilterLimits` limit.
    """

    def __init__(self, path: str, message: str, reason: str = "invalid_filter") -> None:
        self.path = path
        self.message = message
        self.reason = reason
        super().__init__(f"{path or '<where>'}: {message}")


# compile and evaluation recurse once per nesting level (about 3 frames each): a depth above
# this could hit Python's recursion limit, which is what the depth limit exists to prevent.
_MAX_SAFE_DEPTH = 100


@dataclass(frozen=True)
class FilterLimits:
    """Bounds on the work one filter may cost; the defaults suit hand-written filters.

    ``max_depth`` counts nodes on the longest root-to-leaf chain (a lone leaf has depth 1,
    ``Not`` of a leaf 2); ``max_operands`` is per ``And``/``Or``/``Not`` node; ``max_nodes``
    counts every node; ``max_like_pattern`` is in characters.

    >>> FilterLimits(max_depth=500)
    Traceback (most recent call last):
    ...
    ValueError: max_depth must be between 1 and 100, got 500
    """

    max_depth: int = 32
    max_operands: int = 256
    max_nodes: int = 1000
    max_like_pattern: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= _MAX_SAFE_DEPTH:
            raise ValueError(f"max_depth must be between 1 and {_MAX_SAFE_DEPTH}, got {self.max_depth}")
        for name in ("max_operands", "max_nodes", "max_like_pattern"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


DEFAULT_LIMITS = FilterLimits()


_NO = object()  # "this property value cannot be compared with the filter's type"


def _parse_date(value: str) -> datetime | None:
    try:
        # RFC3339 allows lower-case 't'/'z'; fromisoformat (3.11) wants upper case.
        return datetime.fromisoformat(value.upper())
    except ValueError:
        return None


# --- per value type: coerce a property value (or _NO) and validate a filter value -------

def _prop_text(v: Any) -> Any:
    return v if isinstance(v, str) else _NO


def _prop_number(v: Any) -> Any:
    # bool is an int subclass; a boolean is never a number here.
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else _NO


def _prop_bool(v: Any) -> Any:
    return v if isinstance(v, bool) else _NO


def _prop_date(v: Any) -> Any:
    if isinstance(v, str):
        v = _parse_date(v)
    if not isinstance(v, datetime):
        return _NO
    return v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)


def _filter_text(v: Any) -> Any:
    return v if isinstance(v, str) else _NO


def _filter_int(v: Any) -> Any:
    return v if isinstance(v, int) and not isinstance(v, bool) else _NO


def _filter_bool(v: Any) -> Any:
    return v if isinstance(v, bool) else _NO


def _filter_date(v: Any) -> Any:
    d = _parse_date(v) if isinstance(v, str) else v if isinstance(v, datetime) else None
    return d if d is not None and d.tzinfo is not None else _NO


# kind -> (coerce property value, check filter value, what we expected, orderable)
_KINDS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], str, bool]] = {
    "text": (_prop_text, _filter_text, "a string", True),
    "int": (_prop_number, _filter_int, "an integer", True),
    "number": (_prop_number, _prop_number, "a number", True),
    "boolean": (_prop_bool, _filter_bool, "a boolean", False),
    "date": (_prop_date, _filter_date, "an RFC3339 date-time with a UTC offset", True),
}
_SCALAR_KEYS = {"valueText": "text", "valueString": "text", "valueInt": "int",
                "valueNumber": "number", "valueBoolean": "boolean", "valueDate": "date"}
_ARRAY_KEYS = {"valueTextArray": "text", "valueStringArray": "text", "valueIntArray": "int",
               "valueNumberArray": "number", "valueBooleanArray": "boolean",
               "valueDateArray": "date"}
_VALUE_KEYS = {**_SCALAR_KEYS, **_ARRAY_KEYS}
_ORDER = {"GreaterThan": _op.gt, "GreaterThanEqual": _op.ge,
          "LessThan": _op.lt, "LessThanEqual": _op.le}
_LEAF_OPS = {"Equal", "NotEqual", "Like", "ContainsAny", "ContainsAll", "IsNull", *_ORDER}
_COMPOUND_OPS = {"And", "Or", "Not"}


def validate_where(where: Mapping[str, Any] | None, *, limits: FilterLimits = DEFAULT_LIMITS) -> None:
    """Raise :class:`FilterError` if ``where`` is not a valid filter body.

    >>> try:
    ...     validate_where({"operator": "Or", "operands": [
    ...         {"path": ["n"], "operator": "Equal", "valueInt": 3},
    ...         {"path": ["n"], "operator": "Equal", "valueInt": "3"}]})
    ... except FilterError as e:
    ...     print(e.path, "|", e.message)
    operands[1].valueInt | expected an integer, got str
    """
    compile_where(where, limits=limits)


def compile_where(where: Mapping[str, Any] | None, *, limits: FilterLimits = DEFAULT_LIMITS) -> Predicate:
    """Compile a where filter to ``fn(properties) -> bool``; ``None``/``{}`` matches all.

    >>> compile_where({"path": ["n"], "operator": "LessThan", "valueNumber": 2.5})({"n": 2})
    True
    >>> compile_where(None)({})
    True
    >>> deep = {"path": ["n"], "operator": "IsNull", "valueBoolean": True}
    >>> for _ in range(400):
    ...     deep = {"operator": "Not", "operands": [deep]}
    >>> try:
    ...     compile_where(deep)
    ... except FilterError as e:
    ...     print(e.reason, "|", e.message)
    filter_too_complex | nested deeper than 32 levels
    """
    if where is None or (isinstance(where, Mapping) and not where):
        return _match_all
    _check_size(where, limits)
    return _compile(where, "", limits)


def _check_size(root: Any, limits: FilterLimits) -> None:
    """Depth, operand and node limits, with an explicit stack: a hostile filter cannot recurse.

    Only the shape is looked at (``operands`` lists of objects); everything else is left to
    the compiler, which reports it as ``invalid_filter``.
    """
    stack: list[tuple[Any, int, str]] = [(root, 1, "")]
    nodes = 1  # counted when pushed, so the stack itself never holds more than max_nodes
    while stack:
        node, depth, at = stack.pop()
        if depth > limits.max_depth:
            raise FilterError(at, f"nested deeper than {limits.max_depth} levels", "filter_too_complex")
        operands = node.get("operands") if isinstance(node, Mapping) else None
        if not isinstance(operands, list):
            continue
        if len(operands) > limits.max_operands:
            raise FilterError(_join(at, "operands"),
                              f"{len(operands)} operands, the limit is {limits.max_operands}",
                              "filter_too_complex")
        nodes += len(operands)
        if nodes > limits.max_nodes:
            raise FilterError(at, f"more than {limits.max_nodes} nodes", "filter_too_complex")
        # reversed: the stack then visits operands[0] first, so errors name the first offender.
        for i in range(len(operands) - 1, -1, -1):
            stack.append((operands[i], depth + 1, _join(at, f"operands[{i}]")))


def _match_all(props: Mapping[str, Any]) -> bool:
    return True


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base and not key.startswith("[") else f"{base}{key}"


def _compile(node: Any, at: str, limits: FilterLimits) -> Predicate:
    if not isinstance(node, Mapping):
        raise FilterError(at, f"a filter must be an object, got {type(node).__name__}")
    unknown = set(node) - {"operator", "operands", "path"} - set(_VALUE_KEYS)
    if unknown:
        raise FilterError(_join(at, sorted(unknown)[0]), "unknown key")
    op = node.get("operator")
    if op in _COMPOUND_OPS:
        return _compile_compound(node, op, at, limits)
    if op in _LEAF_OPS:
        return _compile_leaf(node, op, at, limits)
    allowed = ", ".join(sorted(_LEAF_OPS | _COMPOUND_OPS))
    raise FilterError(_join(at, "operator"), f"unknown operator {op!r} (one of: {allowed})")


def _compile_compound(node: Mapping[str, Any], op: str, at: str, limits: FilterLimits) -> Predicate:
    stray = [k for k in node if k in _VALUE_KEYS or k == "path"]
    if stray:
        raise FilterError(_join(at, stray[0]), f"not allowed with operator {op}")
    operands = node.get("operands")
    if not isinstance(operands, list) or not operands:
        raise FilterError(_join(at, "operands"), f"{op} needs a non-empty list of operands")
    if op == "Not" and len(operands) != 1:
        raise FilterError(_join(at, "operands"), "Not takes exactly one operand")
    fns = tuple(_compile(o, _join(at, f"operands[{i}]"), limits) for i, o in enumerate(operands))
    if op == "Not":
        inner = fns[0]
        return lambda props: not inner(props)
    if op == "And":
        def _and(props: Mapping[str, Any]) -> bool:
            for f in fns:
                if not f(props):
                    return False
            return True
        return _and

    def _or(props: Mapping[str, Any]) -> bool:
        for f in fns:
            if f(props):
                return True
        return False
    return _or


def _getter(node: Mapping[str, Any], at: str) -> Callable[[Mapping[str, Any]], Any]:
    path = node.get("path")
    if isinstance(path, str):
        path = [path]
    if (not isinstance(path, list) or not path
            or not all(isinstance(p, str) and p for p in path)):
        raise FilterError(_join(at, "path"), "expected a non-empty list of property names")
    if len(path) == 1:
        name = path[0]
        return lambda props: props.get(name)
    names = tuple(path)

    def _nested(props: Mapping[str, Any]) -> Any:
        v: Any = props
        for n in names:
            if not isinstance(v, Mapping):
                return None
            v = v.get(n)
        return v
    return _nested


def _compile_leaf(node: Mapping[str, Any], op: str, at: str, limits: FilterLimits) -> Predicate:
    if "operands" in node:
        raise FilterError(_join(at, "operands"), f"not allowed with operator {op}")
    get = _getter(node, at)
    keys = [k for k in node if k in _VALUE_KEYS]
    if len(keys) != 1:
        found = ", ".join(keys) if keys else "none"
        raise FilterError(at, f"exactly one value key is required (found: {found})")
    key = keys[0]
    kat, raw = _join(at, key), node[key]
    kind = _VALUE_KEYS[key]
    coerce, check, expected, orderable = _KINDS[kind]

    if op in ("ContainsAny", "ContainsAll"):
        if not isinstance(raw, list) or not raw:
            raise FilterError(kat, f"{op} needs a non-empty list")
        values = [_checked(check, v, f"{kat}[{i}]", expected) for i, v in enumerate(raw)]
        return _contains(get, coerce, values, op == "ContainsAll")
    if key in _ARRAY_KEYS:
        raise FilterError(kat, f"array values are only allowed with ContainsAny/ContainsAll, not {op}")
    target = _checked(check, raw, kat, expected)
    if op == "IsNull":
        if kind != "boolean":
            raise FilterError(kat, "IsNull takes valueBoolean")
        return (lambda p: get(p) is None) if target else (lambda p: get(p) is not None)
    if op == "Like":
        if kind != "text":
            raise FilterError(kat, "Like takes valueText")
        if len(target) > limits.max_like_pattern:
            raise FilterError(kat, f"Like pattern of {len(target)} characters, the limit is "
                              f"{limits.max_like_pattern}", "filter_too_complex")
        return _any_of(get, coerce, compile_like(target))
    if op in ("Equal", "NotEqual"):
        equal = _any_of(get, coerce, lambda v: v == target)
        if op == "Equal":
            return equal
        return lambda p: not equal(p)
    if not orderable:
        raise FilterError(kat, f"{op} cannot compare booleans")
    cmp = _ORDER[op]
    return _any_of(get, coerce, lambda v: cmp(v, target))


def _checked(check: Callable[[Any], Any], raw: Any, at: str, expected: str) -> Any:
    value = check(raw)
    if value is _NO:
        raise FilterError(at, f"expected {expected}, got {type(raw).__name__}")
    return value


def _any_of(get: Callable[[Mapping[str, Any]], Any], coerce: Callable[[Any], Any],
            test: Callable[[Any], Any]) -> Predicate:
    """Leaf predicate: true when the value (or, for a list, any element) passes ``test``."""
    def leaf(props: Mapping[str, Any]) -> bool:
        v = get(props)
        if v is None:
            return False
        if isinstance(v, (list, tuple)):
            for x in v:
                c = coerce(x)
                if c is not _NO and test(c):
                    return True
            return False
        c = coerce(v)
        return c is not _NO and bool(test(c))
    return leaf


def _contains(get: Callable[[Mapping[str, Any]], Any], coerce: Callable[[Any], Any],
              values: list[Any], need_all: bool) -> Predicate:
    # Coercion filters out wrong types first, so set membership cannot confuse 1 and True.
    wanted = frozenset(values)

    def leaf(props: Mapping[str, Any]) -> bool:
        v = get(props)
        if v is None:
            return False
        items = v if isinstance(v, (list, tuple, set, frozenset)) else (v,)
        have = {c for c in map(coerce, items) if c is not _NO}
        return wanted <= have if need_all else not wanted.isdisjoint(have)
    return leaf
