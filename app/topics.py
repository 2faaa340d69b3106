"""The topic catalog: every topic's name, partitions, cleanup policy, key and value schema.

``topics/<name>.json`` is generated from this list (``labelstream topics export``) and a
test fails when the files and the pydantic models disagree. Topics are created from the
catalog when the worker starts.

    >>> CATALOG["training"].cleanup_policy
    'compact'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.schemas.deadletter import DeadLetter
from app.schemas.feedback import Feedback
from app.schemas.jobs import JobRequest
from app.schemas.media import MediaEvent
from app.schemas.objects import ObjectEvent
from app.schemas.results import ModerationHit, Result
from app.schemas.training import training_json_schema
from app.schemas.workers import WorkerReport

TOPICS_DIR = Path(__file__).resolve().parent.parent / "topics"
BIG = str(16 * 1024 * 1024)  # media events and their chunk table carry many segment vectors


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    partitions: int
    cleanup_policy: str
    key: str
    value_schema: Callable[[], dict]
    config: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "partitions": self.partitions,
            "cleanup_policy": self.cleanup_policy,
            "config": self.config,
            "key": self.key,
            "value_schema": self.value_schema(),
        }


SPECS = [
    TopicSpec("objects", "objects to classify (producers)", 8, "delete", "object id",
              ObjectEvent.model_json_schema),
    TopicSpec("media", "images, video and audio as time-coded segments (producers)", 8, "delete", "media_id",
              MediaEvent.model_json_schema, {"max.message.bytes": BIG}),
    TopicSpec("training", "labeled examples, classifiers and taxonomies; live model updates", 8, "compact",
              "example id | classifier:<name> | taxonomy:<name>; a null value deletes", training_json_schema),
    TopicSpec("jobs", "classification jobs to start: Weaviate's POST /v1/classifications body plus 'scope' "
              "(also what the REST API publishes)", 8, "delete", "job id (a UUID; else one is derived from the "
              "record's position)", lambda: JobRequest.model_json_schema(by_alias=True)),
    TopicSpec("results", "one result per (item, classifier)", 8, "delete", "item id (object id or media_id)",
              lambda: Result.model_json_schema(by_alias=True), {"max.message.bytes": BIG}),
    TopicSpec("moderation", "policy hits: items a moderation rule acted on", 8, "delete", "item id",
              ModerationHit.model_json_schema),
    TopicSpec("deadletter", "inputs that could not be classified, with a machine-readable reason", 8, "delete",
              "the input record's key", DeadLetter.model_json_schema, {"max.message.bytes": BIG}),
    TopicSpec("feedback", "verdicts on decisions (console reviewers, ground truth from other systems)", 8, "delete",
              "item id (the partition of the item's object)", lambda: Feedback.model_json_schema(by_alias=True),
              {"retention.ms": str(90 * 24 * 3600 * 1000)}),  # online accuracy is recomputed from the whole topic
    TopicSpec("workers", "each worker's counters (agent restarts, records in and out), republished every few "
              "seconds; the console's overview sums the live workers' (a null value: the worker stopped)", 1,
              "compact", "worker id (LABELSTREAM_WORKER_ID, else <host>:<web port>)", WorkerReport.model_json_schema),
]
CATALOG = {s.name: s for s in SPECS}


def render(spec: TopicSpec) -> str:
    return json.dumps(spec.document(), indent=2, sort_keys=False) + "\n"


def export(directory: Path = TOPICS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in SPECS:
        path = directory / f"{spec.name}.json"
        path.write_text(render(spec))
        written.append(path)
    return written
