"""Build an Annoy forest file in a child process, at a lower CPU priority than the worker.

Built on a thread, a 100k x 384-d forest cost the result stream twice (``bench/RESULTS.md``,
"Index rebuild: GIL stalls" and "Result gaps while a 100k index rebuilds"):

* ``add_item`` is one Python call per item that holds the GIL: 100k of them contend with the
  event loop and the classify threads for seconds (loop wake-ups 100-645 ms late under load);
* ``build`` releases the GIL but takes a whole core at the worker's own priority, so on a
  2-core machine the stream fell behind for the ~25 s of the build (p50 1.4 s at 50 events/s).

Here the worker only writes the captured vectors to a scratch file next to the target (chunked
writes, which release the GIL) and waits for ``python -m app.index.forest_proc``: the child maps
them, feeds Annoy and builds the forest on disk (``on_disk_build``) under ``os.nice``, so the
kernel gives the worker and the broker the CPU first and the build what is left. The file it
writes is exactly what the in-thread build writes; the caller renames and maps it as before
(:mod:`app.index.files`). An inverted file (``kind="ivf"``, :mod:`app.index.ivf`) is built the same
way, for the same CPU-priority reason. The child exits if the worker dies (it watches its parent), and a
worker that stops cancels it (:func:`cancel`): a 1M-vector build takes minutes, and the worker's
shutdown used to wait for it (up to its close timeout, with the event loop blocked).

>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> v = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
>>> build_file(v, np.arange(50), "angular", 4, d / "f.ann")
>>> from annoy import AnnoyIndex
>>> f = AnnoyIndex(8, "angular"); _ = f.load(str(d / "f.ann")); f.get_n_items(), f.get_nns_by_item(7, 1)
(50, [7])
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

NICE = 10  # the child's niceness above the worker's: ~10x less CPU than the worker when both want it
ADD_CHUNK = 1024  # rows gathered and written (parent) or converted to lists (child) at a time
_WATCH_SECONDS = 1.0  # how often the child checks that its parent is alive
_ROOT = str(Path(__file__).resolve().parents[2])  # so the child imports this same source tree


class BuildFailed(RuntimeError):
    """The child process could not build the forest (its exit code and the end of its stderr)."""


class BuildCancelled(BuildFailed):
    """The build was cancelled (:func:`cancel`): its worker is stopping."""


#: Thread ident -> the build child that thread waits for. :func:`cancel` takes the entry out, so a
#: waiting thread that finds its entry gone knows its build was cancelled.
_children: dict[int, subprocess.Popen] = {}
_lock = threading.Lock()


def cancel(thread: int | None) -> bool:
    """Stop the build the thread ``thread`` (an ident) is waiting for, if any: that thread's
    :func:`build_file` raises :class:`BuildCancelled`. True if a child was running."""
    with _lock:
        child = _children.pop(thread, None) if thread is not None else None
    if child is None:
        return False
    child.kill()  # the child holds no state worth a graceful stop: its file is renamed only on success
    return True


def build_file(vecs: np.ndarray, rows: np.ndarray, metric: str, n_trees: int, target: Path, *,
               jobs: int = 1, nice: int = NICE, kind: str = "annoy") -> None:
    """Write the forest over ``vecs[rows]`` (item ``i`` = ``rows[i]``) to ``target``.

    ``kind`` "annoy": ``metric`` is Annoy's ("angular", "euclidean"), ``n_trees`` its trees.
    ``kind`` "ivf": an inverted file (:func:`app.index.ivf.build`), ``metric`` the index's
    ("cosine", "euclidean"), ``n_trees`` its cells (0: ~sqrt of the examples)."""
    target = Path(target)
    scratch = target.with_name(target.name + ".vecs")
    dim = int(vecs.shape[1])
    try:
        with open(scratch, "wb") as fh:
            for s in range(0, rows.size, ADD_CHUNK):
                fh.write(np.ascontiguousarray(vecs[rows[s: s + ADD_CHUNK]], dtype=np.float32).data)
        cmd = [sys.executable, "-m", "app.index.forest_proc", str(scratch), str(rows.size), str(dim), metric,
               str(n_trees), str(target), str(jobs), str(nice), str(os.getpid()), kind]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
        me = threading.get_ident()
        with _lock:
            child = _children[me] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            _, err = child.communicate()  # waits without the GIL
        finally:
            with _lock:
                cancelled = _children.pop(me, None) is None  # cancel() took it out
        if cancelled:
            target.unlink(missing_ok=True)  # what a killed child had written of it
            raise BuildCancelled("index build cancelled: the worker is stopping")
        if child.returncode != 0:
            raise BuildFailed(f"index build process exited with {child.returncode}: "
                              f"{err.decode(errors='replace')[-2000:]}")
    finally:
        scratch.unlink(missing_ok=True)


def add_items(forest: Any, vecs: np.ndarray, rows: np.ndarray | None = None) -> None:
    """``forest.add_item(i, vecs[rows[i]])`` (``rows`` None: ``vecs[i]``) for every i.

    ``add_item`` holds the GIL per call: it is fed plain lists (numpy rows are converted item by
    item, ~25 % slower), a chunk at a time (the copy stays small)."""
    n = vecs.shape[0] if rows is None else rows.size
    for s in range(0, n, ADD_CHUNK):
        chunk = vecs[s: s + ADD_CHUNK] if rows is None else vecs[rows[s: s + ADD_CHUNK]]
        for i, v in enumerate(chunk.tolist(), s):
            forest.add_item(i, v)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:  # a dead parent's children are re-parented (to init or a subreaper)
        time.sleep(_WATCH_SECONDS)
    os._exit(3)  # the worker is gone: nobody will use this forest


def main(argv: list[str]) -> int:
    scratch, count, dim, metric, n_trees, target, jobs, nice, parent, kind = argv
    os.nice(int(nice))
    # The worker's pid, not getppid() now: the worker may have died before this line ran.
    threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True).start()
    n, d = int(count), int(dim)
    vecs = np.memmap(scratch, dtype=np.float32, mode="r", shape=(n, d)) if n else np.zeros((0, d), np.float32)
    if kind == "ivf":
        from app.index import ivf
        ivf.set_threads(int(jobs))
        ivf.build(vecs, metric, int(n_trees) or None).save(target)
        return 0
    from annoy import AnnoyIndex  # here, not at the top: the worker imports this module too

    forest = AnnoyIndex(d, metric)  # type: ignore[arg-type]
    forest.on_disk_build(target)
    add_items(forest, vecs)
    forest.build(int(n_trees), n_jobs=int(jobs))
    forest.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
