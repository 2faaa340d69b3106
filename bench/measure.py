"""Pure helpers of the end-to-end benchmark: percentiles, a process's CPU and peak memory, pacing.

Stdlib only and no I/O except the two ``/proc`` readers, so the unit tests exercise the math
(tests/unit/test_bench_measure.py) and every docstring example runs.

    >>> percentiles([5.0, 1.0, 3.0, 2.0, 4.0], (50, 100))
    [3.0, 5.0]
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

#: clock ticks per second, for utime/stime in /proc/<pid>/stat
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks
    (numpy's default, so figures compare with any other tool's); NaN for no values.

    >>> percentile([10.0, 20.0, 30.0, 40.0], 50)
    25.0
    >>> percentile([10.0, 20.0, 30.0, 40.0], 99)
    39.7
    >>> percentile([], 50)
    nan
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    xs = sorted(values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 12)


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list[float]:
    return [percentile(values, q) for q in qs]


def latencies(sent: dict[bytes, float], arrived: dict[bytes, float]) -> tuple[list[float], int]:
    """Seconds from send to first arrival for every sent key, and how many never arrived.

    >>> latencies({b"a": 1.0, b"b": 2.0, b"c": 3.0}, {b"a": 1.25, b"b": 2.5, b"x": 9.0})
    ([0.25, 0.5], 1)
    """
    got = [arrived[k] - t for k, t in sent.items() if k in arrived]
    return got, len(sent) - len(got)


def cpu_seconds_from_stat(stat: str, clk_tck: int = CLK_TCK) -> float:
    """utime + stime of a ``/proc/<pid>/stat`` line, in seconds. The command name (field 2)
    may hold spaces and parentheses, so fields are counted after its last ``)``.

    >>> cpu_seconds_from_stat("42 (python (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0", clk_tck=100)
    3.0
    """
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / clk_tck


def peak_rss_from_status(status: str) -> int:
    """``VmHWM`` (the resident set's high-water mark) of a ``/proc/<pid>/status`` text, in bytes.

    >>> peak_rss_from_status("Name:\\tpython\\nVmHWM:\\t  123456 kB\\nVmRSS:\\t 1000 kB\\n")
    126418944
    """
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no VmHWM line (not a Linux /proc/<pid>/status?)")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        return cpu_seconds_from_stat(f.read())


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return peak_rss_from_status(f.read())


def due(elapsed: float, rate: float, total: int) -> int:
    """How many events a producer paced at ``rate``/s should have sent ``elapsed`` s after its
    start (the first one at 0), never more than ``total``.

    >>> [due(t, 100.0, 3) for t in (0.0, 0.005, 0.01, 0.5)]
    [1, 1, 2, 3]
    """
    if elapsed < 0:
        return 0
    return min(total, int(elapsed * rate) + 1)


def per_thousand(cpu: float, events: int) -> float:
    """CPU seconds per 1,000 events.

    >>> per_thousand(2.5, 10_000)
    0.25
    """
    return cpu / events * 1000 if events else math.nan


def cpu_split(cpu_per_1k: dict[tuple[str, str], float]) -> list[str]:
    """Where a workload's CPU per event goes: the client (the ``raw`` service), Faust on top of it
    (``faust`` − ``raw``), Labelstream on top of Faust (``labelstream`` − ``faust``); CPU s per
    1,000 events is CPU ms per event. With a ``lean`` service (Faust's consumer, batches delivered
    as Labelstream's hot topics are) Labelstream is split on top of that instead. Workloads
    missing a service are left out.

    >>> cpu_split({("knn", "raw"): 0.02, ("knn", "faust"): 0.4, ("knn", "labelstream"): 0.9, ("x", "raw"): 1.0})
    ['knn: CPU ms per event: client 0.020 + Faust 0.380 + Labelstream 0.500 = 0.900 (one core at that cost: 1,111 events/s)']
    >>> cpu_split({("k", "raw"): 0.02, ("k", "faust"): 0.4, ("k", "lean"): 0.05, ("k", "labelstream"): 0.25})
    ['k: CPU ms per event: client 0.020 + lean delivery 0.030 + Labelstream 0.200 = 0.250 (one core at that cost: 4,000 events/s; Faust streams instead of lean delivery: +0.350)']
    """
    out = []
    for wl in dict.fromkeys(w for w, _ in cpu_per_1k):
        if all((wl, s) in cpu_per_1k for s in ("raw", "lean", "labelstream")):
            raw, lean, ls = cpu_per_1k[wl, "raw"], cpu_per_1k[wl, "lean"], cpu_per_1k[wl, "labelstream"]
            faust = cpu_per_1k.get((wl, "faust"))
            extra = f"; Faust streams instead of lean delivery: +{faust - lean:.3f}" if faust is not None else ""
            out.append(f"{wl}: CPU ms per event: client {raw:.3f} + lean delivery {lean - raw:.3f} + Labelstream "
                       f"{ls - lean:.3f} = {ls:.3f} (one core at that cost: {1000 / ls:,.0f} events/s{extra})")
        elif all((wl, s) in cpu_per_1k for s in ("raw", "faust", "labelstream")):
            raw, fst, ls = cpu_per_1k[wl, "raw"], cpu_per_1k[wl, "faust"], cpu_per_1k[wl, "labelstream"]
            out.append(f"{wl}: CPU ms per event: client {raw:.3f} + Faust {fst - raw:.3f} + Labelstream "
                       f"{ls - fst:.3f} = {ls:.3f} (one core at that cost: {1000 / ls:,.0f} events/s)")
    return out


def env_prefix(environ: Mapping[str, str] | None = None) -> str:
    """The ``LABELSTREAM_*`` settings a benchmark's workers inherit, as a command-line prefix.

    >>> env_prefix({"LABELSTREAM_KNN_INDEX": "ivf", "HOME": "/x"})
    'LABELSTREAM_KNN_INDEX=ivf '
    """
    env = os.environ if environ is None else environ
    return "".join(f"{k}={v} " for k, v in sorted(env.items()) if k.startswith("LABELSTREAM_"))

