"""Records of the training topic (compacted): labeled examples, classifiers, taxonomies.

Keys decide what compaction keeps and what a tombstone (null value) deletes:

- ``<example id>``            a labeled example (``record: "example"``)
- ``classifier:<name>``       a standing classifier (``record: "classifier"``)
- ``taxonomy:<name>``         a prompt taxonomy (``record: "taxonomy"``); the latest version wins
- ``class:<name>``            a class declaration, Weaviate's class shape (``record: "class"``,
                              ``app/schemas/jobs.py``): its objects are stored for jobs
- ``index:<id>``              a media index's prompt spaces (``record: "index"``): per option, how
                              a prompt's text becomes a vector (``app/classify/prompts.py``)
- ``prompt:[<index>, <option>, <prompt>]`` a precomputed prompt vector (``record: "prompt_vector"``)

An explicit ``{"record": ..., "op": "delete"}`` deletes too.

    >>> rec = parse_training({"record": "example", "id": "e1", "class": "Article",
    ...                       "vector": [1, 0], "labels": {"topic": "sport"}})
    >>> type(rec).__name__, record_key(rec)
    ('Example', 'e1')
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

from app.schemas.banks import BANK_ENTRY_PREFIX, BANK_PREFIX, BankEntry, BankRecord
from app.schemas.feedback import FeedbackRule
from app.schemas.jobs import CLASS_PREFIX, ClassDecl
from app.schemas.media import THRESHOLD_KEYS, Option
from app.schemas.taxonomy import PolicyRule, Taxonomy
from app.schemas.vectors import Vector

_ALL_OPTIONS: tuple[Option, ...] = ("visual", "conversation", "text_in_video")
CLASSIFIER_PREFIX = "classifier:"
TAXONOMY_PREFIX = "taxonomy:"
INDEX_PREFIX = "index:"
PROMPT_PREFIX = "prompt:"


class Example(BaseModel):
    """A labeled training example: its vector and the label of each classify-property."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", arbitrary_types_allowed=True)

    record: Literal["example"] = "example"
    op: Literal["upsert", "delete"] = "upsert"
    id: str = Field(min_length=1, max_length=512)
    class_: str = Field(alias="class", min_length=1)
    vector: Vector | None = None
    text: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict, description="classify-property -> label")
    vectorizer: Literal["none", "hashing", "minilm"] | None = Field(
        None, description="set by the service: the vectorizer that embedded ``text`` (None: the vector was sent)")

    @model_validator(mode="after")
    def _check(self) -> "Example":
        if self.op == "upsert":
            if self.vector is None and not self.text:
                raise PydanticCustomError("vector_missing", "example has neither a vector nor text")
            if not self.labels:
                raise PydanticCustomError("labels_missing", "example has no labels")
        return self


class KnnSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    k: int = Field(3, ge=1, le=1000)
    distance: Literal["cosine", "euclidean"] = "cosine"


class MediaClassOptions(BaseModel):
    """Twelve Labs per-class overrides (``classes[].options`` / ``conversation_option``)."""

    model_config = ConfigDict(extra="forbid")

    options: list[Option] | None = Field(None, min_length=1)
    conversation_option: Literal["semantic", "exact_match"] | None = None


class MediaSettings(BaseModel):
    """``type: media``: the Twelve Labs classify request minus ``classes`` (they come from the
    classifier's taxonomy), plus which index it applies to and which output shape(s) it writes."""

    model_config = ConfigDict(extra="forbid")

    index_id: str | None = Field(None, description="apply to media of this index; None: every index")
    options: list[Option] = Field(default_factory=lambda: list(_ALL_OPTIONS), min_length=1)
    conversation_option: Literal["semantic", "exact_match"] = "semantic"
    include_clips: bool = False
    show_detailed_score: bool = False
    threshold: dict[str, float] = Field(default_factory=dict, description="see app.schemas.media THRESHOLD_KEYS")
    output: Literal["twelvelabs", "hive", "both"] = "both"
    classes: dict[str, MediaClassOptions] = Field(default_factory=dict, description="per-class options by class name")

    @model_validator(mode="after")
    def _check(self) -> "MediaSettings":
        if unknown := sorted(set(self.threshold) - THRESHOLD_KEYS):
            raise PydanticCustomError("invalid_classifier", "unknown threshold keys {keys}; allowed {allowed}",
                                      {"keys": unknown, "allowed": sorted(THRESHOLD_KEYS)})
        return self


