"""The Faust app: the one place that knows the Kafka configuration.

Run a worker with ``labelstream worker`` or plainly ``faust -A app.main worker -l info``.
Where an event enters: ``app/agents/``; where it is classified: ``app/engine/`` calling the
pure ``app/core/``; where it leaves: the ``results``, ``moderation`` and ``deadletter`` topics.
"""

from __future__ import annotations

import faust

from app import faustfix
from app.settings import get_settings
from app.topics import CATALOG, TopicSpec

faustfix.apply()  # faust-streaming 0.15.3 loses records when a worker takes over partitions
settings = get_settings()
MAX_BYTES = 16 * 1024 * 1024

app = faust.App(
    settings.app_id,
    broker=settings.broker,
    store=settings.store,
    datadir=str(settings.data_dir),
    processing_guarantee=settings.processing_guarantee,
    topic_partitions=settings.topic_partitions or CATALOG["objects"].partitions,
    topic_replication_factor=settings.replication_factor,  # also table changelogs (faust Topic.declare)
    web_enabled=settings.web_enabled,
    web_host=settings.web_host,
    web_port=settings.web_port,
    web_bind=settings.web_host,
    web_tables_enabled=False,  # Faust's /table/ endpoints would dump every table to anyone
    web_graph_enabled=False,
    producer_max_request_size=MAX_BYTES,
    consumer_max_fetch_size=MAX_BYTES,
    producer_acks=-1,
    broker_commit_interval=1.0,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=settings.heartbeat_interval,
    table_standby_replicas=0,
    key_serializer="raw",
    value_serializer="raw",
)


def kafka_topic(name: str) -> faust.TopicT:
    """A catalog topic; ``internal=True`` lets Faust create it with the catalog's settings."""
    spec: TopicSpec = CATALOG[name]
    config = {"cleanup.policy": spec.cleanup_policy, **spec.config, **settings.topic_config()}
    return app.topic(
        settings.topic(name),
        partitions=settings.topic_partitions or spec.partitions,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
        config=config,
    )


topics = {name: kafka_topic(name) for name in CATALOG}


@app.on_after_configured.connect
def _quiet(app: faust.App, **kwargs) -> None:  # pragma: no cover - logging only
    import logging

    logging.getLogger("faust.transport.drivers.aiokafka").setLevel(logging.WARNING)


# Agents, tables and web views register themselves on import.
from app import tables  # noqa: E402,F401
from app.agents import objects as _objects, training as _training  # noqa: E402,F401
from app import metrics, web  # noqa: E402,F401
from app.agents import media as _media  # noqa: E402,F401
