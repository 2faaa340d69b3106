"""Live index: overlay semantics, Annoy path, versioned files, reload, filters, manager."""
import threading
import time

import numpy as np
import pytest

from app.core.filters import compile_where
from app.core.knn import exact_search
from app.index import files
from app.index.live import IndexSettings, LiveIndex
from app.index.manager import DimensionError, Example, IndexManager

DIM = 16


def data(n, seed=0, dim=DIM):
    """n labelled points around 6 fixed centres (queries share the training distribution)."""
    centers = np.random.default_rng(1234).normal(size=(6, dim))
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 6, n)
    x = (centers[lab] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32)
    return x, [f"c{i}" for i in lab]


def fill(ix, x, labels, start=0):
    for i, (v, lab) in enumerate(zip(x, labels)):
        ix.upsert(f"id{start + i}", v, lab, {"n": start + i, "even": (start + i) % 2 == 0})


def exact_ids(queries, x, k, metric="cosine", keep=None):
    rows = np.arange(len(x)) if keep is None else np.flatnonzero(keep)
    idx, dist = exact_search(queries, x[rows], k, metric)
    return [[f"id{rows[j]}" for j in r] for r in idx], dist


@pytest.fixture
def annoy_index(tmp_path):
    """300 examples, threshold 50, background builds after 0.05 s of quiet."""
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="Doc.topic",
                   rebuild_quiet_seconds=0.05)
    x, labels = data(300)
    fill(ix, x, labels)
    assert ix.wait_idle(30)
    yield ix, x, labels
    ix.close()


def count_exact_calls(ix, monkeypatch):
    calls = []
    original = ix._exact
    monkeypatch.setattr(ix, "_exact", lambda *a: calls.append(1) or original(*a))
    return calls


def test_upsert_is_visible_to_the_next_query_exact_path():
    ix = LiveIndex(DIM, auto_build=False)
    x, labels = data(20)
    fill(ix, x, labels)
    probe = np.full(DIM, 5.0, dtype=np.float32)
    assert ix.search(probe, 1).ids[0][0] != "new"
    ix.upsert("new", probe, "fresh")
    res = ix.search(probe, 1)
    assert res.ids == [["new"]] and res.labels == [["fresh"]]
    assert res.distances[0][0] == pytest.approx(0.0, abs=1e-7)


def test_background_build_then_annoy_path_equals_exact(annoy_index, monkeypatch):
    ix, x, _ = annoy_index
    assert ix.version >= 1 and ix.overlay_size == 0 and ix.pending_changes == 0
    calls = count_exact_calls(ix, monkeypatch)
    q, _ = data(40, seed=9)
    res = ix.search(q, 5)
    want, dist = exact_ids(q, x, 5)
    assert calls == []  # served by Annoy, no fallback
    assert res.ids == want
    np.testing.assert_allclose(np.vstack(res.distances), dist, atol=1e-6)  # exact meta
    assert res.version == ix.version


def test_overlay_upsert_and_delete_on_annoy_path(annoy_index, monkeypatch):
    ix, x, labels = annoy_index
    calls = count_exact_calls(ix, monkeypatch)
    v0 = ix.version
    probe = x[7] + 0.2 * np.random.default_rng(1).normal(size=DIM).astype(np.float32)
    assert ix.search(probe, 1).ids == [["id7"]]
    ix.upsert("brand-new", probe, "fresh")  # not in the snapshot: found via the overlay
    assert ix.search(probe, 1).ids == [["brand-new"]]
    assert ix.overlay_size == 1
    ix.delete("brand-new")
    ix.delete("id7")  # in the snapshot: must be filtered out of Annoy's candidates
    res = ix.search(probe, 5)
    assert "id7" not in res.ids[0] and "brand-new" not in res.ids[0]
    keep = np.ones(len(x), bool)
    keep[7] = False
    assert res.ids == exact_ids(probe[None], x, 5, keep=keep)[0]
    ix.upsert("id8", x[8], "relabelled")  # changed label: the stale Annoy item is dropped
    hit = ix.search(x[8], 1)
    assert hit.ids == [["id8"]] and hit.labels == [["relabelled"]]
    assert calls == [] and ix.version == v0


