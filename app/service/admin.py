"""Topic creation from the catalog, with the raw Kafka admin client.

Faust creates the topics it consumes (``internal=True``) but not the ones it only writes
(results, moderation, deadletter); creating every catalog topic up front also fails fast,
with one clear line, when the broker is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from app.settings import Settings
from app.topics import CATALOG

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    pass


def bootstrap(broker_url: str) -> str:
    """``kafka://h1:9092;kafka://h2:9092`` -> ``h1:9092,h2:9092`` (aiokafka's form)."""
    parts = [p.strip() for p in broker_url.replace(";", ",").split(",") if p.strip()]
    return ",".join(p.split("://", 1)[-1] for p in parts)


async def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create missing catalog topics and table changelogs (``tables.changelog_topics``); returns the names created."""
    from app.service.tables import changelog_topics  # noqa: PLC0415 - tables imports Faust; only a worker needs it
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker), request_timeout_ms=10_000)
    quiet = logging.getLogger("aiokafka")
    level, quiet.level = quiet.level, logging.CRITICAL  # our one-line error says it all
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (KafkaConnectionError, asyncio.TimeoutError, OSError) as e:
        await admin.close()
        raise BrokerUnavailable(
            f"no Kafka broker reachable at {settings.broker} ({type(e).__name__}): start one with "
            f"'scripts/kafka start' or set LABELSTREAM_BROKER"
        ) from None
    finally:
        quiet.setLevel(level)
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                settings.topic(spec.name),
                settings.topic_partitions or spec.partitions,
                settings.replication_factor,
                topic_configs={"cleanup.policy": spec.cleanup_policy, **spec.config, **settings.topic_config()},
            )
            for spec in CATALOG.values()
            if settings.topic(spec.name) not in existing
        ] + [NewTopic(name, partitions, settings.replication_factor, topic_configs=configs)
             for name, partitions, configs in changelog_topics(settings) if name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another worker won the race
            except KafkaError as e:
                raise BrokerUnavailable(f"creating topics on {settings.broker} failed: {e}") from None
            await _wait_for_leaders(admin, [t.name for t in new], timeout)
        return [t.name for t in new]
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    """New partitions have no leader for a moment; producing then only logs retries."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        topics = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
               for t in topics):
            return
        await asyncio.sleep(0.1)


#: s between the log lines of a :func:`group_consumed` still waiting.
REPORT_EVERY = 10.0


async def group_consumed(boot: str, group: str, topic: str, poll: float = 0.2,
                         local: Callable[[list[TopicPartition]], str] | None = None) -> None:
    """Return once consumer group ``group`` has committed, on every partition of ``topic``, the
    end offset the partition had when this was called: the group has processed that backlog.

    Why: the training replica reads the training *table's changelog*, which the group's training
    agent writes from the training *topic*. A worker that declared itself caught up with the
    changelog while the agent was still working through the topic's backlog was ready -- and
    classified -- with part of the model (13 of 61 records applied in one test run under load).

    ``local(partitions)``: what this worker itself knows of the partitions still waited for, added to
    the line logged every :data:`REPORT_EVERY` s (a worker not ready for long says why).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=boot, group_id=None, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=boot)
    await consumer.start()
    await admin.start()
    try:
        while not (parts := consumer.partitions_for_topic(topic)):
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            await asyncio.sleep(poll)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        end = await consumer.end_offsets(tps)
        left = {tp for tp in tps if end[tp] > 0}
        loop = asyncio.get_running_loop()
        report = loop.time() + REPORT_EVERY
        committed: dict = {}
        while left:
            try:
                committed = await admin.list_consumer_group_offsets(group, partitions=list(left))
                left = {tp for tp in left if not (committed.get(tp) and committed[tp].offset >= end[tp])}
            except KafkaError as e:  # a broker hiccup or the group not there yet: ask again
                log.debug("committed offsets of %s not read: %r", group, e)
            if left and loop.time() >= report:  # a worker not ready for long says what it waits for
                report = loop.time() + REPORT_EVERY
                log.info("waiting for group %s to commit %s: %s%s", group, topic, ", ".join(
                    f"[{tp.partition}] {committed[tp].offset if committed.get(tp) else None}/{end[tp]}"
                    for tp in sorted(left)), f"; here: {local(sorted(left))}" if local is not None else "")
            if left:
                await asyncio.sleep(poll)
    finally:
        await admin.close()
        await consumer.stop()
