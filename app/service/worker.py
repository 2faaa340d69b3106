"""The worker: one runtime built once, agents and views registered explicitly.

Run it with ``labelstream worker`` (or ``faust -A app.service.worker worker -l info``).
Where an event enters: ``app/service/agents/``; where it is classified: ``app/classify/``
calling the pure ``app/core/`` and ``app/index/``; where it leaves: ``app/service/sink.py``
(``results``, ``moderation`` and ``deadletter`` topics, table writes).
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

from app.classify.state import ModelState
from app.service import (console_views, feedback_agent, gcsettle, jobs, sweeper, web, web_hive, web_twelvelabs,
                         web_weaviate, web_yandex, worker_report)
from app.service import lean_report
from app.service.admin import bootstrap, group_consumed
from app.service.loopwatch import LoopWatch
from app.service.metrics import GC_FROZEN
from app.service.agents import media, objects, training
from app.service.faust_app import MAX_MESSAGE_BYTES, make_app, make_topics
from app.service.httpguard import check_web
from app.service.mediaapi import MediaApi
from app.service.replica import ChangelogReplica
from app.service.runtime import Runtime
from app.service.sink import Sink
from app.service.tables import TRAINING, Tables
from app.settings import Settings, get_settings


def _stop_worker() -> None:
    """An output could not be delivered: stop the way SIGTERM does (agents finish their batch, nothing
    more is committed: ``app/service/sink.py``); ``labelstream worker`` then exits non-zero."""
    os.kill(os.getpid(), signal.SIGTERM)


def build(settings: Settings) -> Runtime:
    check_web(settings)  # before anything starts: bad keys, or an open bind without keys
    app = make_app(settings)
    topics = make_topics(app, settings)
    tables = Tables(app, settings)
    state = ModelState(settings)
    state.loading()  # index builds wait for the replica's catch-up (settle=state.caught_up)
    boot = bootstrap(settings.broker)
    replica = ChangelogReplica(boot, tables.changelog(TRAINING), state.apply,  # ready = the topic's backlog applied
                               upstream=lambda: group_consumed(boot, settings.app_id, settings.topic("training"),
                                                              local=lambda tps: lean_report.describe(app, tps)),
                               settle=state.caught_up)  # then the hash banks' overlay goes into one index
    rt = Runtime(settings, app, topics, tables, state, replica, Sink(topics, tables, MAX_MESSAGE_BYTES, on_failure=_stop_worker),
                 ThreadPoolExecutor(settings.classify_threads, thread_name_prefix="classify"))
    for agent in (objects, training, media):
        agent.register(rt)
    feedback_agent.register(rt)  # verdicts -> accuracy, learned examples (app/classify/feedback.py)
    web.register(rt)
    web_weaviate.register(rt, jobs.register(rt, bootstrap(settings.broker)))  # jobs agent, runner, Weaviate REST
    media_api = MediaApi(rt)  # media on request: Twelve Labs classify v1.2 (and Hive tasks) over the media store
    web_twelvelabs.register(rt, media_api)
    web_hive.register(rt, media_api)
    web_yandex.register(rt)  # POST /vision/v1/batchAnalyze (raw images)
    reporter = worker_report.register(rt)  # this worker's counters on the 'workers' topic, every few seconds
    console_views.register(rt, reporter)  # the console at /console and its feed (app/service/console_feed.py)
    sweeper.register(rt)  # TTLs and retention of the tables (app/settings.py)

    watch = LoopWatch(settings.loop_stall_seconds)  # a stalled event loop is logged with every thread's stack

    @app.task
    async def loop_watch() -> None:
        await watch.run()

    @app.task
    async def freeze_loaded_state() -> None:
        # Everything alive once the replica has caught up lives as long as the worker: frozen, the
        # GC's full collections walk only what came after (app/service/gcsettle.py says why).
        await replica.caught_up.wait()
        GC_FROZEN.set(gcsettle.settle(settings.gc_young_threshold))

    @app.task
    async def training_replica() -> None:
        try:
            await tables.known_to_producer(app)  # before any table write: the agents wait for the replica
            await replica.run()
        finally:  # the worker stops: join index build threads
            state.close()

    return rt


runtime = build(get_settings())
app = runtime.app
