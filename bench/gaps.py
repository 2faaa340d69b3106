"""Pure helpers of bench/rebuild_gap.py: gaps in a stream of arrivals, split into phases.

Stdlib only, no I/O (tests/unit/test_bench_gaps.py runs these examples).

    >>> largest_gap([0.0, 0.01, 0.2, 0.21], 0.0, 1.0)
    (0.19, 0.2)
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def largest_gap(arrivals: Sequence[float], start: float, end: float) -> tuple[float, float]:
    """The longest time between consecutive ``arrivals`` (sorted) whose LATER one falls in
    ``[start, end)``, and that later arrival's time; ``(nan, nan)`` with no such pair. A gap
    that straddles ``start`` counts for the window it ends in: a stall that began before a
    rebuild and ended during it shows up in the rebuild's phase.

    >>> largest_gap([0.0, 0.5, 0.6, 2.0], 0.55, 1.0)
    (0.1, 0.6)
    >>> largest_gap([0.0, 0.5, 0.6, 2.0], 0.55, 3.0)
    (1.4, 2.0)
    >>> largest_gap([1.0], 0.0, 2.0)
    (nan, nan)
    """
    best, at = math.nan, math.nan
    for prev, cur in zip(arrivals, arrivals[1:]):
        gap = round(cur - prev, 9)  # rounded before comparing: equal gaps keep the first
        if start <= cur < end and not (gap <= best):  # `not <=`: the first pair beats nan
            best, at = gap, cur
    return best, at


def first_at_least(times: Sequence[float], versions: Sequence[int], version: int) -> float:
    """The first time (in arrival order) a result carried ``version`` or newer; ``inf`` if never.

    >>> first_at_least([1.0, 2.0, 3.0], [1, 1, 2], 2), first_at_least([1.0], [1], 5)
    (3.0, inf)
    """
    return next((t for t, v in zip(times, versions) if v >= version), math.inf)


def in_window(pairs: Sequence[tuple[float, float]], start: float, end: float) -> list[float]:
    """The second element of each ``(time, value)`` pair with ``start <= time < end``.

    >>> in_window([(0.0, 5.0), (1.0, 6.0), (2.0, 7.0)], 0.5, 2.0)
    [6.0]
    """
    return [v for t, v in pairs if start <= t < end]


def count_in(times: Iterable[float], start: float, end: float) -> int:
    """How many ``times`` fall in ``[start, end)`` (events sent in a phase: a worker that keeps up
    returns about as many results in it).

    >>> count_in([0.0, 1.0, 1.5, 2.0], 1.0, 2.0)
    2
    """
    return sum(1 for t in times if start <= t < end)
