"""Snapshots built on disk (``AnnoyIndex.on_disk_build``): ``AnnoyIndex.save`` holds the GIL while it
writes the whole file, which stopped the worker's event loop for seconds per rebuild at 100k x 384-d
(bench/build_lag.py), so a build with a data dir writes its file inside ``build`` instead."""

import numpy as np
import pytest

from app.index import files
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
