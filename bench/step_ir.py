"""Instructions per event of the objects step, counted by valgrind: a figure the host's noise cannot move.

On this shared 2-CPU machine the same commit's CPU time per event varies by 2x from one run to
the next (``bench/RESULTS.md``: the raw client's ceiling alone ranged 8k-25k events/s), so a 10-20 %
change in the step cannot be told from noise by timing it. Instructions retired do not depend on
what else the host runs. There is no hardware counter in this VM (``perf`` has no PMU), so the
count comes from valgrind's cachegrind (``--cache-sim=no``: instructions only), ~50x slower than
native: each count takes ~30-60 s.

What is counted: the pool's work for a batch (``objects_step`` + ``Outcome.encode``, the function
a classify thread runs: ``app.service.runtime._encoded``) over 1,000 events of a workload of
``bench/e2e.py`` (``bench/workloads.py``), with the GC configured as the tree's worker configures it
after start-up (frozen, and its young threshold if the tree has the setting). Start-up, imports and
the training set are the same in a run with ``K`` batches and one with ``K + 2``, so the difference
divided by 2,000 is the instructions of one event. ``PYTHONHASHSEED=0`` makes the runs repeatable.

    .venv/bin/python bench/step_ir.py                                   # this tree, knn-small and zeroshot
    .venv/bin/python bench/step_ir.py --before var/main-dc19b74         # and another tree (a git archive)

Not counted: the event loop's side (fetch, sink, producer): it needs the broker, and valgrind would
slow the broker's client down until its timeouts fire. ``bench/e2e.py`` measures the whole worker.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENTS = 1000

# Run by valgrind's python with the tree under test first on sys.path.
CHILD = r'''
import gc, os, sys, tempfile
from pathlib import Path
root = sys.argv[1]
sys.path[:0] = [root, root + "/bench"]
import orjson
from app.classify.objects import objects_step
from app.classify.outcome import Record
from app.classify.state import ModelState
from app.schemas.deadletter import Source
from app.service.runtime import _encoded
from app.settings import Settings
from workloads import WORKLOADS
name, batches, events = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
w = WORKLOADS[name]()
settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-ir-")))
state = ModelState(settings)
for key, value in w.training:
    state.apply(key, orjson.dumps(value))
records = [Record(k, v, Source(topic="objects", partition=0, offset=i, timestamp=1_700_000_000_000))
           for i, (k, v) in enumerate(w.events(events, "ir"))]
snap = state.snapshot()
_encoded(objects_step, state, records, snap)  # warm: first-call caches, lazily built index views
gc.collect()
gc.freeze()
young = getattr(settings, "gc_young_threshold", 0)  # as the tree's worker sets it (app/service/gcsettle.py)
if young:
    gc.set_threshold(young, *gc.get_threshold()[1:])
for _ in range(batches):
    outs = _encoded(objects_step, state, records, snap)
assert all(o.rejected is None for o in outs), [o.rejected for o in outs if o.rejected][:3]
os._exit(0)  # no teardown in the count
'''


def instructions(tree: Path, workload: str, batches: int, script: Path) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           sys.executable, str(script), str(tree), workload, str(batches), str(EVENTS)],
                          capture_output=True, text=True, env=env, check=False)
    m = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or m is None:
        raise RuntimeError(f"valgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def per_event(tree: Path, workload: str, script: Path, pool: ThreadPoolExecutor) -> float:
    one, three = pool.map(lambda k: instructions(tree, workload, k, script), (1, 3))
    return (three - one) / (2 * EVENTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", nargs="*", default=["knn-small", "zeroshot"])
    ap.add_argument("--before", metavar="DIR", help="another source tree (git archive) counted the same way")
    a = ap.parse_args()
    trees = [("this tree", ROOT)] + ([("before", Path(a.before).resolve())] if a.before else [])
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        script = Path(tmp) / "step_ir_child.py"
        script.write_text(CHILD)
        print("| workload | tree | instructions per event |" + (" vs before |" if a.before else ""))
        print("|---|---|---:|" + ("---:|" if a.before else ""))
        for w in a.workloads:
            counts = {label: per_event(tree, w, script, pool) for label, tree in trees}
            for label, n in counts.items():
                ratio = f" {n / counts['before']:.2f}x |" if a.before else ""
                print(f"| {w} | {label} | {n:,.0f} |{ratio}", flush=True)
    print(f"\n{EVENTS:,} events per batch; (instructions with 3 batches - with 1) / {2 * EVENTS:,}; valgrind "
          f"cachegrind, PYTHONHASHSEED=0. Command: `.venv/bin/python bench/step_ir.py {' '.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
