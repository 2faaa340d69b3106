"""Results: one record per (item, classifier), keyed by item id.

The content is a pure function of the input record and the model state it used
(index version, taxonomy version), so a redelivered event reproduces the same record:
consumers dedupe on ``result_id``. The results topic is not compacted: its key is the item id,
shared by the results of every classifier of the item, so compaction would drop all but one. The
wall-clock time of classification travels in the ``classified_at`` Kafka header.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.deadletter import Source


class TaxonomyRef(BaseModel):
    name: str
    version: int


class Result(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    result_id: str = Field(description="'<item_id>/<classifier>': stable across redeliveries")
    item_id: str
    item_kind: Literal["object", "media"] = "object"
    class_: str = Field(alias="class")
    classifier: str
    method: Literal["knn", "zeroshot", "media", "hashmatch", "model"]
    labels: dict[str, str | None] = Field(description="winning label per classified property")
    confidence: dict[str, float] = Field(default_factory=dict)
    index_version: dict[str, int] = Field(default_factory=dict, description="kNN: index version per property")
    taxonomies: list[TaxonomyRef] = Field(default_factory=list, description="zero-shot/media: taxonomies used")
    detail: dict[str, Any] = Field(default_factory=dict, description="method-specific output (kNN meta, model output, ...)")
    from_cache: bool = False
    event_time: int | None = Field(None, description="input record timestamp, ms since epoch")
    source: Source


class ModerationHit(BaseModel):
    """Published to the moderation topic when a policy rule fires (action other than allow)."""

    item_id: str
    item_kind: Literal["object", "media"] = "object"
    action: str
    rule: str
    taxonomy: TaxonomyRef
    class_name: str
    score: float
    scores: dict[str, float]
    source: Source
