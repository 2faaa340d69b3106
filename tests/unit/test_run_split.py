"""Runtime.run_split: where a chunk is classified (on the loop, or split over the pool) and in what order."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from app.service.pacing import Pacer
from app.service.runtime import Runtime
from app.settings import Settings


class _State:
    def snapshot(self) -> str:
        return "snap"


class _Out:
    def __init__(self, record: int, thread: str):
        self.record, self.thread = record, thread

    def encode(self) -> "_Out":
        return self


CALLS: list[int] = []


def _step(state, records, snap):
    assert snap == "snap"
    CALLS.append(len(records))
    return [_Out(r, threading.current_thread().name) for r in records]


def _runtime(pool: ThreadPoolExecutor) -> Runtime:
    return Runtime(Settings(classify_threads=2), None, {}, None, _State(), None, None, pool)  # type: ignore[arg-type]


def test_a_chunk_cheaper_than_a_thread_hop_is_classified_on_the_loop():
    with ThreadPoolExecutor(2, thread_name_prefix="classify") as pool:
        out = asyncio.run(_runtime(pool).run_split(_step, list(range(10)), Pacer(per_record=0.0001)))
    assert [o.record for o in out] == list(range(10))
    assert {o.thread for o in out} == {"MainThread"}


def test_a_costly_chunk_is_split_over_the_pool_in_input_order():
    CALLS.clear()
    with ThreadPoolExecutor(2, thread_name_prefix="classify") as pool:
        out = asyncio.run(_runtime(pool).run_split(_step, list(range(100)), Pacer(per_record=0.01)))
    assert [o.record for o in out] == list(range(100))
    assert all(o.thread.startswith("classify") for o in out)
    assert CALLS == [50, 50]  # one share per classify thread


def test_without_a_pacer_the_pool_classifies():
    with ThreadPoolExecutor(2, thread_name_prefix="classify") as pool:
        out = asyncio.run(_runtime(pool).run_split(_step, list(range(3)), None))
    assert [o.record for o in out] == [0, 1, 2] and out[0].thread.startswith("classify")