def test_delete_stops_influencing_the_vote():
    ix = LiveIndex(2, auto_build=False)
    ix.upsert("a", [1, 0], "cat")
    ix.upsert("b", [0.9, 0.1], "dog")
    assert ix.search([[1, 0]], 1).labels == [["cat"]]
    assert ix.delete("a") and not ix.delete("a")
    assert ix.search([[1, 0]], 2).labels == [["dog"]]
    assert ix.size == 1 and "a" not in ix


def test_identical_upsert_is_a_no_op():
    ix = LiveIndex(2, auto_build=False)
    assert ix.upsert("a", [1, 0], "cat", {"p": 1})
    g = ix.generation
    assert not ix.upsert("a", [1, 0], "cat", {"p": 1})
    assert ix.generation == g and ix.pending_changes == 1
    assert ix.upsert("a", [1, 0], "cat", {"p": 2})  # properties matter for filters


def test_version_increments_and_files_are_replaced(tmp_path):
    ix = LiveIndex(DIM, exact_threshold=10, data_dir=tmp_path, name="A.b", auto_build=False)
    x, labels = data(60)
    fill(ix, x, labels)
    assert ix.version == 0
    assert ix.build_now() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.b.v1.ann", "A.b.v1.npz"]
    ix.upsert("extra", x[0], "c0")
    assert ix.build_now() == 2 and ix.version == 2
    assert ix.search(x[:1], 1).version == 2
    # v1 deleted after the swap, no temp files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.b.v2.ann", "A.b.v2.npz"]
    ids, _, info = files.read_sidecar(tmp_path / "A.b.v2.npz")
    assert len(ids) == 61 and info["version"] == 2 and info["metric"] == "cosine"
    ix.close()


def test_a_written_version_is_never_overwritten(tmp_path):
    ix = LiveIndex(DIM, exact_threshold=10, data_dir=tmp_path, name="A.b", auto_build=False)
    x, labels = data(30)
    fill(ix, x, labels)
    ix.build_now()
    forest = ix._built.forest  # noqa: SLF001 - the mmapped forest
    with pytest.raises(FileExistsError):
        files.write_snapshot(tmp_path, "A.b", 1, forest, [], 0, {})
    ix.close()


def test_crash_leftovers_are_cleaned_and_versions_move_on(tmp_path):
    (tmp_path / "A.b.v7.ann.tmp-123").write_bytes(b"half")
    (tmp_path / "A.b.v8.npz").write_bytes(b"sidecar without forest")
    (tmp_path / "A.bc.v9.ann").write_bytes(b"another index: untouched")
    ix = LiveIndex(DIM, exact_threshold=10, data_dir=tmp_path, name="A.b", auto_build=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.bc.v9.ann"]
    x, labels = data(30)
    fill(ix, x, labels)
    assert ix.build_now() == 9  # numbers are never reused
    ix.close()


def test_reload_reuses_the_saved_snapshot(tmp_path):
    x, labels = data(200)
    q, _ = data(20, seed=5)
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="R.p",
                   rebuild_quiet_seconds=0.05)
    fill(ix, x, labels)
    assert ix.wait_idle(30)
    before, version = ix.search(q, 4), ix.version
    ix.close()
    files_before = sorted(p.name for p in tmp_path.iterdir())
    # worker restart: the table re-upserts every example, in another order
    ix2 = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="R.p",
                    rebuild_quiet_seconds=0.05)
    assert ix2.version == version
    order = np.random.default_rng(3).permutation(len(x))
    for i in order:
        ix2.upsert(f"id{i}", x[i], labels[i], {"n": int(i), "even": i % 2 == 0})
    assert ix2.wait_idle(30)
    assert ix2.version == version  # adopted: no rebuild
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
    assert ix2.overlay_size == 0 and ix2.pending_changes == 0
    assert ix2.search(q, 4).ids == before.ids
    ix2.close()


