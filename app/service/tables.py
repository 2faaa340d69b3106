"""Faust tables: all state lives in Kafka changelog topics.

Values are canonical JSON bytes (orjson) so the changelogs are readable by any Kafka
client, and so the training replica (``app/service/replica.py``) can tail the training
changelog without Faust's codecs. ``use_partitioner`` because agents write from
``take_events`` batches that span partitions: the key's hash, not the current event, picks
the partition. Keys are raw bytes, the same bytes producers key their records with, so the
default (murmur2) partitioner puts a table key in the partition number of its source record,
which is the partition this worker owns.

Only the sink writes (``apply``, from :class:`~app.classify.outcome.TableWrite`); pure steps
read through :meth:`Tables.reader` (a plain ``key -> bytes | None`` function).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Callable

import faust
from faust.types import TableT

from app.classify.outcome import TableWrite
from app.service.store import RocksDBStore
from app.service.table_sizes import SizeCounter
from app.settings import Settings
from app.topics import BIG, CATALOG

Reader = Callable[[bytes], bytes | None]

TRAINING = "training"
STORED_OBJECTS = "stored-objects"
MEDIA_ASSEMBLY = "media-assembly"
MEDIA_CACHE = "media-cache"
JOBS = "jobs"
JOB_PROGRESS = "job-progress"
MEDIA_STORE = "media-store"
FEEDBACK_VERDICTS = "feedback-verdicts"
REQUEST_RESULTS = "request-results"


#: (table, the catalog topic whose partition count it shares, extra changelog configs): what ``Tables``
#: builds and what ``app/service/admin.py`` creates before a worker starts (see ``changelog_topics``).
_BIG = {"max.message.bytes": BIG}
SPECS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (TRAINING, "training", {}), (STORED_OBJECTS, "objects", {}), (MEDIA_ASSEMBLY, "media", _BIG),
    (MEDIA_CACHE, "media", _BIG), (MEDIA_STORE, "media", _BIG),
    (JOBS, "jobs", {}), (JOB_PROGRESS, "objects", {}), (FEEDBACK_VERDICTS, "feedback", {}),
    (REQUEST_RESULTS, "media", _BIG))


def changelog_topics(settings: Settings) -> list[tuple[str, int, dict[str, str]]]:
    """``(name, partitions, configs)`` of every table's changelog, as Faust names and declares them.

    Created up front (``admin.ensure_topics``), because a changelog Faust creates while it starts can
    miss the consumer's first assignment (the broker's metadata lags the creation): that table then
    has no active partition in the worker (no RocksDB partition, no recovery), which happened to the
    fifth table on a loaded machine.

    >>> [n for n, _, _ in changelog_topics(Settings(app_id="ls"))][-3:]
    ['ls-job-progress-changelog', 'ls-feedback-verdicts-changelog', 'ls-request-results-changelog']
    """
    return [(f"{settings.app_id}-{name}-changelog", settings.topic_partitions or CATALOG[source].partitions,
             {"cleanup.policy": "compact", **settings.topic_config(), **extra}) for name, source, extra in SPECS]


class Tables:
    """Every table of a worker, by name."""

    def __init__(self, app: faust.App, settings: Settings):
        def table(name: str, source: str, help: str, **extra: str) -> TableT:
            return app.Table(
                name,
                partitions=settings.topic_partitions or CATALOG[source].partitions,
                key_type=bytes,  # bytes -> the raw codec, both ways
                value_type=bytes,
                use_partitioner=True,
                help=help,
                extra_topic_configs={**settings.topic_config(), **extra},
            )

        # b'<example id>' | b'classifier:<name>' | b'taxonomy:<name>' -> validated record (JSON)
        self.training = table(TRAINING, "training", "validated training records: examples, classifiers, taxonomies")
        # b'<object id>' -> {"object": {...}, "results": {classifier: {labels, confidence}}}
        self.stored_objects = table(STORED_OBJECTS, "objects", "latest version of each object and its classification")
        # see app/classify/assembly.py for the keys
        self.media_assembly = table(MEDIA_ASSEMBLY, "media", "chunks of media items being assembled, and done markers",
                                    **{"max.message.bytes": BIG})
        self.media_cache = table(MEDIA_CACHE, "media", "media results by content, taxonomy version and classifier "
                                 "settings", **{"max.message.bytes": BIG})
        # b'<job id>' -> the job record (app/classify/jobs.py); b'[job id, partition, salt]' -> that
        # partition's progress, keyed into the partition it counts (its owner writes it)
        self.jobs = table(JOBS, "jobs", "classification jobs: their requests and start times")
        self.job_progress = table(JOB_PROGRESS, "objects", "progress of each job per stored-objects partition")
        # see app/classify/mediastore.py: complete media items, for classification on request
        self.media_store = table(MEDIA_STORE, "media", "assembled media items (segments, vectors, text) by media_id",
                                 **{"max.message.bytes": BIG})
        # b'<item id>' -> {"verdicts": [feedback...], "learned": {property: example}} (app/classify/feedback.py)
        self.feedback_verdicts = table(FEEDBACK_VERDICTS, "feedback", "verdicts per item and the examples learned")
        # see app/classify/requeststore.py: classify pages and Hive async tasks, in their id's home partition
        self.request_results = table(REQUEST_RESULTS, "media", "classify pages and Hive async tasks, for any worker",
                                     **{"max.message.bytes": BIG})
        self.by_name: dict[str, TableT] = {t.name: t for t in (self.training, self.stored_objects,
                                                                     self.media_assembly, self.media_cache,
                                                                     self.media_store, self.jobs, self.job_progress,
                                                                     self.feedback_verdicts, self.request_results)}
        # A table's writer and the sweeper take turns through these (the sweeper must not drop an
        # assembly while a media step that read it is in the pool).
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.counts = SizeCounter(self.size_count)  # /health/ready's figures, counted in a thread

    def apply(self, w: TableWrite) -> None:
        """One write of a step's outcome (from an agent, or the sweeper's timer: our tables use the
        partitioner, so no current event is needed; ``app/service/store.py`` for RocksDB)."""
        t = self.by_name[w.table]
        if w.value is not None:
            t[w.key] = w.value
        elif w.key in t:
            del t[w.key]

    async def known_to_producer(self, app: faust.App) -> None:
        """Wait until the producer's cluster metadata has every changelog topic.

        A table write hashes its key to a partition with the producer's metadata (``use_partitioner``)
        and fails with a TypeError when the topic is missing there: Faust creates the changelogs while
        it starts, and a producer that fetched its metadata a moment before a creation reached the
        broker's metadata cache does not know that topic until its next refresh (minutes). Seen with
        the fifth table (media-store): the media agent crashed on its first write."""
        producer: Any = await app.maybe_start_producer()
        client = producer._ensure_producer().client  # noqa: SLF001 - aiokafka has no public wait
        names = [t.changelog_topic.get_topic_name() for t in self.by_name.values()]
        # Listed explicitly: once the client lists any topic it refreshes only the listed ones, and
        # _wait_on_metadata lists nothing it already knows, so a known changelog would drop out later.
        for name in names:
            client.add_topic(name)
        for name in names:
            await client._wait_on_metadata(name)  # noqa: SLF001

    def reader(self, name: str) -> Reader:
        """``key -> value | None`` over a table's store, for pure steps (no Faust sensors, no writes)."""
        table = self.by_name[name]

        def get(key: bytes) -> bytes | None:
            return table.data.get(key)  # the store is made when the table starts: look it up per read

        return get

    def size_count(self) -> Callable[[], dict[str, int]]:
        """Keys this worker holds per table (its partitions): what changelog recovery restored.

        Called on the event loop, it returns the count to run in a thread (``counts``): a memory
        table's size is known at once, a RocksDB table's keys are walked there (no count is kept)."""
        counters: dict[str, Callable[[], int]] = {}
        for name, t in self.by_name.items():
            store = t.data
            if isinstance(store, RocksDBStore):
                counters[name] = store.key_counter()
            else:
                n = len(t)
                counters[name] = lambda n=n: n  # type: ignore[misc]
        return lambda: {name: count() for name, count in counters.items()}

    def changelog(self, name: str) -> str:
        return self.by_name[name].changelog_topic.get_topic_name()
