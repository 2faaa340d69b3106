"""The Faust app and the catalog's topics: the one place that knows the Kafka configuration."""

from __future__ import annotations

import logging
from typing import Any

import faust
from mode.types.signals import BaseSignalT

from app.service import faustfix, fetchpace
from app.service.httpguard import web_options
from app.service.store import table_store
from app.settings import Settings
from app.topics import CATALOG

#: Largest message the producer sends and the consumer fetches (the results and media topics allow it).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
PRODUCER_BATCH_BYTES = 512 * 1024  # per partition; a larger record still goes, in a batch of its own
PRODUCER_LINGER = 0.005  # s: at most this much added latency, for requests that carry whole batches


def make_app(settings: Settings) -> faust.App:
    faustfix.apply()  # faust-streaming 0.15.3 loses records when a worker takes over partitions
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        # rocksdb: files keys by partition, one memory budget for all its databases (store.py)
        store=table_store(settings.store, settings.rocksdb_block_cache_mb, settings.rocksdb_write_buffers_mb)
        or settings.store,
        datadir=str(settings.data_dir),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.topic_partitions or CATALOG["objects"].partitions,
        topic_replication_factor=settings.replication_factor,  # also table changelogs (faust Topic.declare)
        web_enabled=settings.web_enabled,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        canonical_url=settings.web_canonical_url or None,  # None: http://<web_host>:<web_port>
        web_tables_enabled=False,  # Faust's /table/ endpoints would dump every table to anyone
        web_graph_enabled=False,
        web_stats_enabled=False,  # sensor counters and partition assignment at / (the key guards the rest)
        web_router_enabled=settings.web_router_enabled,  # worker URLs: the cluster's layout
        # API keys, body limit, JSON bodies for every view (app/service/httpguard.py)
        web_application_options=web_options(settings.api_key_set(), settings.max_request_bytes),
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        producer_acks=-1,
        # Results are ~1 KB: Faust's 16 KB batches and 0 ms linger made one small produce request
        # after another (aiokafka encodes each in Python, on the event loop). Bigger batches and a
        # short linger send the same records in far fewer requests (issue 10's profile).
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        producer_linger=PRODUCER_LINGER,
        broker_commit_interval=settings.commit_interval,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
    )
    fetchpace.apply(app, settings.fetch_batch_wait_ms, settings.fetch_sessions)  # fuller fetches under load, long polls
    # when idle, and each fetch names only the partitions that changed
    app.on_after_configured.connect(_quiet)
    return app


def _quiet(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:  # pragma: no cover - logging only
    logging.getLogger("faust.transport.drivers.aiokafka").setLevel(logging.WARNING)


def make_topics(app: faust.App, settings: Settings) -> dict[str, faust.TopicT]:
    """Every catalog topic; ``internal=True`` lets Faust create it with the catalog's settings."""
    topics = {}
    for name, spec in CATALOG.items():
        config = {"cleanup.policy": spec.cleanup_policy, **spec.config, **settings.topic_config()}
        topics[name] = app.topic(settings.topic(name), partitions=settings.topic_partitions or spec.partitions,
                                 key_serializer="raw", value_serializer="raw", internal=True, config=config)
    return topics
