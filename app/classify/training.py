"""The training pipeline's pure step: validate records before they enter the training table.

A record is checked the way the workers will use it (filters compiled, taxonomy prompts
vectorized, vector dimension against the live index), so that nothing invalid reaches the
table and every bad record leaves as a dead letter with the reason. Validation reads the
*table* (and this batch's own earlier writes), not the replica, which lags: v2 then v1 of a
taxonomy in one batch refuses v1, and two first examples of a class with different
dimensions cannot both pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
from pydantic import ValidationError

from app.classify.codec import Rejected, check_depth, from_validation_error, internal_error, load_json
from app.classify.outcome import Outcome, Record, TableWrite
from app.core.filters import FilterError, compile_where
from app.schemas.jobs import CLASS_PREFIX, ClassDecl
from app.schemas.training import (CLASSIFIER_PREFIX, INDEX_PREFIX, TAXONOMY_PREFIX, ClassifierDef, Example,
                                  IndexRecord, PromptVector, TaxonomyRecord, parse_training, prompt_key,
                                  record_key)
from app.schemas.vectors import encode_vector
from app.classify.state import Classifier, ModelState, filter_limits, fingerprint

Current = Callable[[str], bytes | None]
TRAINING = "training"


class BatchView:
    """What validation compares with: the table as written so far, this batch's writes on top."""

    def __init__(self, state: ModelState, read: Callable[[bytes], bytes | None] | None = None):
        self.state, self.read = state, read
        self.pending: dict[str, bytes | None] = {}
        self.dims: dict[str, int] = {}  # class -> dimension of examples accepted in this batch
        self.examples: dict[str, tuple[str, int]] = {}  # example id -> (class, dimension) validated here

    def current(self, key: str) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        value = self.read(key.encode()) if self.read is not None else None
        return value if value is not None else self.state.taxonomy_doc(key)

    def class_dim(self, class_name: str) -> int | None:
        """The live index's dimension, else that of an example accepted in this batch or in an
        earlier one that the replica has not applied yet (the index lags the table)."""
        dim = self.state.indexes.dim(class_name)
        if dim is None:
            dim = self.dims.get(class_name)
        return dim if dim is not None else self.state.unapplied_dim(class_name)


def training_step(state: ModelState, records: Sequence[Record],
                  read: Callable[[bytes], bytes | None] | None = None) -> list[Outcome]:
    """Validate a batch in order: one ``Outcome`` per record, its table write or its rejection."""
    view = BatchView(state, read)
    outcomes = []
    for rec in records:
        try:
            key, value = validate(rec.key, rec.value, state, view.current, view)
        except Rejected as r:
            outcomes.append(Outcome.reject(r))
            continue
        except Exception as e:  # noqa: BLE001 - errors are data
            outcomes.append(Outcome.reject(internal_error(e)))
            continue
        view.pending[key] = value
        if value is not None and key in view.examples:
            state.accepted_example(key, *view.examples[key])
        outcomes.append(Outcome(writes=[TableWrite(TRAINING, key.encode(), value)]))
    return outcomes


def validate(key: bytes | None, value: bytes | None, state: ModelState, current: Current,
             view: BatchView | None = None) -> tuple[str, bytes | None]:
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
        return rec.id, _example(rec, state, view or BatchView(state))
    if isinstance(rec, ClassifierDef):
        return record_key(rec), _classifier(rec, state)
    if isinstance(rec, ClassDecl):
        return record_key(rec), _class(rec)
    if isinstance(rec, IndexRecord):
        return record_key(rec), _index(rec)
    if isinstance(rec, PromptVector):
        return record_key(rec), _prompt_vector(rec, state, current)
    return record_key(rec), _taxonomy(rec, state, current)


def _index(rec: IndexRecord) -> bytes:
    for option, space in rec.options.items():
        if space.vectorizer == "minilm" and space.dim not in (None, 384):
            raise Rejected("schema_violation", f"option {option}: minilm vectors have 384 dimensions, not {space.dim}",
                           f"options.{option}.dim")
    return orjson.dumps(rec.model_dump(mode="json", exclude={"op"}, exclude_none=True), option=orjson.OPT_SORT_KEYS)


def _prompt_vector(rec: PromptVector, state: ModelState, current: Current) -> bytes:
    """A prompt vector whose index declares the option's space precomputed with a ``dim`` must
    have that size (an index published later is checked against its vectors on request)."""
    assert rec.vector is not None
    if rec.vector.size > state.settings.max_vector_dim:
        raise Rejected("vector_too_large", f"vector has {rec.vector.size} dimensions, the limit is "
                       f"{state.settings.max_vector_dim}", "vector")
    index = current(INDEX_PREFIX + rec.index_id)
    space = orjson.loads(index)["options"].get(rec.option) if index is not None else None
    if space is not None and space.get("dim") and space["dim"] != rec.vector.size:
        raise Rejected("vector_dimension_mismatch", f"index {rec.index_id!r} option {rec.option}: precomputed "
                       f"prompt vectors have {space['dim']} dimensions, this one {rec.vector.size}", "vector")
    doc = rec.model_dump(mode="json", exclude={"op", "vector"})
    doc["vector"] = encode_vector(rec.vector)
    return orjson.dumps(doc)


def _schema_rejection(err: ValidationError) -> Rejected:
    """Field paths start at the record: pydantic puts the union's tag ('example') first."""
    first = err.errors(include_url=False)[0]
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return Rejected("schema_violation", f"record: {first['msg']}", "record")
    return from_validation_error(err, skip=1)


