"""Faults against the real broker: nothing is lost (every event has a result or a dead letter).

The scenario logic lives in ``scenarios.py`` (shared with ``bench/reliability.py``); these
tests assert on the stats it returns. Duplicates are allowed (at-least-once) but must be
identical to the first record (idempotent results); lost must be 0.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from app.devtools import localkafka
from app.settings import Settings
from app.devtools import scenarios

pytestmark = pytest.mark.kafka

# Hard ceilings per test: a hang becomes a failure, not a stuck suite.
LIMIT = 240


def assert_nothing_lost(stats: dict) -> None:
    assert stats["complete"], f"not every event was answered in time: {stats}"
    assert stats["lost"] == 0, f"{stats['lost']} events lost, e.g. {stats['missing_sample']}: {stats}"
    assert stats["mismatched"] == 0, f"redelivered results differ from the first delivery: {stats}"
    assert stats["settled"], f"the group did not commit every input, or the output could not be drained: {stats}"


@pytest.mark.parametrize("stack", [8], indirect=True)
async def test_kill9_mid_stream_then_restart_loses_nothing(stack):
    stats = await asyncio.wait_for(scenarios.kill_and_restart(stack, n=50_000), LIMIT)
    print(stats)
    assert stats["kill_point_reached"], f"the worker never got to the kill point: {stats}"
    assert stats["killed_at_results"] < stats["events_in"], "the kill must happen mid-stream"
    assert_nothing_lost(stats)
    assert stats["results"] == stats["events_in"] and stats["dead_letters"] == 0
    assert stats["worker_alive"]


@pytest.mark.parametrize("stack", [8], indirect=True)
async def test_survivor_takes_over_partitions_and_recovers_tables(stack):
    stats = await asyncio.wait_for(scenarios.takeover(stack, n=20_000), LIMIT)
    print(stats)
    assert stats["kill_point_reached"], f"the workers never got to the kill point: {stats}"
    assert_nothing_lost(stats)
    assert stats["results"] == stats["events_in"] and stats["dead_letters"] == 0
    assert stats["survivor_alive"] and stats["survivor_ready"], stats
    assert stats["training_table"] == stats["training_expected"], f"training table not recovered: {stats}"
    assert stats["objects_table"] == stats["objects_expected"], f"stored-objects table not recovered: {stats}"


@pytest.mark.parametrize("stack", [8], indirect=True)
async def test_broker_restart_mid_stream_worker_reconnects(stack):
    if scenarios.owned_broker(stack.settings) is None:
        pytest.skip("needs a local broker this run may restart: LABELSTREAM_KAFKA_PORT naming the port of "
                    "LABELSTREAM_BROKER, started by scripts/kafka (as 'make test' does)")
    broker = scenarios.owned_broker(stack.settings)
    try:
        stats = await asyncio.wait_for(scenarios.broker_restart(stack, n=30_000), LIMIT)
    finally:  # the rest of the suite needs the broker, whatever happened above
        if not broker.reachable() or not broker.pid():
            await asyncio.to_thread(localkafka.start, broker)
    print(stats)
    assert stats["stop_point_reached"], f"the worker never got to the stop point: {stats}"
    assert_nothing_lost(stats)
    assert stats["results"] == stats["events_in"] and stats["dead_letters"] == 0
    assert stats["worker_alive"]


async def test_malformed_burst_every_bad_record_dead_lettered_with_its_reason(stack):
    stats = await asyncio.wait_for(scenarios.malformed_burst(stack), LIMIT)
    print(stats)
    assert_nothing_lost(stats)
    assert stats["good_classified"] == stats["good_in"], stats
    assert stats["good_dead_lettered"] == 0, stats
    assert stats["wrong_reasons"] == [], stats["wrong_reasons"]
    assert stats["original_bytes_mismatch"] == [], "dead letters must carry the original bytes"
    assert stats["dead_letters"] == stats["bad_in"]
    assert stats["worker_alive"], "a bad record must never stop the worker"


async def test_poison_records_each_leave_one_output_and_no_agent_restarts(stack):
    stats = await asyncio.wait_for(scenarios.poison(stack), LIMIT)
    print({k: v for k, v in stats.items() if k != "missing_sample"})
    assert_nothing_lost(stats)
    assert stats["good_classified"] == stats["good_in"], stats
    assert stats["wrong"] == [], stats["wrong"]
    assert stats["deep_filter_reason"] == ["filter_too_complex"]
    assert stats["agent_restarts"] == 0 and stats["worker_alive"]


def test_exactly_once_is_refused_unless_forced():
    """exactly_once fails the scenarios above with faust-streaming 0.15.3 (bench/RESULTS.md, Reliability)."""
    with pytest.raises(ValidationError, match="exactly_once"):
        Settings(processing_guarantee="exactly_once")
    assert Settings(processing_guarantee="exactly_once", allow_unsafe_exactly_once=True).processing_guarantee == "exactly_once"
    assert Settings().processing_guarantee == "at_least_once"