class Filters(BaseModel):
    sourceWhere: dict[str, Any] | None = None
    trainingSetWhere: dict[str, Any] | None = None
    targetWhere: dict[str, Any] | None = None


class ClassifierDef(BaseModel):
    """A standing classifier in Weaviate's request shape, run on every matching event."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    record: Literal["classifier"] = "classifier"
    op: Literal["upsert", "delete"] = "upsert"
    name: str = Field(min_length=1, max_length=256)
    type: Literal["knn", "zeroshot", "media", "model"] = "knn"
    class_: str = Field("", alias="class")
    classifyProperties: list[str] = Field(default_factory=list)
    basedOnProperties: list[str] = Field(default_factory=list)
    settings: KnnSettings = Field(default_factory=KnnSettings)
    filters: Filters = Field(default_factory=Filters)
    taxonomies: list[str] = Field(default_factory=list, description="zeroshot: taxonomy (model) names")
    distributions: list[Literal["models", "heads"]] = Field(
        default_factory=list, description="zeroshot: full per-class distributions each result also carries: "
        "'models' (Yandex: every class with a probability), 'heads' (Hive: every leaf with its score); by default "
        "a result carries the top classes per head ('top'), the best paths and the policy decision")
    vectorizer: Literal["none", "hashing", "minilm"] | None = Field(
        None, description="knn: embeds the text of objects and examples of the class (None: the service default)")
    media: MediaSettings | None = Field(None, description="type media: classify settings (defaults when absent)")
    model: Literal["nudity"] | None = Field(None, description="type model: a built-in model run on raw media frames")
    policies: list[PolicyRule] = Field(default_factory=list, description="type model: rules over the model's classes")
    feedback: FeedbackRule | None = Field(
        None, description="knn: learn reviewers' verdicts on items of the class as training examples (opt-in)")

    @model_validator(mode="after")
    def _check(self) -> "ClassifierDef":
        if self.op == "delete":
            return self
        if self.type == "model":  # a built-in model on raw content (app/classify/raw_media.py), chosen like media
            if self.class_ or self.classifyProperties or self.taxonomies:
                raise PydanticCustomError("invalid_classifier", "a model classifier takes no 'class', "
                                          "classifyProperties or taxonomies")
            if self.model is None:
                raise PydanticCustomError("invalid_classifier", "a model classifier needs 'model' (nudity)")
            if self.media is None:
                self.media = MediaSettings()
            return self
        if self.type == "media":
            # Media events have no class: a media classifier is chosen by index_id (or by name),
            # and one taxonomy is one Twelve Labs ``classes`` list / one Hive model.
            if self.class_ or self.classifyProperties:
                raise PydanticCustomError("invalid_classifier", "a media classifier takes no 'class' or classifyProperties")
            if len(self.taxonomies) != 1:
                raise PydanticCustomError("invalid_classifier", "a media classifier needs exactly one taxonomy")
            if self.media is None:
                self.media = MediaSettings()
            return self
        if not self.class_:
            raise PydanticCustomError("invalid_classifier", "classifier needs 'class'")
        if not self.classifyProperties:
            raise PydanticCustomError("invalid_classifier", "classifier needs at least one classifyProperties entry")
        if self.type == "knn" and self.filters.targetWhere:
            raise PydanticCustomError(
                "invalid_classifier", "invalid classification: targetWhere is not supported with type 'knn'"
            )
        if self.type == "zeroshot" and not self.taxonomies:
            raise PydanticCustomError("invalid_classifier", "a zeroshot classifier needs 'taxonomies'")
        if self.type == "zeroshot" and len(self.taxonomies) not in (1, len(self.classifyProperties)):
            # classifyProperties[i] is labelled from taxonomies[i], or every property from the only taxonomy
            raise PydanticCustomError(
                "invalid_classifier", "a zeroshot classifier needs one taxonomy, or one per classifyProperties entry "
                "({n} taxonomies for {m} properties)", {"n": len(self.taxonomies), "m": len(self.classifyProperties)})
        return self


class OptionSpace(BaseModel):
    """How prompt text becomes a vector in one option's space: a shipped vectorizer, or
    ``precomputed`` (the producer publishes ``prompt_vector`` records in the space of its media
    embeddings). ``dim``: the hashing width (default 384), or the precomputed vectors' size."""

    model_config = ConfigDict(extra="forbid")

    vectorizer: Literal["minilm", "hashing", "precomputed"]
    dim: int | None = Field(None, ge=1, le=65536)


