"""The cyclic GC for a long-running worker: freeze what was loaded, then collect young objects rarely.

Two costs a profile found (``bench/RESULTS.md``, "Latency, GC and memory" and "GC threshold"):

- **Full collections** walked everything alive after start-up (modules, the model state,
  indexes' bookkeeping: ~117k objects) again and again: ~75 ms of CPU with the GIL held, about
  every 2 s under load. Frozen once the replica has caught up, they walk only what came after.
- **Young collections.** A batch of results is tens of thousands of dicts and lists, alive until
  the batch is sent. At Python's threshold of 700 allocations a young collection ran every few
  results, found nothing to free (results are not cyclic: reference counting frees them) and
  promoted them, and the older generations' collections walked them again. A higher threshold
  collects as surely (cycles are still found), just less often.

>>> import gc
>>> before = gc.get_threshold()
>>> settle(50_000) >= 0, gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:]
(True, 50000, True)
>>> gc.unfreeze(); gc.set_threshold(*before)
"""

from __future__ import annotations

import gc


def settle(young_threshold: int) -> int:
    """Collect, freeze everything alive, and set the generation-0 threshold (0: keep Python's);
    returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    if young_threshold:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
    return gc.get_freeze_count()
