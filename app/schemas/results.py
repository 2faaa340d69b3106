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


class ResultDoc:
    """A :class:`Result` built as plain data: the form the kNN and zero-shot steps emit.

    Constructing a ``Result`` validates every field, and serializing it walks the model again:
    about 17 us a result on this machine, more than a kNN query over a small index costs
    (``bench/RESULTS.md``, issue 10). The steps make values of the schema's types themselves, so they
    build the JSON document directly: ``Result``'s keys (aliases) in its field order, so ``dumps``
    gives the very bytes ``dumps(Result(...))`` would. ``Result`` stays the contract:
    ``tests/unit/test_resultdoc.py`` holds the two forms to the same bytes on real step outputs and
    validates every document as a ``Result``. The attributes the sink, the stored object and jobs
    read are views of the document (``detail`` is the document's own dict: a job adds to it).

    >>> from app.schemas.deadletter import Source
    >>> r = ResultDoc(result_id="a/c", item_id="a", class_="C", classifier="c", method="knn",
    ...               labels={"p": "x"}, source=Source(topic="t", partition=0, offset=7))
    >>> r.item_id, r.method, Result.model_validate(r.doc).labels
    ('a', 'knn', {'p': 'x'})
    """

    __slots__ = ("doc",)

    def __init__(self, *, result_id: str, item_id: str, class_: str, classifier: str, method: str,
                 labels: dict[str, str | None], source: Source, item_kind: str = "object",
                 confidence: dict[str, float] | None = None, index_version: dict[str, int] | None = None,
                 taxonomies: list[dict[str, Any]] | None = None, detail: dict[str, Any] | None = None,
                 from_cache: bool = False, event_time: int | None = None):
        self.doc: dict[str, Any] = {
            "result_id": result_id, "item_id": item_id, "item_kind": item_kind, "class": class_,
            "classifier": classifier, "method": method, "labels": labels,
            "confidence": {} if confidence is None else confidence,
            "index_version": {} if index_version is None else index_version,
            "taxonomies": [] if taxonomies is None else taxonomies,
            "detail": {} if detail is None else detail, "from_cache": from_cache, "event_time": event_time,
            "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset,
                       "timestamp": source.timestamp}}

    @property
    def result_id(self) -> str:
        return self.doc["result_id"]

    @property
    def item_id(self) -> str:
        return self.doc["item_id"]

    @property
    def classifier(self) -> str:
        return self.doc["classifier"]

    @property
    def method(self) -> str:
        return self.doc["method"]

    @property
    def labels(self) -> dict[str, str | None]:
        return self.doc["labels"]

    @property
    def confidence(self) -> dict[str, float]:
        return self.doc["confidence"]

    @property
    def detail(self) -> dict[str, Any]:
        return self.doc["detail"]