class IndexRecord(BaseModel):
    """A media index: per option (visual, conversation, text_in_video), its prompt space."""

    model_config = ConfigDict(extra="forbid")

    record: Literal["index"] = "index"
    op: Literal["upsert", "delete"] = "upsert"
    id: str = Field(min_length=1, max_length=256)
    options: dict[Option, OptionSpace] = Field(min_length=1)


class PromptVector(BaseModel):
    """A prompt's vector in a precomputed option space of an index."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    record: Literal["prompt_vector"] = "prompt_vector"
    op: Literal["upsert", "delete"] = "upsert"
    index_id: str = Field(min_length=1, max_length=256)
    option: Option
    prompt: str = Field(min_length=1, max_length=10_000)
    vector: Vector | None = None

    @model_validator(mode="after")
    def _check(self) -> "PromptVector":
        if self.op == "upsert" and self.vector is None:
            raise PydanticCustomError("vector_missing", "a prompt_vector record needs its vector")
        return self


def prompt_key(index_id: str, option: str, prompt: str) -> str:
    """``prompt:["idx","visual","a dog"]`` (JSON: an index id or prompt may hold any character).

    >>> print(prompt_key("idx", "visual", 'a "dog"'))
    prompt:["idx","visual","a \\"dog\\""]
    """
    return PROMPT_PREFIX + orjson.dumps([index_id, option, prompt]).decode()


class TaxonomyRecord(Taxonomy):
    record: Literal["taxonomy"] = "taxonomy"
    op: Literal["upsert", "delete"] = "upsert"


AnyRecord = Union[Example, ClassifierDef, TaxonomyRecord, IndexRecord, PromptVector, ClassDecl, BankRecord, BankEntry]
TrainingRecord = Annotated[AnyRecord, Field(discriminator="record")]
_adapter: TypeAdapter[AnyRecord] = TypeAdapter(TrainingRecord)


def parse_training(data: Any) -> AnyRecord:
    return _adapter.validate_python(data)


def record_key(rec: AnyRecord) -> str:
    if isinstance(rec, Example):
        return rec.id
    if isinstance(rec, ClassifierDef):
        return CLASSIFIER_PREFIX + rec.name
    if isinstance(rec, ClassDecl):
        return CLASS_PREFIX + rec.class_
    if isinstance(rec, IndexRecord):
        return INDEX_PREFIX + rec.id
    if isinstance(rec, PromptVector):
        return prompt_key(rec.index_id, rec.option, rec.prompt)
    if isinstance(rec, BankRecord):
        return BANK_PREFIX + rec.name
    if isinstance(rec, BankEntry):
        return BANK_ENTRY_PREFIX + rec.id
    return TAXONOMY_PREFIX + rec.name


def training_json_schema() -> dict:
    return _adapter.json_schema()
