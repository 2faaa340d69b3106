"""``app/service/produce.py`` appends records to aiokafka's accumulator without a future per record:
each record's batch future and place must give what ``add_message``'s own futures gave."""

from __future__ import annotations

import asyncio

from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.structs import TopicPartition

from app.service.produce import Sent, append

TP = TopicPartition("t", 0)


async def _acc(batch_size: int = 16 * 1024) -> MessageAccumulator:
    return MessageAccumulator(None, batch_size, 0, 30, linger_ms=0)


async def test_records_go_into_the_batch_and_take_their_place_in_it():
    acc = await _acc()
    mine = [await append(acc, TP, b"k%d" % i, b"v" * 10, [], 1.0) for i in range(3)]
    theirs = await acc.add_message(TP, b"x", b"y", 1.0)  # another sender's record (Faust's own send)
    also = await append(acc, TP, b"k3", b"v", [], 1.0)
    (batch,) = acc._batches[TP]
    assert {f for f, _ in mine} == {batch.future} and also[0] is batch.future
    assert [p for _, p in mine] == [0, 1, 2] and also[1] == 4, "places in the batch, with the other record at 3"
    assert batch.record_count == 5
    batch.done(base_offset=100)
    assert Sent.last_offset(batch.future, also[1]) == 104 and (await theirs).offset == 103


async def test_a_failed_batch_fails_every_record_of_it():
    acc = await _acc()
    fut, _ = await append(acc, TP, b"k", b"v", [], 1.0)
    (batch,) = acc._batches[TP]
    batch.failure(RuntimeError("refused"))
    assert isinstance(fut.exception(), RuntimeError)


async def test_a_full_batch_waits_for_the_sender_and_the_next_record_opens_another():
    acc = await _acc(batch_size=200)
    first, _ = await append(acc, TP, b"k", b"v" * 150, [], 1.0)
    waiting = asyncio.ensure_future(append(acc, TP, b"k", b"v" * 150, [], 1.0))
    await asyncio.sleep(0.01)
    assert not waiting.done() and acc._waiter_future.done(), "the sender was woken for the full batch"
    drained = acc._pop_batch(TP)  # what the sender does when it takes the batch
    second, place = await asyncio.wait_for(waiting, 1.0)
    assert drained.future is first and second is not first and place == 0
