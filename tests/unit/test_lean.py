"""app.service.lean: the lanes' queueing, and bulk acks that leave Faust's commit bookkeeping exactly as
Faust's own per-message ``Consumer.ack`` does (tests/integration/test_faults.py and friends run it for real)."""

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP

from app.service import lean

T = TP("objects", 3)


def fake_consumer(committed=None):
    """The attributes ``Consumer.ack`` uses, nothing else."""
    c = SimpleNamespace(_committed_offset=defaultdict(lambda: None), _acked_index=defaultdict(set),
                        _acked=defaultdict(list), _n_acked=0, _waiting_for_ack=None,
                        _unacked_messages=set(),
                        app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True)))
    c._committed_offset[T] = committed
    return c


class Message(SimpleNamespace):
    __hash__ = object.__hash__  # Consumer.ack keeps messages in a (weak) set


def message(offset):
    return Message(acked=False, tp=T, offset=offset, topic=T.topic)


@pytest.mark.parametrize("committed", [None, 0, 5])
def test_bulk_ack_is_fausts_ack_for_each_offset(committed):
    offsets = [7, 3, 4, 5, 5, 9, 8, 6, 1]  # out of order, a duplicate, some below the committed offset
    faust, ours = fake_consumer(committed), fake_consumer(committed)
    for o in offsets:
        Consumer.ack(faust, message(o))
    lean.ack(ours, T, offsets)
    assert ours._acked[T] == faust._acked[T]
    assert ours._acked_index[T] == faust._acked_index[T]
    assert ours._n_acked == faust._n_acked


def test_a_lane_hands_out_what_is_queued_up_to_n_and_makes_the_fetcher_wait_when_full():
    async def scenario():
        lane = lean.Lane(limit=4)
        await lane.put(lean.Chunk(1, "a", [1, 2, 3]))
        await lane.put(lean.Chunk(1, "b", [4, 5]))  # over the limit: accepted, then the lane is full
        blocked = asyncio.ensure_future(lane.put(lean.Chunk(1, "c", [6])))
        await asyncio.sleep(0.01)
        assert not blocked.done() and lane.size == 5
        first = await lane.take(2)
        assert [(c.tp, c.records) for c in first] == [("a", [1, 2])]
        await asyncio.wait_for(blocked, 1)  # room again
        rest = await lane.take(10)
        assert [(c.tp, c.records) for c in rest] == [("a", [3]), ("b", [4, 5]), ("c", [6])]
        waiting = asyncio.ensure_future(lane.take(10))  # nothing queued: waits
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await lane.put(lean.Chunk(1, "d", [7]))
        assert [c.records for c in await asyncio.wait_for(waiting, 1)] == [[7]]

    asyncio.run(scenario())


def test_clearing_a_lane_drops_what_was_queued_and_frees_the_fetcher():
    async def scenario():
        lane = lean.Lane(limit=2)
        await lane.put(lean.Chunk(1, "a", [1, 2]))
        blocked = asyncio.ensure_future(lane.put(lean.Chunk(1, "a", [3])))
        await asyncio.sleep(0.01)
        lane.clear()  # what FlowControlEvent.clear does on a revocation or after recovery
        await asyncio.wait_for(blocked, 1)
        assert [c.records for c in await lane.take(10)] == [[3]]

    asyncio.run(scenario())


def test_a_failed_batch_drops_only_its_partitions_queued_chunks():
    # Lanes._refetch seeks the failed batch's partitions back; any other partition's chunks were
    # fetched past and would never be fetched again, so they must stay queued.
    async def scenario():
        lane = lean.Lane(limit=4)
        for c in (lean.Chunk(1, "a", [1, 2]), lean.Chunk(1, "b", [3]), lean.Chunk(1, "a", [4])):
            await lane.put(c)
        blocked = asyncio.ensure_future(lane.put(lean.Chunk(1, "c", [5, 6])))
        lane.drop({"a"})
        await asyncio.wait_for(blocked, 1)  # room again: the fetcher goes on
        assert lane.size == 3 and [(c.tp, c.records) for c in await lane.take(10)] == [("b", [3]), ("c", [5, 6])]

    asyncio.run(scenario())


def test_records_keep_the_fetched_timestamp_in_ms():
    r = SimpleNamespace(key=b"k", value=b"{}", topic="t", partition=2, offset=9, timestamp=1_700_000_000_123)
    rec = lean.record(r)
    assert (rec.key, rec.source.partition, rec.source.offset, rec.source.timestamp) == (b"k", 2, 9, 1_700_000_000_123)
