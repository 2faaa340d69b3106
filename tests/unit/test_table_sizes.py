"""SizeCounter: table sizes for /health/ready counted in a thread, exact when cheap, bounded when not."""

from __future__ import annotations

import asyncio
import threading

from app.service.table_sizes import SizeCounter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counter_with(took: float, clock: Clock) -> tuple[SizeCounter, list[str]]:
    """A counter whose every count "takes" ``took`` seconds of the fake clock, and the threads it ran on
    (each count's preparation is recorded as ``prepared on <thread>``)."""
    threads: list[str] = []

    def prepare():
        threads.append(f"prepared on {threading.current_thread().name}")
        return count

    def count() -> dict[str, int]:
        threads.append(threading.current_thread().name)
        clock.now += took
        return {"stored-objects": sum(not t.startswith("prepared") for t in threads)}
    return SizeCounter(prepare, clock), threads


async def test_counts_off_the_event_loop_and_again_for_each_request_when_cheap():
    clock = Clock()
    c, threads = counter_with(0.001, clock)
    first, second = await c.sizes(), await c.sizes()
    assert (first.sizes, second.sizes) == ({"stored-objects": 1}, {"stored-objects": 2})
    loop_thread = threading.current_thread().name
    # prepared on the loop's thread (Faust's objects are bound to it), counted in another
    assert threads[0] == f"prepared on {loop_thread}" and threads[1] != loop_thread, threads
    assert second.age == 0.0


async def test_an_expensive_count_serves_later_requests_for_ten_times_its_duration():
    clock = Clock()
    c, threads = counter_with(1.0, clock)  # a RocksDB table of ~1M keys
    first = await c.sizes()
    clock.now += 5.0  # 6 s after it started: within 10 x 1 s
    again = await c.sizes()
    assert again.sizes == first.sizes and len(threads) == 2  # one preparation, one count
    assert again.age == 6.0  # the answer says how old the count is
    clock.now += 4.5  # 10.5 s after: counted again
    assert (await c.sizes()).sizes == {"stored-objects": 2}


async def test_fresh_always_waits_for_a_count_started_after_the_request():
    clock = Clock()
    c, threads = counter_with(1.0, clock)
    await c.sizes()
    clock.now += 2.0
    got = await c.sizes(fresh=True)
    assert got.sizes == {"stored-objects": 2} and got.age == 0.0


async def test_requests_arriving_together_share_one_count():
    gate = threading.Event()
    calls: list[int] = []

    def count() -> dict[str, int]:
        gate.wait(5)
        calls.append(1)
        return {"t": len(calls)}
    c = SizeCounter(lambda: count)
    requests = [asyncio.ensure_future(c.sizes()) for _ in range(5)]
    await asyncio.sleep(0.05)
    gate.set()
    got = await asyncio.gather(*requests)
    # The first request starts a count; the others arrived after it started, so they wait for it and
    # then for one more count (a count started before a request may miss a write made before it).
    assert len(calls) <= 2 and all(g.sizes["t"] >= 1 for g in got)
    assert got[0].sizes == {"t": 1}


async def test_a_request_given_up_does_not_cancel_the_count_others_wait_for():
    gate = threading.Event()

    def count() -> dict[str, int]:
        gate.wait(5)
        return {"t": 7}
    c = SizeCounter(lambda: count)
    dropped = asyncio.ensure_future(c.sizes())
    kept = asyncio.ensure_future(c.sizes())
    await asyncio.sleep(0.05)
    dropped.cancel()
    gate.set()
    assert (await asyncio.wait_for(kept, 5)).sizes == {"t": 7}


async def test_a_failed_count_reaches_the_request_and_the_next_request_counts_again():
    outcomes = iter([RuntimeError("dictionary changed size during iteration"), {"t": 3}])

    def count() -> dict[str, int]:
        o = next(outcomes)
        if isinstance(o, Exception):
            raise o
        return o
    c = SizeCounter(lambda: count)
    try:
        await c.sizes()
        raise AssertionError("the failure must reach the caller")
    except RuntimeError:
        pass
    assert (await c.sizes()).sizes == {"t": 3}
