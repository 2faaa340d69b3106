"""One build thread for many indexes; one store of examples for both metrics; no half-state."""
import threading
import time

import numpy as np
import pytest

from app.core.knn import exact_search
from app.index import manager as manager_mod
from app.index.builder import BuildScheduler
from app.index.knn import KnnIndexes
from app.index.live import IndexSettings, LiveIndex
from app.index.manager import DimensionError, Example, IndexManager

DIM = 16
FAST = IndexSettings(exact_threshold=20, rebuild_quiet_seconds=0.05, n_trees=8)


def points(n, seed=0, dim=DIM):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def build_threads():
    return [t for t in threading.enumerate() if t.name.startswith("index-build")]


def until(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def fill(m, cls, props, x):
    for i, v in enumerate(x):
        m.upsert(Example(f"{cls}-{i}", cls, v, {"i": i}, {p: f"l{i % 3}" for p in props}))


def test_many_indexes_build_on_one_thread(tmp_path):
    before = build_threads()
    active = threading.active_count()
    m = IndexManager(tmp_path, FAST)
    x = points(60)
    for c in range(4):  # 4 classes x 3 properties = 12 indexes, all above the threshold
        fill(m, f"C{c}", ["a", "b", "c"], x)
    assert m.wait_idle(60)
    assert len(m.keys()) == 12
    assert all(m.get(*k).version >= 1 for k in m.keys())  # every index was built
    mine = [t for t in build_threads() if t not in before]
    assert [t.name for t in mine] == ["index-build"]  # one thread, not one per index
    assert threading.active_count() == active + 1
    m.close()
    assert not mine[0].is_alive()  # close joins the shared thread
    assert threading.active_count() == active


def test_a_failing_index_backs_off_without_stopping_the_others(tmp_path):
    m = IndexManager(tmp_path, FAST)
    x = points(40)
    fill(m, "Bad", ["p"], x[:1])
    bad = m.get("Bad", "p")
    original, calls = bad._make_forest, []

    def broken(rows, vecs, target=None):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return original(rows, vecs, target)
    bad._make_forest = broken
    fill(m, "Bad", ["p"], x)
    fill(m, "Good", ["p"], x)
    assert m.wait_idle(60)
    assert m.get("Good", "p").version >= 1
    assert isinstance(bad.last_error, OSError)
    assert until(lambda: bad.version >= 1)  # retried after the back-off (1 s)
    assert len(calls) == 2
    m.close()


def test_closing_one_index_leaves_the_shared_thread_to_the_others(tmp_path):
    sched = BuildScheduler("index-build-test")
    a = LiveIndex(DIM, exact_threshold=10, rebuild_quiet_seconds=0.05, name="A.p",
                  scheduler=sched)
    b = LiveIndex(DIM, exact_threshold=10, rebuild_quiet_seconds=0.05, name="B.p",
                  scheduler=sched)
    x = points(30)
    for i, v in enumerate(x):
        a.upsert(f"a{i}", v, "x")
    assert a.wait_idle(30) and a.version == 1
    a.close()
    assert sched.thread is not None and sched.thread.is_alive()
    for i, v in enumerate(x):
        a.upsert(f"late{i}", v, "x")  # a closed index still serves, but no longer builds
        b.upsert(f"b{i}", v, "y")
    assert b.wait_idle(30) and b.version == 1
    assert a.version == 1 and a.pending_changes == 30
    b.close()
    sched.close()
    assert not sched.thread.is_alive()


def test_manual_rebuild_runs_on_the_scheduler_thread():
    ix = LiveIndex(DIM, exact_threshold=10, auto_build=False, name="M.p",
                   rebuild_after_changes=10)
    for i, v in enumerate(points(30)):
        ix.upsert(f"e{i}", v, "x")
    assert ix.version == 0 and ix._scheduler.thread is None  # noqa: SLF001
    seen = []
    original = ix._make_forest
    ix._make_forest = lambda rows, vecs, target=None: seen.append(threading.current_thread().name) \
        or original(rows, vecs, target)
    assert ix.maybe_rebuild()
    assert ix.wait_idle(30) and ix.version == 1
    assert seen == ["index-build-M.p"]
    assert not ix.maybe_rebuild()  # nothing due any more
    ix.close()


def test_one_store_serves_both_metrics(tmp_path):
    from types import SimpleNamespace
    settings = SimpleNamespace(data_dir=tmp_path, knn_exact_threshold=50, annoy_n_trees=8,
                               annoy_search_k=None, index_build_process=True, knn_index="annoy",
                               ivf_nlist=None, ivf_nprobe=None)
    k = KnnIndexes(settings)
    x = points(200) * np.linspace(0.1, 10, 200, dtype=np.float32)[:, None]  # varied lengths
    for i, v in enumerate(x):
        k.upsert(Example(f"id{i}", "Doc", v, {}, {"topic": f"t{i % 4}"}))
    assert k.wait_idle(30)
    cos, euc = k.get("Doc", "topic"), k.get("Doc", "topic", "euclidean")
    assert euc.index is cos and k.keys() == [("Doc", "topic")]  # one index, one store
    st = cos._store  # noqa: SLF001
    np.testing.assert_array_equal(st.vecs[: st.n], x)  # raw vectors, stored once
    q = points(15, seed=3)
    for metric, ix in (("cosine", cos), ("euclidean", euc)):
        res = ix.search(q, 4)
        idx, dist = exact_search(q, x, 4, metric)
        assert res.ids == [[f"id{j}" for j in r] for r in idx]
        np.testing.assert_allclose(np.vstack(res.distances), dist, rtol=1e-5, atol=1e-6)
    assert cos.version >= 1 and cos.counters["annoy"] == 15  # cosine used the forest
    assert cos.counters["exact"] == 15  # euclidean: same store, searched exactly
    k.delete("id3")
    assert "id3" not in euc.search(x[3], 3).ids[0]  # one delete, both metrics
    k.close()


def test_wrong_query_dimension_leaves_no_trace():
    ix = LiveIndex(3, auto_build=False)
    ix.upsert("a", [1.0, 0.0, 0.0], "x", {"p": 1})
    counters, generation = dict(ix.counters), ix.generation
    for metric in ("cosine", "euclidean"):
        with pytest.raises(DimensionError):
            ix.search([[1.0, 0.0]], 1, lambda p: True, metric=metric)
    assert ix.counters == counters and ix.generation == generation
    assert ix._mask_cache is None  # noqa: SLF001 - the filter never ran
    assert ix.search([[1.0, 0.0, 0.0]], 1).ids == [["a"]]
    ix.close()


def test_a_failed_manager_upsert_changes_nothing(tmp_path, monkeypatch):
    m = IndexManager(tmp_path, IndexSettings(auto_build=False))
    m.upsert(Example("e1", "Article", [1, 0, 0], {}, {"topic": "sport"}))
    real = manager_mod.LiveIndex.from_settings

    def opening(dim, settings, data_dir, name, **kw):
        if name in ("Article.tone", "Photo.kind"):
            raise OSError("cannot open the index directory")
        return real(dim, settings, data_dir, name, **kw)
    monkeypatch.setattr(manager_mod.LiveIndex, "from_settings", opening)
    with pytest.raises(OSError):  # moving e1 from "topic" to "tone" fails half-way in
        m.upsert(Example("e1", "Article", [1, 0, 0], {}, {"tone": "calm"}))
    assert m.holding("e1") == {("Article", "topic")} and m.get("Article", "topic").size == 1
    with pytest.raises(OSError):  # a class's first example: its dimension stays open
        m.upsert(Example("p1", "Photo", [1, 0], {}, {"kind": "cat"}))
    assert m.dim("Photo") is None and m.holding("p1") == set()
    assert m.keys() == [("Article", "topic")]
    m.close()


def test_held_builds_wait_for_release_then_build_the_whole_set_once(tmp_path):
    held, control = IndexManager(tmp_path / "held", FAST), IndexManager(tmp_path / "control", FAST)
    held.scheduler.hold()  # what a worker does while its replica loads the training set
    x = points(200)
    for lo in range(0, 200, 50):  # a set loaded in four bursts, each one above the exact threshold
        fill(held, "C", ["a"], x[:lo + 50])
        fill(control, "C", ["a"], x[:lo + 50])
        assert until(lambda: control.get("C", "a").version >= 1)
    assert control.wait_idle(60) and control.get("C", "a").version >= 1
    assert held.get("C", "a").version == 0  # the control built meanwhile; the held one did not
    held.scheduler.release()
    assert until(lambda: held.get("C", "a").version >= 1) and held.wait_idle(60)
    assert held.get("C", "a").version == 1  # one build, of the whole set
    assert held.get("C", "a").search(x[:3], 1).ids == [["C-0"], ["C-1"], ["C-2"]]
    held.close(), control.close()
