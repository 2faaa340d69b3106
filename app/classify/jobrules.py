"""Weaviate's rules for a classification request, checked against the declared classes.

The messages and their order are Weaviate's (``usecases/classification/classifier.go``:
settings are parsed first; ``validation.go``: only the first failing rule is reported, behind
``invalid classification:``). Pure: the REST view and the jobs agent both call it.

    >>> from app.classify.state import Snapshot
    >>> from app.schemas.jobs import ClassDecl
    >>> art = ClassDecl.model_validate({"class": "Article", "properties": [
    ...     {"name": "summary", "dataType": ["text"]}, {"name": "topic", "dataType": ["Topic"]},
    ...     {"name": "words", "dataType": ["int"]}]})
    >>> snap = Snapshot({}, {}, {"Article": art})
    >>> body = {"class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["summary"]}
    >>> check(parse(body), snap).settings
    {'k': 3}
    >>> def why(**change):
    ...     try: check(parse({**body, **change}), snap)
    ...     except JobError as e: return e.message
    >>> why(basedOnProperties=["words"])
    "invalid classification: basedOnProperties: property 'words' must be of type 'text'"
    >>> why(classifyProperties=["summary"])
    "invalid classification: classifyProperties: property 'summary' must be of reference type (cref)"
    >>> why(settings={"k": "3"})
    'parse knn specific settings: settings.k must be number, got string'
    >>> why(**{"class": "Nope"})
    "invalid classification: class 'Nope' not found in schema"
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.classify.state import Snapshot
from app.core.filters import FilterError, FilterLimits, validate_where
from app.schemas.jobs import JobRequest

TYPES = ("knn", "zeroshot")


class JobError(Exception):
    """A refused request: ``status`` 400 (a Weaviate rule) or 422 (a field of the wrong type)."""

    def __init__(self, message: str, status: int = 400, path: str | None = None):
        super().__init__(message)
        self.message, self.status, self.path = message, status, path


def _go_type(v: Any) -> str:
    """The Go type name Weaviate prints for a JSON value (``%T``).

    >>> _go_type("3"), _go_type(True), _go_type([1]), _go_type(None)
    ('string', 'bool', '[]interface {}', '<nil>')
    """
    if v is None:
        return "<nil>"
    return {str: "string", bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}.get(
        type(v), "json.Number")


def parse(data: Any) -> JobRequest:
    """The request's fields with their types checked (``JobError`` 422 naming the first bad field)."""
    if not isinstance(data, dict):
        raise JobError(f"the body must be a JSON object, not {type(data).__name__}", 422)
    try:
        return JobRequest.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        path = ".".join(str(p) for p in first["loc"]) or None
        raise JobError(f"{path or 'body'}: {first['msg']}", 422, path) from None


def _settings(req: JobRequest) -> dict[str, Any]:
    """Weaviate's ``parseAndSetDefaults``: kNN ``k`` (default 3); zero-shot ``taxonomies`` (ours)."""
    raw = req.settings
    if raw is None:
        raw = {}
    where = f"parse {req.type} specific settings"
    if req.type == "knn":
        k = raw.get("k", 3)
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise JobError(f"{where}: settings.k must be number, got {_go_type(k)}", path="settings.k")
        if k != int(k):
            raise JobError(f"{where}: settings.k: strconv.ParseInt: parsing \"{k}\": invalid syntax", path="settings.k")
        if k < 1:  # Weaviate would accept it and find no neighbours
            raise JobError(f"{where}: settings.k must be at least 1, got {int(k)}", path="settings.k")
        out: dict[str, Any] = {"k": int(k)}
        if "distance" in raw:  # ours: the kNN distance (cosine | euclidean)
            if raw["distance"] not in ("cosine", "euclidean"):
                raise JobError(f"{where}: settings.distance must be 'cosine' or 'euclidean', got "
                               f"{raw['distance']!r}", path="settings.distance")
            out["distance"] = raw["distance"]
        return out
    tax = raw.get("taxonomies")
    if not isinstance(tax, list) or not tax or not all(isinstance(t, str) and t for t in tax):
        raise JobError(f"{where}: settings.taxonomies must be a non-empty list of taxonomy names, got "
                       f"{_go_type(tax)}", path="settings.taxonomies")
    return {"taxonomies": tax}


def check(req: JobRequest, snap: Snapshot, limits: FilterLimits | None = None) -> JobRequest:
    """``req`` with its settings defaulted, or ``JobError`` with the first failing rule."""
    if req.type not in TYPES:
        raise JobError(f"invalid classification: type '{req.type}' is not supported: use 'knn' or 'zeroshot'",
                       path="type")
    settings = _settings(req)
    fail = _first_rule(req, snap, settings, limits or FilterLimits())
    if fail is not None:
        raise JobError(f"invalid classification: {fail[0]}", path=fail[1])
    return req.model_copy(update={"settings": settings})


def _first_rule(req: JobRequest, snap: Snapshot, settings: dict[str, Any],
                limits: FilterLimits) -> tuple[str, str] | None:
    if not req.class_:
        return "class must be set", "class"
    decl = snap.classes.get(req.class_)
    if decl is None:
        return f"class '{req.class_}' not found in schema", "class"
    if req.type == "knn" and req.filters.targetWhere is not None:
        return ("type is 'knn', but 'targetWhere' filter is set, for 'knn' you cannot limit target data directly, "
                "instead limit training data through setting 'trainingSetWhere'"), "filters.targetWhere"
    based = req.basedOnProperties
    if not based:
        return "basedOnProperties must have at least one property", "basedOnProperties"
    if len(based) > 1:
        return f"only a single property in basedOnProperties supported at the moment, got [{' '.join(based)}]", \
            "basedOnProperties"
    prop = decl.property(based[0])
    if prop is None:
        return f"basedOnProperties: property '{based[0]}' does not exist", "basedOnProperties"
    if prop.dataType[0] != "text":
        return f"basedOnProperties: property '{based[0]}' must be of type 'text'", "basedOnProperties"
    if not req.classifyProperties:
        return "classifyProperties must have at least one property", "classifyProperties"
    for name in req.classifyProperties:
        prop = decl.property(name)
        if prop is None:
            return f"classifyProperties: property '{name}' does not exist", "classifyProperties"
        if not prop.is_reference:
            return f"classifyProperties: property '{name}' must be of reference type (cref)", "classifyProperties"
    for name, where in req.filters:  # ours: Weaviate parses filters after validation, with its own messages
        try:
            validate_where(where, limits=limits)
        except FilterError as e:
            return f"filters.{name}: {e}", f"filters.{name}"
    if req.type == "zeroshot":
        tax = settings["taxonomies"]
        missing = [t for t in tax if t not in snap.taxonomies]
        if missing:
            return f"settings.taxonomies: taxonomy '{missing[0]}' does not exist", "settings.taxonomies"
        if len(tax) not in (1, len(req.classifyProperties)):
            return (f"settings.taxonomies: one taxonomy, or one per classifyProperties entry ({len(tax)} taxonomies "
                    f"for {len(req.classifyProperties)} properties)"), "settings.taxonomies"
    return None