def test_reload_with_a_changed_set_rebuilds(tmp_path):
    x, labels = data(120)
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="R.p", auto_build=False)
    fill(ix, x, labels)
    assert ix.build_now() == 1
    ix.close()
    ix2 = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="R.p",
                    rebuild_quiet_seconds=0.05)
    fill(ix2, x[:100], labels[:100])  # 20 examples were deleted while we were down
    assert ix2.wait_idle(30)
    assert ix2.version == 2 and ix2.overlay_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.p.v2.ann", "R.p.v2.npz"]
    ix2.close()


def test_idle_means_the_older_versions_files_are_gone(tmp_path, monkeypatch):
    # The removal of the superseded files runs after the new version is installed; a slow disk
    # (CI once) let wait_idle return in between. Slowed down here, it must still be covered.
    remove = files.remove_stale

    def slow_remove(*args, **kwargs):
        time.sleep(0.3)
        return remove(*args, **kwargs)

    x, labels = data(120)
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="S.p", rebuild_quiet_seconds=0.05)
    fill(ix, x[:100], labels[:100])
    assert ix.wait_idle(30) and ix.version == 1
    monkeypatch.setattr(files, "remove_stale", slow_remove)
    fill(ix, x[100:], labels[100:])
    assert ix.wait_idle(30) and ix.version == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["S.p.v2.ann", "S.p.v2.npz"]
    ix.close()


def test_training_set_where_on_annoy_path(annoy_index, monkeypatch):
    ix, x, _ = annoy_index
    calls = count_exact_calls(ix, monkeypatch)
    q, _ = data(30, seed=11)
    even = compile_where({"path": ["even"], "operator": "Equal", "valueBoolean": True})
    res = ix.search(q, 5, even)  # 150 pass > threshold 50: Annoy, over-fetched
    keep = np.arange(len(x)) % 2 == 0
    assert res.ids == exact_ids(q, x, 5, keep=keep)[0]
    assert calls == []
    few = compile_where({"path": ["n"], "operator": "LessThan", "valueInt": 12})
    res = ix.search(q, 5, few)  # 12 pass: exact over the filtered set
    assert res.ids == exact_ids(q, x, 5, keep=np.arange(len(x)) < 12)[0]
    none = compile_where({"path": ["n"], "operator": "LessThan", "valueInt": 0})
    assert ix.search(q[:2], 5, none).ids == [[], []]


def test_mutations_during_a_build_survive_the_swap(tmp_path):
    x, labels = data(100)
    ix = LiveIndex(DIM, exact_threshold=10, data_dir=tmp_path, name="M.p", auto_build=False)
    fill(ix, x, labels)
    original = ix._make_forest

    late = x[3] + 0.2 * np.random.default_rng(1).normal(size=DIM).astype(np.float32)

    def slow_build(rows, vecs, target=None):  # the stream keeps writing while Annoy builds
        ix.upsert("late", late, "late")
        ix.delete("id5")
        return original(rows, vecs, target)
    ix._make_forest = slow_build
    assert ix.build_now() == 1
    assert ix.pending_changes == 2 and ix.overlay_size == 1
    assert ix.search(late, 1).ids == [["late"]]
    assert "id5" not in ix.search(x[5], 3).ids[0]
    ix.close()


def test_compaction_keeps_results_correct(tmp_path, monkeypatch):
    x, labels = data(300)
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="C.p", auto_build=False,
                   compact_min_dead=10)
    fill(ix, x, labels)
    ix.build_now()
    x2 = x.copy()
    for shift in (0.01, 0.02):  # replace the even half twice: 300 dead rows >= 300 live
        for i in range(0, 300, 2):
            x2[i] = x[i] + shift
            ix.upsert(f"id{i}", x2[i], labels[i])
    assert ix._store.n == 300 and ix._store.dead == 0  # compacted (noqa: SLF001)
    assert ix.overlay_size == 150  # odd half still served by the remapped snapshot
    calls = count_exact_calls(ix, monkeypatch)
    q, _ = data(20, seed=4)
    assert ix.search(q, 5).ids == exact_ids(q, x2, 5)[0]
    assert calls == []
    ix.close()


