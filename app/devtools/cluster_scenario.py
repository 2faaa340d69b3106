"""A broker of a 3-node cluster dies mid-stream: the shared logic of test_cluster.py and bench.

The deployment uses replicated topics (replication factor 3, min.insync.replicas 2, set the
way an operator would: LABELSTREAM_REPLICATION_FACTOR / LABELSTREAM_MIN_INSYNC_REPLICAS), and
the node killed is the worker group's coordinator, the worst single node to lose: it leads
a third of the partitions and holds the group's offsets. Waits poll conditions
(``scenarios.until``); nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from app.devtools import localcluster, samples
from app.service.admin import bootstrap, ensure_topics
from app.settings import Settings
from app.devtools import scenarios
from app.devtools.stack import Stack, deployment as stack_deployment


def deployment(cluster: localcluster.Cluster, root: Path, partitions: int = 8) -> AsyncContextManager[Stack]:
    """An isolated app id and topic prefix on ``cluster``, its topics replicated; workers stopped on exit."""
    return stack_deployment(cluster.url, root, partitions, name="ls-clu", **cluster.env())


async def _admin(settings: Settings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker), request_timeout_ms=10_000)
    await admin.start()
    return admin


async def replicas(settings: Settings) -> dict[str, int]:
    """Fewest replicas of any partition, per topic of this deployment (catalog and changelogs)."""
    admin = await _admin(settings)
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix) or t.startswith(settings.app_id)]
        return {t["topic"]: min(len(p["replicas"]) for p in t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


async def coordinator(settings: Settings) -> int:
    admin = await _admin(settings)
    try:
        return await admin.find_coordinator(settings.app_id)
    finally:
        await admin.close()


def wrong_labels(ledger: scenarios.Ledger, expected: dict[str, str]) -> list[str]:
    """Item ids whose (first) result does not carry the label the sample was drawn around."""
    wrong = []
    for raw in ledger.results.values():
        value = orjson.loads(raw)
        want = expected.get(value["item_id"])
        if want is not None and value["labels"].get("topic") != want:
            wrong.append(value["item_id"])
    return wrong


async def node_loss(stack, cluster: localcluster.Cluster, n: int = 10_000, kill_after: float = 0.25,
                    timeout: float = 120) -> dict:
    """Half the events, SIGKILL the group coordinator's node once ``kill_after`` of all have
    results, then the other half with that node still down. The worker carries on by itself."""
    t0 = time.monotonic()
    w, _ = await scenarios.trained_worker(stack)
    worker_ready_s = round(time.monotonic() - t0, 1)
    objs = samples.objects(n, run=f"node-{uuid.uuid4().hex[:6]}")
    ids = [k for k, _, _ in objs]
    expected = {k: label for k, _, label in objs}
    first, second = [(k, v) for k, v, _ in objs[: n // 2]], [(k, v) for k, v, _ in objs[n // 2:]]
    victim = await coordinator(stack.settings)
    async with scenarios.Ledger(stack.settings) as ledger:
        producing = asyncio.create_task(scenarios.produce_chunks(stack, "objects", first, chunk=1_000))
        reached = await scenarios.until(lambda: len(ledger.items) >= n * kill_after, timeout)
        before, t_kill = len(ledger.items), time.time()
        localcluster.stop_node(cluster, victim, kill=True)
        first_done_before_kill = producing.done()
        await producing
        await scenarios.produce_chunks(stack, "objects", second, chunk=1_000)
        produced_s = round(time.time() - t_kill, 1)
        complete = await scenarios.until(lambda: len(ledger.answered(ids)) == len(ids), timeout)
        answered_s = round(time.time() - t_kill, 1)
        settled = await scenarios.settle(stack, ledger)
        after_kill_s = round(time.time() - t_kill, 1)
        return scenarios._stats(  # noqa: SLF001
            "one of 3 brokers (the group coordinator) SIGKILLed mid-stream", ledger, ids, t_fault=t_kill,
            killed_node=victim, killed_at_results=before, kill_point_reached=reached,
            first_half_done_before_kill=first_done_before_kill, complete=complete, settled=settled,
            wrong_labels=len(wrong_labels(ledger, expected)), worker_alive=w.alive,
            nodes_up=sum(1 for b in cluster.nodes if b.pid()), worker_ready_s=worker_ready_s,
            kill_to_produced_s=produced_s, kill_to_answered_s=answered_s, kill_to_settled_s=after_kill_s)
