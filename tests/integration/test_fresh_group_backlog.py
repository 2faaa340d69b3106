"""A new consumer group started on a backlog answers every record (issue 9: the stall).

The first worker of a group has no committed offsets. faust-streaming fetches the first
records of each partition while table recovery finishes, then clears its stream queues when
the worker becomes ready; the seek back to the committed offsets that puts cleared records
back cannot help a partition with no committed offset, and Faust's commit logic then moved
the committed offset past records nobody processed (``app/service/faustfix.py``, fix 4).
``bench/e2e.py`` showed it as a worker that "stalled" at 5,903-9,824 of 10,000 events with
every input offset committed. Here: a backlog produced before the group's first worker
starts, and every record must leave as exactly one output, with the commits at the end.
"""

from __future__ import annotations

import asyncio

import pytest

from app.devtools import samples
from app.devtools.scenarios import Ledger, end_offsets, settle, until

pytestmark = pytest.mark.kafka

N = 4_000  # a backlog larger than a batch on each of 8 partitions


@pytest.mark.parametrize("stack", [8], indirect=True)
async def test_first_worker_of_a_group_answers_a_whole_backlog(stack):
    settings = stack.settings
    training = samples.training_records()
    # Training goes in through a first worker that is stopped before the backlog is produced
    # (as bench/e2e.py does): the group then has committed training offsets, none for objects.
    warm = stack.worker("warm")
    await stack.wait_ready(warm)
    await stack.produce("training", training)
    await stack.wait_ready(warm, min_training=len(training))
    await asyncio.to_thread(warm.stop)
    objs = samples.objects(N, run="backlog")
    await stack.produce("objects", [(oid, obj) for oid, obj, _ in objs])
    ids = [oid for oid, _, _ in objs]

    async with Ledger(settings) as ledger:
        w = stack.worker("w")
        await stack.wait_ready(w, min_training=len(training))
        await until(lambda: len(ledger.answered(ids)) == N, timeout=120)
        missing = sorted(set(ids) - ledger.answered(ids))
        settled = await settle(stack, ledger, timeout=60)
        ends = await end_offsets(settings, [settings.topic("objects")])
        print(f"answered {N - len(missing)} of {N}; dead letters {len(ledger.dead)}; "
              f"duplicates {ledger.duplicates}; input end offsets {sum(ends.values())}")
        assert w.alive
        assert not missing, f"{len(missing)} of {N} objects never answered, e.g. {missing[:5]}"
        assert settled, "the group did not commit every input offset"
        assert not ledger.dead, f"unexpected dead letters: {list(ledger.dead.values())[:3]}"
