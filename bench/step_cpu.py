"""CPU per event of the pure objects step (decode -> classify -> results serialized), no Kafka.

What the classify pool does per event, in-process, for the end-to-end benchmark's workloads
(bench/workloads.py): ``objects_step`` + ``Outcome.encode`` over 2,000 events, best of 9 runs
of ``time.process_time`` on one thread (OPENBLAS_NUM_THREADS=1, as a worker sets it). The
figure the end-to-end benchmark's "CPU s / 1k events" splits into step + delivery.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/step_cpu.py [knn-small zeroshot]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import orjson  # noqa: E402

from app.classify.objects import objects_step  # noqa: E402
from app.classify.outcome import Record  # noqa: E402
from app.classify.state import ModelState  # noqa: E402
from app.schemas.deadletter import Source  # noqa: E402
from app.service.runtime import _encoded  # noqa: E402
from app.settings import Settings  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def measure(name: str, n: int = 2000, runs: int = 9) -> tuple[float, int]:
    """(ms of CPU per event, bytes of the first result)."""
    w = WORKLOADS[name]()
    state = ModelState(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-step-"))))
    for key, value in w.training:
        state.apply(key, orjson.dumps(value))
    records = [Record(k, v, Source(topic="objects", partition=0, offset=i, timestamp=1_700_000_000_000))
               for i, (k, v) in enumerate(w.events(n, "step"))]
    snap = state.snapshot()
    best = float("inf")
    for _ in range(runs):
        t = time.process_time()
        outs = _encoded(objects_step, state, records, snap)
        best = min(best, time.process_time() - t)
    state.close()
    assert all(o.rejected is None for o in outs), [o.rejected for o in outs if o.rejected][:3]
    return 1000 * best / n, len(outs[0].encoded[0]) if outs[0].encoded else 0


def main() -> None:
    names = sys.argv[1:] or ["knn-small", "zeroshot"]
    print(f"| workload | step CPU ms / event | result bytes |\n|---|---:|---:|  (load {os.getloadavg()[0]:.1f})")
    for name in names:
        ms, size = measure(name)
        print(f"| {name} | {ms:.3f} | {size:,} |", flush=True)


if __name__ == "__main__":
    main()