def _delete_key(data: dict) -> str:
    kind = data.get("record")
    ident = data.get("class") if kind == "class" else data.get("id") or data.get("name")
    if kind == "prompt_vector":
        parts = [data.get("index_id"), data.get("option"), data.get("prompt")]
        if not all(isinstance(p, str) and p for p in parts):
            raise Rejected("schema_violation", "a prompt_vector delete needs index_id, option and prompt", "prompt")
        return prompt_key(str(parts[0]), str(parts[1]), str(parts[2]))
    if kind == "index" and isinstance(ident, str) and ident:
        return INDEX_PREFIX + ident
    if kind not in ("example", "classifier", "taxonomy", "class") or not isinstance(ident, str) or not ident:
        raise Rejected("schema_violation", "a delete needs 'record' (example|classifier|taxonomy|class|index|"
                       "prompt_vector) and its id or name ('class' for a class)", "record" if kind is None else "id")
    return {"example": "", "classifier": CLASSIFIER_PREFIX, "taxonomy": TAXONOMY_PREFIX,
            "class": CLASS_PREFIX}[kind] + ident


def _class(rec: ClassDecl) -> bytes:
    names = [p.name for p in rec.properties]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise Rejected("schema_violation", f"properties: property {dup!r} is declared twice", "properties")
    return orjson.dumps(rec.model_dump(mode="json", by_alias=True, exclude={"op"}, exclude_none=True))


def _example(rec: Example, state: ModelState, view: BatchView) -> bytes:
    check_depth(rec.properties, "properties")
    for prop, label in rec.labels.items():  # the index refuses empty names and labels: so do we
        if not prop or not label:
            raise Rejected("schema_violation", f"labels: {prop!r}: {label!r}: property names and labels must be "
                           "non-empty strings", f"labels.{prop}" if prop else "labels")
    vector, space = rec.vector, None
    if vector is None:
        space = example_vectorizer(state, rec.class_)
        vector = _vectorize(state, rec.text, space)
    if vector.size > state.settings.max_vector_dim:
        raise Rejected("vector_too_large", f"vector has {vector.size} dimensions, the limit is {state.settings.max_vector_dim}", "vector")
    dim = view.class_dim(rec.class_)
    if dim is not None and dim != vector.size:
        raise Rejected("vector_dimension_mismatch",
                       f"class {rec.class_} has dimension {dim}, the example's vector has {vector.size}", "vector")
    view.dims.setdefault(rec.class_, vector.size)
    view.examples[rec.id] = (rec.class_, int(vector.size))
    doc = rec.model_dump(mode="json", by_alias=True, exclude={"vector", "text", "op", "vectorizer"})
    doc["vector"] = encode_vector(vector)
    if space is not None:
        doc["vectorizer"] = space
    return orjson.dumps(doc)


def example_vectorizer(state: ModelState, class_name: str) -> str:
    """The vectorizer for a text example of ``class_name``: its kNN classifiers' (else the default)."""
    knn = [c for c in state.snapshot().classifiers_by_class.get(class_name, ()) if c.spec.type == "knn"]
    names = {c.spec.vectorizer or state.settings.vectorizer for c in knn}
    return names.pop() if len(names) == 1 else state.settings.vectorizer


def _vectorize(state: ModelState, text: str | None, name: str):
    from app.core.vectorizers import VectorizerError

    try:
        return state.vectorizer(name).encode([text or ""])[0]
    except VectorizerError as e:
        raise Rejected(getattr(e, "reason", "vectorizer_error"), str(e), "text") from None


def _classifier(rec: ClassifierDef, state: ModelState) -> bytes:
    compiled = {}
    for name, where in rec.filters:  # compiled one by one so the path names the filter
        try:
            compiled[name] = compile_where(where, limits=filter_limits(state.settings)) if where else None
        except FilterError as e:
            at = e.path if e.path.startswith("[") or not e.path else f".{e.path}"
            raise Rejected(getattr(e, "reason", "invalid_filter"), f"{name}: {e}", f"filters.{name}{at}") from None
    if rec.type == "knn":
        _check_space(rec, state)
    body = orjson.dumps(rec.model_dump(mode="json", by_alias=True, exclude={"op"}))
    state.compiled.put(fingerprint(body), Classifier(rec, compiled["sourceWhere"], compiled["trainingSetWhere"],
                                                     compiled["targetWhere"]))
    return body


def _check_space(rec: ClassifierDef, state: ModelState) -> None:
    """One vector space per class: every kNN classifier of a class embeds text with one vectorizer,
    the one its text examples were embedded with."""
    name = rec.vectorizer or state.settings.vectorizer
    others = {c.spec.vectorizer or state.settings.vectorizer
              for c in state.snapshot().classifiers_by_class.get(rec.class_, ())
              if c.spec.type == "knn" and c.name != rec.name}
    used = (others | state.example_vectorizers(rec.class_)) - {name}
    if used:
        raise Rejected("invalid_classifier", f"class {rec.class_!r} already embeds text with {sorted(used)}; "
                       f"a kNN classifier with vectorizer {name!r} would compare across vector spaces", "vectorizer")


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
        compiled = compile_taxonomy(rec, state.vectorizer(rec.vectorizer), max_prompts=state.settings.max_prompts)
    except TaxonomyError as e:
        raise Rejected("invalid_taxonomy", f"{e.reason}: {e}", "classes") from None
    except VectorizerError as e:
        raise Rejected(getattr(e, "reason", "vectorizer_error"), str(e), "vectorizer") from None
    state.compiled.put(fingerprint(body), compiled)
    return body
