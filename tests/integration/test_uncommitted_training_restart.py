"""A worker started where the group never committed the training topic gets ready and answers.

Its last worker applied the training records (the table's changelog holds them) and stopped before
committing them: results refused by the broker stop every commit (``app/service/sink.py``). The
next worker's readiness waits for the group to commit that training backlog (``group_consumed``),
so it must fetch and process it again from the start of a partition the group never committed --
the state the intermittent stall of ``test_delivery_failure`` was found in (CI, 2026-12-04).
"""

from __future__ import annotations

import pytest

from app.devtools import samples
from app.devtools.scenarios import Ledger, committed_offsets, until
from app.topics import BIG
from tests.integration.test_delivery_failure import set_max_message_bytes

pytestmark = pytest.mark.kafka

N = 20


@pytest.mark.parametrize("stack", [2], indirect=True)
async def test_worker_gets_ready_on_a_training_backlog_the_group_never_committed(stack):
    settings = stack.settings
    training = samples.training_records()
    w = stack.worker("w")
    await stack.wait_ready(w)
    await set_max_message_bytes(settings, "results", 100)
    objs = samples.objects(N, run="refused")
    ids = [oid for oid, _, _ in objs]
    async with Ledger(settings) as ledger:
        await stack.produce("training", training)
        # The objects go in the moment the training is applied: their refused results stop the
        # worker before its first commit of the training partitions (every 1 s).
        assert await until(lambda: (w.health() or {}).get("training_records_applied", 0) >= len(training),
                           timeout=90, every=0.005)
        await stack.produce("objects", [(oid, obj) for oid, obj, _ in objs])
        assert await until(lambda: not w.alive, timeout=90), "the worker went on after its results were refused"
        committed = {tp: off for tp, off in (await committed_offsets(settings)).items()
                     if tp.topic == settings.topic("training") and off > 0}
        assert not committed, f"the scenario needs a training topic the group never committed: {committed}"

        await set_max_message_bytes(settings, "results", BIG)
        w2 = stack.worker("w2")
        await stack.wait_ready(w2, min_training=len(training))
        assert await until(lambda: ledger.answered(ids) == set(ids), timeout=90), \
            f"{len(set(ids) - ledger.answered(ids))} of {N} never answered after the restart"
        assert not ledger.dead
