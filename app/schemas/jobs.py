"""Jobs and class declarations: Weaviate's classification request and class shapes.

A **job** is a one-off classification over the stored objects of a class. It starts from a
record on the ``jobs`` topic (key: the job id) or ``POST /v1/classifications``; the body is
Weaviate's, plus our ``scope``:

    >>> j = JobRequest.model_validate({"type": "knn", "class": "Article", "classifyProperties": ["topic"],
    ...                                "basedOnProperties": ["summary"], "settings": {"k": 3}})
    >>> j.class_, j.scope, j.filters.sourceWhere
    ('Article', 'unlabeled', None)

Field types are checked here (a wrong type is a 422 / ``schema_violation``); Weaviate's own
rules (class declared, property types, k) are checked by ``app.classify.jobrules``.

A **class declaration** (training topic, key ``class:<name>``) is Weaviate's class shape; the
properties a job classifies are references (a ``dataType`` naming a class):

    >>> c = ClassDecl.model_validate({"record": "class", "class": "Article", "properties": [
    ...     {"name": "summary", "dataType": ["text"]}, {"name": "topic", "dataType": ["Topic"]}]})
    >>> [p.is_reference for p in c.properties]
    [False, True]
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CLASS_PREFIX = "class:"
CLASS_NAME = r"^[A-Z][_0-9A-Za-z]*$"  # Weaviate's class name rule
PROPERTY_NAME = r"^[_A-Za-z][_0-9A-Za-z]*$"  # Weaviate's property name rule


class JobFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sourceWhere: dict[str, Any] | None = None
    trainingSetWhere: dict[str, Any] | None = None
    targetWhere: dict[str, Any] | None = None


class JobRequest(BaseModel):
    """Weaviate's ``POST /v1/classifications`` body, plus ``scope`` (ours)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str | None = Field(None, max_length=64, description="set by the service (a UUID) when absent")
    type: str = Field("knn", description="knn | zeroshot")
    class_: str = Field("", alias="class", max_length=256)
    classifyProperties: list[str] = Field(default_factory=list, max_length=64)
    basedOnProperties: list[str] = Field(default_factory=list, max_length=64)
    settings: dict[str, Any] | None = Field(None, description="knn: {k}; zeroshot: {taxonomies: [names]}")
    filters: JobFilters = Field(default_factory=JobFilters)
    started: int | None = Field(None, description="set by the service: ms since the epoch (default: the record's "
                                "timestamp)")
    scope: Literal["unlabeled", "all"] = Field(
        "unlabeled", description="unlabeled: objects without a value for the classify properties (Weaviate); "
        "all: re-classify every stored object of the class")

    @field_validator("classifyProperties", "basedOnProperties", "filters", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any, info: Any) -> Any:
        """Weaviate takes ``null`` for these as absent (then its own rule names what is missing)."""
        if v is None:
            return {} if info.field_name == "filters" else []
        return v


class ClassProperty(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=PROPERTY_NAME, max_length=256)
    dataType: list[str] = Field(min_length=1, max_length=16)

    @property
    def is_reference(self) -> bool:
        """Weaviate: a dataType naming a class (capitalised) is a cross-reference (cref)."""
        return self.dataType[0][:1].isupper()


class ClassDecl(BaseModel):
    """``{"record": "class", "class": "Article", "properties": [{"name", "dataType"}]}``."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    record: Literal["class"] = "class"
    op: Literal["upsert", "delete"] = "upsert"
    class_: str = Field(alias="class", pattern=CLASS_NAME, max_length=256)
    description: str | None = None
    properties: list[ClassProperty] = Field(default_factory=list, max_length=1000)

    def property(self, name: str) -> ClassProperty | None:
        return next((p for p in self.properties if p.name == name), None)

    def weaviate(self) -> dict[str, Any]:
        """The declaration as ``GET /v1/schema/{class}`` shows it."""
        return self.model_dump(mode="json", by_alias=True, exclude={"record", "op"}, exclude_none=True)
