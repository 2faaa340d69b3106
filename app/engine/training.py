"""Validation of training records before they enter the training table.

A record is checked the way the workers will use it (filters compiled, taxonomy prompts
vectorized, vector dimension against the live index), so that nothing invalid reaches the
table and every bad record leaves as a dead letter with the reason.
"""

from __future__ import annotations

from typing import Callable

import orjson
from pydantic import ValidationError

from app.codec import Rejected, from_validation_error, load_json
from app.core.filters import FilterError, compile_where
from app.schemas.training import (CLASSIFIER_PREFIX, TAXONOMY_PREFIX, ClassifierDef, Example,
                                  TaxonomyRecord, parse_training, record_key)
from app.schemas.vectors import encode_vector
from app.state import Classifier, ModelState

Current = Callable[[str], bytes | None]


def validate(key: bytes | None, value: bytes | None, state: ModelState, current: Current) -> tuple[str, bytes | None]:
    """``(table key, canonical value)``; ``None`` value means delete. Raises ``Rejected``."""
    if value is None:
        if not key:
            raise Rejected("empty_value", "a tombstone needs a key (example id, classifier:<name> or taxonomy:<name>)")
        return key.decode(errors="replace"), None
    data = load_json(value, state.settings.max_payload_bytes)
    if data.get("op") == "delete":
        return _delete_key(data), None
    try:
        rec = parse_training(data)
    except ValidationError as e:
        raise _schema_rejection(e) from None
    if isinstance(rec, Example):
        return rec.id, _example(rec, state)
    if isinstance(rec, ClassifierDef):
        return record_key(rec), _classifier(rec)
    return record_key(rec), _taxonomy(rec, state, current)


def _schema_rejection(err: ValidationError) -> Rejected:
    """Field paths start at the record: pydantic puts the union's tag ('example') first."""
    first = err.errors(include_url=False)[0]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return Rejected("schema_violation", f"record: {first['msg']}", "record")
    return from_validation_error(err, skip=1)


def _delete_key(data: dict) -> str:
    kind, ident = data.get("record"), data.get("id") or data.get("name")
    if kind not in ("example", "classifier", "taxonomy") or not isinstance(ident, str) or not ident:
        raise Rejected("schema_violation", "a delete needs 'record' (example|classifier|taxonomy) and its id or name",
                       "record" if kind is None else "id")
    return {"example": "", "classifier": CLASSIFIER_PREFIX, "taxonomy": TAXONOMY_PREFIX}[kind] + ident


def _example(rec: Example, state: ModelState) -> bytes:
    for prop, label in rec.labels.items():  # the index refuses empty names and labels: so do we
        if not prop or not label:
            raise Rejected("schema_violation", f"labels: {prop!r}: {label!r}: property names and labels must be "
                           "non-empty strings", f"labels.{prop}" if prop else "labels")
    vector = rec.vector
    if vector is None:
        vector = _vectorize(state, rec.text)
    if vector.size > state.settings.max_vector_dim:
        raise Rejected("vector_too_large", f"vector has {vector.size} dimensions, the limit is {state.settings.max_vector_dim}", "vector")
    dim = state.indexes.dim(rec.class_)
    if dim is not None and dim != vector.size:
        raise Rejected("vector_dimension_mismatch",
                       f"class {rec.class_} has dimension {dim}, the example's vector has {vector.size}", "vector")
    doc = rec.model_dump(mode="json", by_alias=True, exclude={"vector", "text", "op"})
    doc["vector"] = encode_vector(vector)
    return orjson.dumps(doc)


def _vectorize(state: ModelState, text: str | None):
    from app.core.vectorizers import VectorizerError

    try:
        return state.vectorizer().encode([text or ""])[0]
    except VectorizerError as e:
        raise Rejected("vectorizer_error", str(e), "text") from None


def _classifier(rec: ClassifierDef) -> bytes:
    for name, where in rec.filters:  # compiled one by one so the path names the filter
        try:
            compile_where(where)
        except FilterError as e:
            at = e.path if e.path.startswith("[") or not e.path else f".{e.path}"
            raise Rejected("invalid_filter", f"{name}: {e}", f"filters.{name}{at}") from None
    Classifier.compile(rec)
    return orjson.dumps(rec.model_dump(mode="json", by_alias=True, exclude={"op"}))


def _taxonomy(rec: TaxonomyRecord, state: ModelState, current: Current) -> bytes:
    from app.core.taxonomy import TaxonomyError, compile_taxonomy
    from app.core.vectorizers import VectorizerError

    doc = rec.model_dump(mode="json", exclude={"op"})
    body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    old = current(TAXONOMY_PREFIX + rec.name)
    if old is not None:
        prev = orjson.loads(old)
        if rec.version < prev["version"]:
            raise Rejected("invalid_taxonomy", f"version {rec.version} is older than the current version {prev['version']}", "version")
        if rec.version == prev["version"] and orjson.dumps(prev, option=orjson.OPT_SORT_KEYS) != body:
            raise Rejected("invalid_taxonomy", f"version {rec.version} already exists with other content: bump the version", "version")
    try:
        compile_taxonomy(rec, state.vectorizer(rec.vectorizer), max_prompts=state.settings.max_prompts)
    except TaxonomyError as e:
        raise Rejected("invalid_taxonomy", f"{e.reason}: {e}", "classes") from None
    except VectorizerError as e:
        raise Rejected("vectorizer_error", str(e), "vectorizer") from None
    return body
