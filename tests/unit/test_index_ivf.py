"""The inverted-file kind of index (``kind="ivf"``, FAISS IVF-Flat): calibrated recall, results that do not
depend on the batch, and the same life as an Annoy forest (built on disk by a child, adopted on restart,
overlay and deletes exact, a snapshot of the other kind never adopted)."""

from types import SimpleNamespace

import numpy as np
import pytest

from app.core.knn import exact_search
from app.index import files, forest_proc, ivf
from app.index.knn import KnnIndexes
from app.index.live import LiveIndex
from app.index.manager import Example

DIM = 32


def clustered(n, seed=0, centres=8, spread=1.2):
    """Gaussian clusters with isotropic noise: neighbours spread through a cluster, the hard case."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, DIM)).astype(np.float32)
    return c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, DIM), dtype=np.float32)


def recall(found, exact):
    return np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact, strict=True)])


def test_nprobe_is_calibrated_to_the_target_recall_and_scans_fewer_cells_than_exact():
    x = clustered(4300)
    x, q = x[:4000], x[4000:]  # held-out queries from the examples' own distribution
    forest = ivf.build(x, "cosine", target_recall=0.95)
    assert forest.index.nlist == ivf.default_nlist(4000) == 63
    assert 1 < forest.nprobe < forest.index.nlist  # calibrated: neither one cell nor all of them
    found = forest.search(q, 10)
    exact = exact_search(q, x, 10, "cosine")[0]
    assert recall(found.tolist(), exact.tolist()) >= 0.9  # held-out queries, near the calibrated 0.95
    assert recall(forest.search(q, 10, nprobe=1).tolist(), exact.tolist()) < 0.9  # one cell would not do


def test_a_query_gets_the_same_answer_alone_or_in_any_batch():
    x = clustered(3000, seed=1)
    forest = ivf.build(x, "euclidean")
    q = clustered(64, seed=2)
    together = forest.search(q, 20)
    alone = np.vstack([forest.search(q[i: i + 1], 20) for i in range(64)])
    np.testing.assert_array_equal(together, alone)


DATA = clustered(700, seed=3)
QUERIES = DATA[600:]  # held out, from the examples' own distribution


def filled(path, n=600, **kw):
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=path, name="D.p", auto_build=False, kind="ivf", **kw)
    for i, v in enumerate(DATA[:n]):
        ix.upsert(f"e{i}", v, f"l{i % 3}")
    return ix


@pytest.mark.parametrize("by_child", [True, False])
def test_a_live_index_builds_serves_and_adopts_its_inverted_file(tmp_path, monkeypatch, by_child):
    children = []
    real_popen = forest_proc.subprocess.Popen
    monkeypatch.setattr(forest_proc.subprocess, "Popen", lambda cmd, **kw: children.append(cmd) or real_popen(cmd, **kw))
    ix = filled(tmp_path, build_process=by_child)
    assert ix.build_now() == 1
    assert len(children) == int(by_child)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D.p.v1.ann", "D.p.v1.npz"]  # no scratch left
    assert isinstance(ix._built.forest, ivf.IvfForest) and ix._built.forest.get_n_items() == 600
    assert files.read_sidecar(tmp_path / "D.p.v1.npz")[2]["kind"] == "ivf"
    q = QUERIES[:40]
    exact = [[f"e{i}" for i in row] for row in exact_search(q, ix._store.vecs[:600], 5, "cosine")[0].tolist()]
    served = ix.search(q, 5)
    assert served.version == 1 and ix.counters["ivf"] == 40 and ix.counters["annoy"] == 0
    assert recall(served.ids, exact) >= 0.9
    ix.close()
    again = filled(tmp_path, build_process=by_child)  # a restart adopts the file: no build
    assert again.maybe_rebuild(wait=True) and again.version == 1
    assert again.search(q, 5).ids == served.ids and again.counters["ivf"] == 40
    again.close()


def test_the_overlay_and_deletes_are_exact_on_the_inverted_file_path(tmp_path):
    ix = filled(tmp_path)
    ix.build_now()
    x = DATA
    ix.upsert("late", x[7] * 1.001, "new")  # after the build: searched exactly beside the file's cells
    ix.delete("e7")
    res = ix.search(x[7], 3)
    assert res.ids[0][0] == "late" and "e7" not in res.ids[0] and res.labels[0][0] == "new"
    assert ix.counters["ivf"] == 1
    ix.close()


def test_a_snapshot_of_the_other_kind_is_rebuilt_not_adopted(tmp_path):
    ix = filled(tmp_path)
    assert ix.build_now() == 1
    ix.close()
    annoy = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="D.p", auto_build=False, kind="annoy")
    for i, v in enumerate(DATA[:600]):
        annoy.upsert(f"e{i}", v, f"l{i % 3}")
    assert not annoy.maybe_rebuild(wait=True) or annoy.version == 2  # never v1, the inverted file
    assert annoy.build_now() >= 2 and annoy.search(QUERIES[0], 3).version >= 2
    assert annoy.counters["annoy"] == 1 and annoy.counters["ivf"] == 0
    annoy.close()


def test_an_annoy_snapshot_from_before_kinds_existed_is_still_adopted(tmp_path, monkeypatch):
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="D.p", auto_build=False)
    monkeypatch.setattr(ix, "snapshot_meta", lambda: {"dim": DIM, "metric": "cosine", "n_trees": 32})  # no "kind"
    for i, v in enumerate(clustered(100)):
        ix.upsert(f"e{i}", v, "l")
    assert ix.build_now() == 1 and "kind" not in files.read_sidecar(tmp_path / "D.p.v1.npz")[2]
    ix.close()
    again = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="D.p", auto_build=False)
    for i, v in enumerate(clustered(100)):
        again.upsert(f"e{i}", v, "l")
    assert again.maybe_rebuild(wait=True) and again.version == 1  # adopted, not rebuilt
    again.close()


def test_the_worker_settings_choose_the_inverted_file(tmp_path):
    settings = SimpleNamespace(data_dir=tmp_path, knn_exact_threshold=50, annoy_n_trees=None, annoy_search_k=None,
                               index_build_process=True, knn_index="ivf", ivf_nlist=4, ivf_nprobe=2)
    k = KnnIndexes(settings)
    for i, v in enumerate(clustered(300)):
        k.upsert(Example(f"id{i}", "Doc", v, {}, {"topic": f"t{i % 4}"}))
    ix = k.get("Doc", "topic")
    assert ix.kind == "ivf" and ix.nprobe == 2
    ix.build_now()
    assert ix._built.forest.index.nlist == 4
    assert ix.search(clustered(5, seed=8), 3).version >= 1 and ix.counters["ivf"] == 5
    k.close()


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown index kind"):
        LiveIndex(4, kind="hnsw")


@pytest.mark.parametrize("kind", ["ivf", "annoy"])
def test_a_live_index_answers_a_query_alike_alone_or_in_a_batch(tmp_path, kind):
    ix = LiveIndex(DIM, exact_threshold=50, data_dir=tmp_path, name="D.p", auto_build=False, kind=kind)
    for i, v in enumerate(DATA[:600]):
        ix.upsert(f"e{i}", v, f"l{i % 3}")
    ix.build_now()
    ix.upsert("late", DATA[650], "new")  # an overlay row too
    together = ix.search(QUERIES, 5)
    for i, qv in enumerate(QUERIES):
        alone = ix.search(qv, 5)
        assert alone.ids[0] == together.ids[i]
        np.testing.assert_array_equal(alone.distances[0], together.distances[i])  # bit for bit
    assert ix.counters[kind] == 2 * len(QUERIES)
    ix.close()
