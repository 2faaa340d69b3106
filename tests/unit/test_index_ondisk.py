"""Snapshots built on disk (``AnnoyIndex.on_disk_build``): ``AnnoyIndex.save`` holds the GIL while it
writes the whole file, which stopped the worker's event loop for seconds per rebuild at 100k x 384-d
(bench/build_lag.py), so a build with a data dir writes its file inside ``build`` instead."""

import numpy as np
import pytest

from app.core.knn import exact_search
from app.index import files, forest_proc
from app.index.live import LiveIndex

DIM = 8


def filled(tmp_path, n=60, **kw):
    ix = LiveIndex(DIM, exact_threshold=10, data_dir=tmp_path, name="D.p", auto_build=False, **kw)
    for i, v in enumerate(np.random.default_rng(2).normal(size=(n, DIM)).astype(np.float32)):
        ix.upsert(f"e{i}", v, f"l{i % 3}")
    return ix


def test_the_forest_is_built_at_its_tmp_path_and_renamed_into_place(tmp_path):
    ix = filled(tmp_path)
    targets = []
    original = ix._make_forest

    def spy(rows, vecs, target=None):
        targets.append(target)
        forest = original(rows, vecs, target)
        assert target is not None and target.stat().st_size > 0  # written by build(), before any save
        return forest
    ix._make_forest = spy
    assert ix.build_now() == 1
    assert targets == [files.ann_tmp(tmp_path, "D.p", 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D.p.v1.ann", "D.p.v1.npz"]
    assert ix.search(np.ones(DIM), 3).version == 1 and ix.counters["annoy"] == 1  # served from the mmapped file
    ix.close()
    again = filled(tmp_path)  # a restart adopts the renamed file: it is a complete snapshot
    assert again.maybe_rebuild(wait=True) and again.version == 1
    assert again.search(np.ones(DIM), 3).version == 1 and again.counters["annoy"] == 1
    again.close()


def test_a_failed_build_leaves_no_half_written_file(tmp_path):
    ix = filled(tmp_path)
    original = ix._make_forest

    def broken(rows, vecs, target=None):
        original(rows, vecs, target)  # the file exists now
        raise OSError("disk full")
    ix._make_forest = broken
    with pytest.raises(OSError):
        ix.build_now()
    assert list(tmp_path.iterdir()) == []
    ix._make_forest = original
    assert ix.build_now() == 2  # version numbers never go back
    ix.close()


def test_a_forest_built_elsewhere_is_refused(tmp_path):
    ix = filled(tmp_path)
    forest = ix._make_forest(np.arange(60), ix._store.vecs, tmp_path / "elsewhere.ann")
    with pytest.raises(ValueError, match="belongs at"):
        files.write_snapshot(tmp_path, "D.p", 1, forest, [f"e{i}" for i in range(60)], 0, {}, built_at=tmp_path / "x")
    ix.close()


# -- built by a child process (app/index/forest_proc.py): the default for a forest built on disk -----------------


def test_a_child_process_builds_the_same_items_as_a_thread(tmp_path, monkeypatch):
    children = []
    real_popen = forest_proc.subprocess.Popen
    monkeypatch.setattr(forest_proc.subprocess, "Popen", lambda cmd, **kw: children.append(cmd) or real_popen(cmd, **kw))
    by_child = filled(tmp_path / "child")
    by_thread = filled(tmp_path / "thread", build_process=False)
    assert by_child.build_now() == 1 and by_thread.build_now() == 1
    assert len(children) == 1 and children[0][1:3] == ["-m", "app.index.forest_proc"]  # only the default spawned
    assert sorted(p.name for p in (tmp_path / "child").iterdir()) == ["D.p.v1.ann", "D.p.v1.npz"]  # no scratch left
    a, b = by_child._built.forest, by_thread._built.forest
    assert a.get_n_items() == b.get_n_items() == 60
    assert all(np.allclose(a.get_item_vector(i), b.get_item_vector(i)) for i in range(60))
    q = np.random.default_rng(5).normal(size=(20, DIM)).astype(np.float32)
    exact = [[f"e{i}" for i in row] for row in exact_search(q, by_child._store.vecs[:60], 5, "cosine")[0].tolist()]
    served = by_child.search(q, 5)
    assert served.version == 1 and by_child.counters["annoy"] == 20  # served from the forest, per query
    assert np.mean([len(set(s) & set(e)) / 5 for s, e in zip(served.ids, exact, strict=True)]) > 0.9
    by_child.close()
    by_thread.close()


def test_a_failing_child_raises_with_its_stderr_and_leaves_nothing(tmp_path):
    v = np.ones((5, DIM), np.float32)
    with pytest.raises(forest_proc.BuildFailed, match="(?s)exited with 1.*No such metric"):
        forest_proc.build_file(v, np.arange(5), "nope", 2, tmp_path / "x.ann")  # Annoy refuses the metric
    assert list(tmp_path.iterdir()) == []


def test_the_child_exits_when_its_parent_dies(tmp_path):
    # A worker killed mid-build must not leave a build running: the child watches its parent.
    import subprocess
    import sys
    import time
    n = 200_000  # long enough to still be adding items when the parent is killed
    np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32).tofile(tmp_path / "v")
    parent = subprocess.Popen([sys.executable, "-c", (
        "import os, subprocess, sys; c = subprocess.Popen([sys.executable, '-m', 'app.index.forest_proc', "
        f"{str(tmp_path / 'v')!r}, '{n}', '{DIM}', 'angular', '50', {str(tmp_path / 'f.ann')!r}, '1', '0', "
        "str(os.getpid())]); print(c.pid, flush=True); c.wait()")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()  # most likely before the child even started watching: it must notice all the same
    parent.wait()
    deadline = time.monotonic() + 15  # the build alone takes ~25 s here
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_cancelled_build_kills_its_child_and_leaves_nothing(tmp_path):
    # A stopping worker must not wait minutes for a 1M-vector build: cancel() kills the child it waits for.
    import threading
    n = 200_000  # long enough (~25 s here) to be cancelled mid-build
    vecs = np.random.default_rng(0).normal(size=(n, DIM)).astype(np.float32)
    outcome = []

    def build():
        try:
            forest_proc.build_file(vecs, np.arange(n), "angular", 50, tmp_path / "f.ann")
            outcome.append("built")
        except forest_proc.BuildCancelled:
            outcome.append("cancelled")

    t = threading.Thread(target=build)
    t.start()
    while t.ident not in forest_proc._children and t.is_alive():  # the child has started
        t.join(0.01)
    child = forest_proc._children[t.ident]
    assert forest_proc.cancel(t.ident)
    t.join()
    assert outcome == ["cancelled"] and child.returncode is not None and child.returncode < 0  # killed, reaped
    assert list(tmp_path.iterdir()) == []  # no forest, no scratch file
    assert not forest_proc.cancel(t.ident)  # nothing left to cancel


def test_closing_the_manager_cancels_a_running_build(tmp_path):
    import time

    from app.index.live import IndexSettings
    from app.index.manager import IndexManager

    mgr = IndexManager(tmp_path, IndexSettings(exact_threshold=0, rebuild_quiet_seconds=0.0, n_trees=400))
    for i, v in enumerate(np.random.default_rng(1).normal(size=(20_000, 64)).astype(np.float32)):
        mgr.upsert({"id": f"e{i}", "class": "D", "vector": v, "labels": {"p": "x"}})
    t = mgr.scheduler.thread
    while t is None or t.ident not in forest_proc._children:  # the build's child has started
        mgr.scheduler.wake()
        time.sleep(0.01)
        t = mgr.scheduler.thread
    child = forest_proc._children[t.ident]
    done_before = {p.name for p in tmp_path.rglob("*") if ".tmp" not in p.name}  # earlier, finished builds
    mgr.close()
    assert child.returncode is not None and child.returncode < 0  # killed by a signal, and reaped
    assert not t.is_alive()  # the builder thread is joined
    assert {p.name for p in tmp_path.rglob("*")} == done_before  # nothing of the cancelled build left behind
