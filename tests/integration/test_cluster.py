"""Kafka as a real cluster: one of three brokers dies mid-stream and no event is lost.

This test starts its own 3-node KRaft cluster (app/localcluster.py, the code behind
``scripts/kafka start --brokers 3``) on ports from LABELSTREAM_TEST_CLUSTER_PORT (19600..19605
by default, away from the suite's 19092 broker) and removes it afterwards, also on failure.
Topics are created with replication factor 3 and min.insync.replicas 2, as the settings say.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from app.devtools import localcluster, localkafka
from app.devtools import cluster_scenario

pytestmark = pytest.mark.kafka

PORT = int(os.environ.get("LABELSTREAM_TEST_CLUSTER_PORT", "19600"))
LIMIT = 180  # a hang becomes a failure, not a stuck suite


@pytest.fixture(scope="module")
def cluster():
    c = localcluster.for_tests(PORT)
    busy = [p for b in c.nodes for p in (b.port, b.controller_port) if localkafka.port_open(p) and not b.pid()]
    if busy:
        pytest.fail(f"ports {busy} are taken: set LABELSTREAM_TEST_CLUSTER_PORT to a free range of 6 ports")
    localcluster.reset(c, kill=True)  # leftovers of an interrupted run
    t0 = time.monotonic()
    try:
        localcluster.start(c)
        print(f"3-node cluster started in {time.monotonic() - t0:.1f} s")
        yield c
    finally:
        print(localcluster.reset(c, kill=True))


async def test_a_broker_killed_mid_stream_loses_nothing(cluster, tmp_path):
    async with cluster_scenario.deployment(cluster, tmp_path) as stack:
        stats = await asyncio.wait_for(cluster_scenario.node_loss(stack, cluster, n=6_000), LIMIT)
        topics = await cluster_scenario.replicas(stack.settings)
    print(stats)
    assert stats["kill_point_reached"] and stats["killed_at_results"] < stats["events_in"] / 2, \
        f"the kill must happen mid-stream, before the second half is produced: {stats}"
    assert stats["nodes_up"] == 2, stats
    assert stats["complete"], f"not every event was answered in time: {stats}"
    assert stats["lost"] == 0, f"{stats['lost']} events lost, e.g. {stats['missing_sample']}: {stats}"
    assert stats["results"] == stats["events_in"] and stats["dead_letters"] == 0, stats
    assert stats["wrong_labels"] == 0, f"results with another label than the sample's: {stats}"
    assert stats["mismatched"] == 0, f"redelivered results differ from the first delivery: {stats}"
    assert stats["settled"], f"the group did not commit every input, or the output could not be drained: {stats}"
    assert stats["worker_alive"]
    # every topic of the deployment is replicated: catalog topics, table changelogs, the assignor's
    assert len(topics) >= 8 and set(topics.values()) == {3}, topics
