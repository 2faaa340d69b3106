"""Fill a fresh app's table changelogs directly: N training examples and N stored objects in minutes.

Why not through a worker: on this shared 2-core machine the training agent took 300 s for 67,000
of 100,000 examples, so a benchmark that needs 100k examples (or a million stored objects) would
spend most of its time loading. The records are exactly what the worker would have written:
training values come from the training agent's own validator (``app.classify.training.validate``,
the canonical record), stored objects from the sink's format (``app.classify.objects.stored`` via
``stamped``); keys are the same bytes and the default (murmur2) partitioner picks the same
partition as the worker's tables (``use_partitioner``). The changelog topics are created here
as Faust would (``<app id>-<table>-changelog``, compacted, the table's partitions).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.classify.expiry import stamped
from app.classify.state import ModelState
from app.classify.training import validate
from app.schemas.vectors import encode_vector
from app.service.admin import bootstrap
from app.settings import Settings

DIM = 384


def changelog(settings: Settings, table: str) -> str:
    """The changelog topic Faust uses for ``table``.

    >>> changelog(Settings(app_id="a"), "stored-objects")
    'a-stored-objects-changelog'
    """
    return f"{settings.app_id}-{table}-changelog"


def stored_value(i: int, vec: np.ndarray, at_ms: int) -> bytes:
    """A stored-objects value as the sink writes it (app/classify/objects.py ``stored``).

    >>> v = orjson.loads(stored_value(3, np.zeros(2, np.float32), 5))
    >>> v["at"], v["object"]["id"], sorted(v["results"]["bench-large"])
    (5, 'obj-3', ['confidence', 'labels'])
    """
    obj = {"id": f"obj-{i}", "class": "Doc", "properties": {"title": f"object {i}"}, "vector": encode_vector(vec)}
    return stamped(at_ms, {"object": obj, "results": {"bench-large": {"labels": {"topic": f"t{i % 50}"},
                                                                      "confidence": {"topic": 0.8}}}})


async def create_changelogs(settings: Settings, partitions: int, tables: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        config = {**settings.topic_config(), "cleanup.policy": "compact"}
        await admin.create_topics([NewTopic(changelog(settings, t), partitions, settings.replication_factor,
                                            topic_configs=config) for t in tables])
    finally:
        await admin.close()


async def send_all(broker: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap(broker), linger_ms=20, acks=1, max_batch_size=1 << 20,
                         max_request_size=16 << 20)
    await p.start()
    n, futs = 0, []
    try:
        for key, value in records:
            futs.append(await p.send(topic, key=key, value=value))
            n += 1
            if len(futs) >= 10_000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return n


def canonical(training: list[tuple[str, dict]]) -> list[tuple[bytes, bytes]]:
    """The training table's (key, value) for each training record, by the agent's validator."""
    with tempfile.TemporaryDirectory() as tmp:
        state = ModelState(Settings(data_dir=Path(tmp)))
        try:
            out = []
            for key, rec in training:
                k, v = validate(key.encode(), orjson.dumps(rec), state, lambda _: None)
                assert v is not None
                out.append((k.encode(), v))
            return out
        finally:
            state.indexes.close()


async def fill(settings: Settings, partitions: int, training: list[tuple[str, dict]], objects: int) -> dict:
    """Create the changelogs of ``training`` and ``stored-objects`` and fill them; seconds per part."""
    await create_changelogs(settings, partitions, ["training", "stored-objects"])
    t = time.monotonic()
    await send_all(settings.broker, changelog(settings, "training"), canonical(training))
    took = {"training_s": time.monotonic() - t}
    t = time.monotonic()
    rng, at = np.random.default_rng(9), int(time.time() * 1000)

    def objs() -> Iterable[tuple[bytes, bytes]]:
        for s in range(0, objects, 10_000):
            for j, v in enumerate(rng.standard_normal((min(objects, s + 10_000) - s, DIM), dtype=np.float32)):
                yield f"obj-{s + j}".encode(), stored_value(s + j, v, at)
    await send_all(settings.broker, changelog(settings, "stored-objects"), objs())
    took["objects_s"] = time.monotonic() - t
    return took
