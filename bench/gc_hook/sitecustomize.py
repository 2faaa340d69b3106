"""Log the cyclic GC's collections of a Python process: put this directory on PYTHONPATH.

    PYTHONPATH=bench/gc_hook .venv/bin/python -m app.cli worker

Every full (generation 2) collection is logged to stderr with its CPU time, the objects the
collector tracks and how many are frozen (``gc.freeze``); at exit, collections and CPU seconds
per generation. How the worker's full collections were found to cost ~75 ms each
(bench/RESULTS.md, "Latency, GC and memory").
"""

import atexit
import gc
import sys
import threading
import time

_started: dict[int, float] = {}
_cpu = [0.0, 0.0, 0.0]
_count = [0, 0, 0]


def _callback(phase: str, info: dict) -> None:
    me = threading.get_ident()
    if phase == "start":
        _started[me] = time.thread_time()
        return
    took = time.thread_time() - _started.pop(me, time.thread_time())
    gen = info["generation"]
    _cpu[gen] += took
    _count[gen] += 1
    if gen == 2:
        sys.stderr.write(f"GC full collection: {took * 1000:.0f} ms CPU, {len(gc.get_objects())} objects tracked, "
                         f"{gc.get_freeze_count()} frozen\n")


def _report() -> None:
    sys.stderr.write(f"GC totals: collections per generation {_count}, CPU s {[round(c, 3) for c in _cpu]}\n")


gc.callbacks.append(_callback)
atexit.register(_report)
