"""A worker started where the group never committed the training topic gets ready and answers.

Its last worker applied the training records (the table's changelog holds them) and died before
committing them (in ``test_delivery_failure``, refused results stop every commit). The next worker's
readiness waits for the group to commit that training backlog (``group_consumed``), so it must
fetch and process it again from the start of partitions the group never committed, after recovering
the tables. It never got ready when a fetch handed out those records while their partitions were
paused for recovery (``app/service/activefetch.py``): the stall of ``test_delivery_failure`` in CI
(2026-12-04); 1 in 8 runs of this test failed so before the fix, 0 in 10 after.
"""

from __future__ import annotations

import pytest

from app.devtools import samples
from app.devtools.scenarios import Ledger, committed_offsets, settle, until

pytestmark = pytest.mark.kafka

N = 20


@pytest.mark.parametrize("stack", [2], indirect=True)
async def test_worker_gets_ready_on_a_training_backlog_the_group_never_committed(stack):
    settings = stack.settings
    training = samples.training_records()
    w = stack.worker("w", LABELSTREAM_COMMIT_INTERVAL="3600")  # applies the training, commits none of it
    await stack.wait_ready(w)
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))  # in the table's changelog
    w.kill()
    committed = {tp: off for tp, off in (await committed_offsets(settings)).items()
                 if tp.topic == settings.topic("training") and off > 0}
    assert not committed, f"the scenario needs a training topic the group never committed: {committed}"

    objs = samples.objects(N, run="backlog")
    ids = [oid for oid, _, _ in objs]
    async with Ledger(settings) as ledger:
        await stack.produce("objects", [(oid, obj) for oid, obj, _ in objs])
        w2 = stack.worker("w2")
        await stack.wait_ready(w2, min_training=len(training))
        assert await until(lambda: ledger.answered(ids) == set(ids), timeout=90), \
            f"{len(set(ids) - ledger.answered(ids))} of {N} never answered by the restarted worker"
        assert await settle(stack, ledger, timeout=60), "the group did not commit every input record"
        assert not ledger.dead
