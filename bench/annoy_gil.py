"""Which Annoy calls hold the GIL, and for how long: the stalls a background build causes.

A ticker thread sleeps 1 ms in a loop and records its latest wake-up; each Annoy step of a
build over ``--n`` x 384-d vectors runs on the main thread, and the ticker's worst lateness
during the step is printed next to the step's time. A step that holds the GIL throughout
(``save``) shows a lateness as long as itself; one that releases it (``build``) only the
machine's own noise. This is why app/index builds on disk (``on_disk_build``) instead of
calling ``save`` (app/index/files.py).

    .venv/bin/python bench/annoy_gil.py --n 100000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from annoy import AnnoyIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_build import DIM, data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--trees", type=int, default=32)
    n = ap.parse_args().n
    trees = ap.parse_args().trees
    x, _ = data(n)
    worst = [0.0]
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            time.sleep(0.001)
            worst[0] = max(worst[0], time.perf_counter() - t - 0.001)

    threading.Thread(target=ticker, daemon=True).start()

    def step(name: str, fn: Callable[[], Any]) -> None:
        worst[0] = 0.0
        t = time.perf_counter()
        fn()
        took = time.perf_counter() - t
        time.sleep(0.01)  # let a ticker stuck behind the step report
        print(f"| {name} | {took:.2f} | {worst[0] * 1000:,.0f} |", flush=True)

    d = tempfile.mkdtemp(prefix="bench-annoy-")
    print(f"{n:,} x {DIM}-d, {trees} trees, load average {os.getloadavg()[0]:.1f}\n")
    print("| step | seconds | worst ticker lateness ms |\n|---|---:|---:|")
    mem = AnnoyIndex(DIM, "angular")
    step("add_item, numpy rows (before)", lambda: [mem.add_item(i, x[i]) for i in range(n)])
    step("build in memory", lambda: mem.build(trees, n_jobs=1))
    step("save (before: holds the GIL)", lambda: mem.save(f"{d}/mem.ann"))
    disk = AnnoyIndex(DIM, "angular")
    disk.on_disk_build(f"{d}/disk.ann")
    step("add_item, lists of 1,024 rows (after)", lambda: [disk.add_item(i, v) for s in range(0, n, 1024)
                                                           for i, v in enumerate(x[s: s + 1024].tolist(), s)])
    step("build on disk (after: writes the file)", lambda: disk.build(trees, n_jobs=1))
    step("unload", disk.unload)
    step("load (mmap)", lambda: AnnoyIndex(DIM, "angular").load(f"{d}/disk.ann"))
    stop.set()
    for f in ("mem.ann", "disk.ann"):
        os.unlink(f"{d}/{f}")
    os.rmdir(d)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