def test_euclidean_annoy_path(tmp_path):
    x, labels = data(200)
    ix = LiveIndex(DIM, metric="euclidean", exact_threshold=20, data_dir=tmp_path, name="E.p",
                   auto_build=False)
    fill(ix, x, labels)
    ix.build_now()
    q, _ = data(20, seed=2)
    res = ix.search(q, 3)
    want, dist = exact_ids(q, x, 3, "euclidean")
    assert res.ids == want
    np.testing.assert_allclose(np.vstack(res.distances), dist, rtol=1e-5)
    ix.close()


def test_concurrent_search_and_upsert(annoy_index):
    ix, x, labels = annoy_index
    errors = []

    def reader():
        try:
            for _ in range(30):
                res = ix.search(x[:20], 3)
                assert all(len(r) == 3 for r in res.ids)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(400):
        ix.upsert(f"w{i}", x[i % 300] + 0.001 * i, "w")
        if i % 3 == 0:
            ix.delete(f"w{i - 3}")
    for t in threads:
        t.join()
    assert errors == []
    assert ix.wait_idle(30)


def test_dimension_and_value_checks():
    ix = LiveIndex(3, auto_build=False)
    with pytest.raises(DimensionError) as err:
        ix.upsert("a", [1.0, 2.0], "x")
    assert (err.value.expected, err.value.actual) == (3, 2)
    with pytest.raises(ValueError):
        ix.upsert("a", [1.0, float("nan"), 0.0], "x")
    with pytest.raises(DimensionError):
        ix.search([[1.0, 2.0]], 1)


def test_manager_routes_examples_to_every_labelled_property(tmp_path):
    m = IndexManager(tmp_path, IndexSettings(auto_build=False))
    m.upsert(Example("e1", "Article", [1, 0, 0], {"lang": "en"},
                     {"topic": "sport", "tone": "happy"}))
    m.upsert({"id": "e2", "class": "Article", "vector": [0, 1, 0], "labels": {"topic": "tech"}})
    assert sorted(m.keys()) == [("Article", "tone"), ("Article", "topic")]
    assert m.get("Article", "topic").size == 2 and m.get("Article", "tone").size == 1
    assert m.holding("e1") == {("Article", "topic"), ("Article", "tone")}
    # re-labelled with fewer properties: leaves the "tone" index
    assert m.upsert(Example("e1", "Article", [1, 0, 0], {"lang": "en"}, {"topic": "sport"})) \
        == [("Article", "tone")]
    assert m.get("Article", "tone").size == 0
    assert m.delete("e1") == [("Article", "topic")] and m.delete("e1") == []
    assert m.get("Article", "topic").size == 1
    with pytest.raises(DimensionError) as err:
        m.upsert(Example("e3", "Article", [1, 0], {}, {"topic": "x"}))
    assert (err.value.expected, err.value.actual) == (3, 2) and "Article/e3" in str(err.value)
    assert m.get("Article", "topic").size == 1  # nothing changed
    m.upsert(Example("p1", "Photo", [1, 0], {}, {"kind": "cat"}))  # other class, other dim
    assert m.dim("Photo") == 2
    with pytest.raises(ValueError):
        m.upsert(Example("e4", "Article", [1, 0, 0], {}, {"topic": 7}))
    m.close()


def test_manager_fixed_dims():
    m = IndexManager(dims={"Article": 4})
    with pytest.raises(DimensionError):
        m.upsert(Example("e1", "Article", [1, 0, 0], {}, {"topic": "a"}))
    assert m.keys() == []
    m.close()
