"""An output the broker refuses stops the commits; nothing is lost (app/service/sink.py).

The results topic is reconfigured on the real broker to refuse records over 100 bytes (a
non-retriable ``MessageSizeTooLargeError`` for every result). The worker must not commit the
input offsets of records whose results were never delivered: it stops, and a worker started
after the topic is fixed answers every one of them.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.devtools import samples
from app.devtools.scenarios import Ledger, committed_offsets, settle, trained_worker, until
from app.service.admin import bootstrap
from app.topics import BIG

pytestmark = pytest.mark.kafka

N = 20


async def set_max_message_bytes(settings, topic: str, value: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings.broker))
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(topic),
                                                  {"max.message.bytes": str(value)})])
    finally:
        await admin.close()


@pytest.mark.parametrize("stack", [2], indirect=True)
async def test_undeliverable_results_are_not_committed_and_come_after_a_restart(stack):
    settings = stack.settings
    w, _ = await trained_worker(stack)
    await set_max_message_bytes(settings, "results", 100)
    objs = samples.objects(N, run="refused")
    ids = [oid for oid, _, _ in objs]

    async with Ledger(settings) as ledger:
        await stack.produce("objects", [(oid, obj) for oid, obj, _ in objs])
        stopped = await until(lambda: not w.alive, timeout=90)
        log = w.log_path.read_text(errors="replace")
        committed = {tp: off for tp, off in (await committed_offsets(settings)).items()
                     if tp.topic == settings.topic("objects") and off > 0}
        assert stopped, "the worker went on after its results could not be delivered"
        assert "could not be delivered" in log
        assert "Crashed reason" not in log, "the worker stops the normal way: no agent or service crashes"
        assert w.proc is not None and w.proc.returncode == 3, "a stop for undeliverable outputs exits non-zero"
        assert not committed, f"offsets committed for undelivered results: {committed}"
        assert not ledger.answered(ids), "the broker refused every result"

        await set_max_message_bytes(settings, "results", BIG)
        w2 = stack.worker("w2")
        await stack.wait_ready(w2)
        assert await until(lambda: ledger.answered(ids) == set(ids), timeout=90), \
            f"{len(set(ids) - ledger.answered(ids))} of {N} never answered after the restart"
        assert await settle(stack, ledger, timeout=60)
        assert not ledger.dead
