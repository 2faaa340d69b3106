"""Faust tables: all state lives in Kafka changelog topics.

Values are canonical JSON bytes (orjson) so the changelogs are readable by any Kafka
client, and so the training replica (``app/replica.py``) can tail the training changelog
without Faust's codecs. ``use_partitioner`` because agents write from ``take_events``
batches that span partitions: the key's hash, not the current event, picks the partition.
Keys are raw bytes, the same bytes producers key their records with, so the default
(murmur2) partitioner puts a table key in the partition number of its source record,
which is the partition this worker owns.
"""

from __future__ import annotations

from app.main import app, settings
from app.topics import CATALOG


def _table(name: str, help: str, source: str):
    return app.Table(
        name,
        partitions=settings.topic_partitions or CATALOG[source].partitions,
        key_type=bytes,  # bytes -> the raw codec, both ways
        value_type=bytes,
        use_partitioner=True,
        help=help,
    )


# b'<example id>' | b'classifier:<name>' | b'taxonomy:<name>'  ->  validated record (JSON); deleted on tombstone
training = _table("training", "validated training records: examples, classifiers, taxonomies", "training")

# b'<object id>' -> {"object": {...}, "results": {classifier: {labels, confidence, ...}}}
stored_objects = _table("stored-objects", "latest version of each object and its classification", "objects")


def changelog_name(table) -> str:
    return table.changelog_topic.get_topic_name()
