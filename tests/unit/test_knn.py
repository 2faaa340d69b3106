"""kNN core: distance conventions, exact search, the vote, Weaviate meta, confidence."""
import math

import numpy as np
import pytest

import app.core.knn as knn
from app.core.knn import (META_KEYS, Neighbours, classify_batch, exact_search, normalize,
                          pair_distances, vote)
from app.index.live import LiveIndex

# q = (1, 0) against five labelled vectors; cosine distances worked out by hand:
#   e1 ( 1, 0) A: cos 1       -> (1 - 1)/2       = 0
#   e3 ( 1, 1) A: cos 1/sqrt2 -> (1 - .70710678)/2 = 0.14644661
#   e5 ( 3, 4) B: cos 3/5     -> (1 - 0.6)/2     = 0.2
#   e2 ( 0, 1) B: cos 0       -> 0.5
#   e4 (-1, 0) B: cos -1      -> 1
Q = np.array([[1.0, 0.0]], dtype=np.float32)
BASE = np.array([[1, 0], [0, 1], [1, 1], [-1, 0], [3, 4]], dtype=np.float32)
IDS = ["e1", "e2", "e3", "e4", "e5"]
LABELS = ["A", "B", "A", "B", "B"]


def test_cosine_convention():
    d = pair_distances(np.array([[1.0, 0.0]]),
                       np.array([[[2.0, 0.0], [0.0, 5.0], [-3.0, 0.0], [0.0, 0.0]]]), "cosine")
    assert d.tolist() == [[0.0, 0.5, 1.0, 0.5]]  # same, orthogonal, opposite, zero vector


def test_zero_query_is_half_from_everything():
    idx, dist = exact_search(np.zeros((1, 2)), BASE, 5, "cosine")
    assert dist.tolist() == [[0.5] * 5]
    assert idx.tolist() == [[0, 1, 2, 3, 4]]  # all tied: by index


def test_normalize_once_keeps_zero_rows():
    n = normalize(np.array([[0.0, 0.0], [0.0, 2.0]]))
    assert n.dtype == np.float32 and n.tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_exact_search_cosine_hand_values():
    idx, dist = exact_search(Q, BASE, 5, "cosine")
    assert idx.dtype == np.int64 and dist.dtype == np.float32
    assert idx.tolist() == [[0, 2, 4, 1, 3]]
    np.testing.assert_allclose(dist[0], [0.0, 0.14644661, 0.2, 0.5, 1.0], atol=1e-6)


def test_exact_search_euclidean_hand_values():
    base = np.array([[3, 4], [1, 0], [0, 2]], dtype=np.float32)
    idx, dist = exact_search(np.zeros((1, 2)), base, 2, "euclidean")
    assert idx.tolist() == [[1, 2]]
    assert dist.tolist() == [[1.0, 2.0]]


def test_exact_search_k_larger_than_base_and_empty_base():
    idx, dist = exact_search(Q, BASE[:2], 10, "cosine")
    assert idx.shape == (1, 2) and dist.shape == (1, 2)
    idx, dist = exact_search(Q, np.zeros((0, 2)), 3, "cosine")
    assert idx.shape == (1, 0)


def test_exact_search_ties_go_to_lower_index_even_at_the_cut():
    base = np.tile([[0.3, 0.7]], (10, 1)).astype(np.float32)
    for metric in ("cosine", "euclidean"):
        idx, dist = exact_search(np.array([[0.1, 0.2]]), base, 3, metric)
        assert idx.tolist() == [[0, 1, 2]]
        assert dist[0, 0] == dist[0, 2]


def test_duplicate_vector_distance_is_exactly_zero_euclidean():
    # the |q|^2+|x|^2-2q.x shortcut loses this; the exact recompute does not
    x = np.array([[1000.1, -2000.3, 3000.7]], dtype=np.float32)
    _, dist = exact_search(x, np.vstack([x, x + 1]), 1, "euclidean")
    assert dist[0, 0] == 0.0


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_search_matches_brute_force_and_chunking(metric, monkeypatch):
    rng = np.random.default_rng(1)
    q, b = rng.normal(size=(37, 8)).astype(np.float32), rng.normal(size=(101, 8)).astype(np.float32)
    if metric == "cosine":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        full = (1 - qn.astype(np.float64) @ bn.T.astype(np.float64)) / 2
    else:
        full = np.linalg.norm(q[:, None, :].astype(np.float64) - b[None], axis=-1)
    want = np.argsort(full, axis=1, kind="stable")[:, :5]
    idx, dist = exact_search(q, b, 5, metric)
    assert (idx == want).all()
    np.testing.assert_allclose(dist, np.take_along_axis(full, want, 1), atol=1e-6)
    monkeypatch.setattr(knn, "_MAX_MATRIX_ELEMS", 250)  # 2 queries per product
    idx2, dist2 = exact_search(q, b, 5, metric)
    assert (idx2 == idx).all() and np.allclose(dist2, dist)


def test_vote_meta_by_hand():
    # k = 5 on the example above: A at 0 and 0.1464, B at 0.2, 0.5, 1 -> B wins 3 to 2.
    d = [0.0, 0.14644661, 0.2, 0.5, 1.0]
    v = vote(["A", "A", "B", "B", "B"], d)
    assert v.label == "B"
    assert tuple(v.meta) == META_KEYS
    assert v.meta["overallCount"] == 5
    assert v.meta["winningCount"] == 3
    assert v.meta["losingCount"] == 2
    assert v.meta["meanWinningDistance"] == pytest.approx((0.2 + 0.5 + 1.0) / 3)  # 0.566667
    assert v.meta["closestWinningDistance"] == 0.2
    assert v.meta["meanLosingDistance"] == pytest.approx(0.0732233, abs=1e-7)
    assert v.meta["closestLosingDistance"] == 0.0
    assert v.meta["closestOverallDistance"] == 0.0
    # eps = 1e-6 * 1.0; the exact-match loser (weight 1e6) swamps the winners' 5 + 2 + 1
    assert v.confidence == pytest.approx(8.0 / (1e6 + 1 / (0.14644661 + 1e-6) + 8.0), rel=1e-4)


def test_vote_without_losers():
    v = vote(["x", "x"], [0.25, 0.75])
    assert v.meta == {"overallCount": 2, "winningCount": 2, "losingCount": 0,
                      "meanWinningDistance": 0.5, "closestWinningDistance": 0.25,
                      "meanLosingDistance": None, "closestLosingDistance": None,
                      "closestOverallDistance": 0.25}
    assert v.confidence == 1.0


def test_vote_empty():
    v = vote([], [])
    assert v.label is None and v.confidence == 0.0
    assert v.meta["overallCount"] == 0 and v.meta["closestOverallDistance"] is None


def test_confidence_is_distance_weighted_share():
    # w = 1/(d + 4e-7): a 1/0.1 + 1/0.2 = 15, b 1/0.4 = 2.5 -> 15 / 17.5
    v = vote(["a", "a", "b"], [0.1, 0.2, 0.4])
    assert v.confidence == pytest.approx(15 / 17.5, rel=1e-5)
    assert vote(["a", "b", "a"], [0.0, 0.0, 0.0]).confidence == pytest.approx(2 / 3)
    scaled = vote(["a", "a", "b"], [10.0, 20.0, 40.0])  # euclidean scale: same share
    assert scaled.confidence == pytest.approx(v.confidence, rel=1e-9)


def test_tie_break_summed_distance():
    assert vote(["a", "b", "a", "b"], [0.1, 0.2, 0.5, 0.3]).label == "b"  # 0.5 < 0.6


def test_tie_break_closest_distance():
    # counts 2-2, sums 0.5-0.5: "z" has the closer neighbour (0.1) and beats "b"
    assert vote(["z", "b", "z", "b"], [0.1, 0.2, 0.4, 0.3]).label == "z"


def test_tie_break_label_and_order_independence():
    assert vote(["b", "a"], [0.3, 0.3]).label == "a"
    assert vote(["a", "b"], [0.3, 0.3]).label == "a"
    labels, d = ["c", "a", "b", "c", "a", "b"], [0.1, 0.1, 0.1, 0.2, 0.2, 0.2]
    assert vote(labels, d).label == "a" == vote(labels[::-1], d[::-1]).label


def test_vote_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        vote(["a"], [0.1, 0.2])


def test_classify_batch_end_to_end_on_live_index():
    ix = LiveIndex(2, auto_build=False)
    for i, v, lab in zip(IDS, BASE, LABELS):
        ix.upsert(i, v, lab, {"n": int(i[1])})
    out = classify_batch(np.vstack([Q, [[0.0, 1.0]]]), ix, k=3)
    assert [o.label for o in out] == ["A", "B"]
    assert [n["id"] for n in out[0].neighbours] == ["e1", "e3", "e5"]
    assert out[0].neighbours[2] == {"id": "e5", "label": "B", "distance": pytest.approx(0.2)}
    assert out[0].meta["winningCount"] == 2 and out[0].meta["closestLosingDistance"] == \
        pytest.approx(0.2)
    assert out[0].index_version == 0
    # trainingSetWhere as a body: only e2, e4, e5 (n >= 4 or n == 2) -> all B
    where = {"operator": "Or", "operands": [
        {"path": ["n"], "operator": "GreaterThanEqual", "valueInt": 4},
        {"path": ["n"], "operator": "Equal", "valueInt": 2}]}
    f = classify_batch(Q, ix, k=3, train_filter=where)[0]
    assert [n["id"] for n in f.neighbours] == ["e5", "e2", "e4"] and f.label == "B"
    ix.close()


def test_classify_batch_without_index_or_neighbours():
    assert [o.label for o in classify_batch(np.zeros((2, 3)), None)] == [None, None]

    class Empty:
        def search(self, queries, k, where_fn=None):
            return Neighbours([[]], [[]], [np.zeros(0)], 3)
    out = classify_batch(np.zeros((1, 3)), Empty())[0]
    assert out.label is None and out.neighbours == [] and out.index_version == 3
    with pytest.raises(ValueError):
        classify_batch(np.zeros((1, 3)), None, k=0)


def test_confidence_bounds_random():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        v = vote([str(x) for x in rng.integers(0, 3, n)], rng.random(n).tolist())
        assert 0.0 <= v.confidence <= 1.0 and not math.isnan(v.confidence)
        assert v.meta["winningCount"] + v.meta["losingCount"] == n


def _numpy_vote(labels, distances):
    """The vote as it was written with numpy arrays (before the plain-float rewrite): the reference."""
    d = np.asarray(distances, dtype=np.float64)
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    winner = min(groups, key=lambda lab: (-len(groups[lab]), float(d[groups[lab]].sum()),
                                          float(d[groups[lab]].min()), lab))
    win = np.zeros(d.size, dtype=bool)
    win[groups[winner]] = True
    scale = float(d.max())
    weights = np.ones_like(d) if scale == 0.0 else 1.0 / (d + 1e-6 * scale)
    wd, ld = d[win], d[~win]
    return winner, float(weights[win].sum() / weights.sum()), (
        float(wd.mean()), float(wd.min()), float(ld.mean()) if ld.size else None, float(ld.min()) if ld.size else None)


def test_vote_equals_the_numpy_reference_on_random_neighbourhoods():
    rng = np.random.default_rng(11)
    for _ in range(2000):
        k = int(rng.integers(1, 40))
        labels = [f"l{x}" for x in rng.integers(0, 4, k)]
        d = np.round(rng.random(k), int(rng.integers(1, 4))).tolist()  # rounding makes ties common
        if rng.random() < 0.05:
            d = [0.0] * k
        v = vote(labels, d)
        label, conf, (mw, cw, ml, cl) = _numpy_vote(labels, d)
        assert v.label == label
        assert v.confidence == pytest.approx(conf, rel=1e-12, abs=1e-15)
        assert v.meta["meanWinningDistance"] == pytest.approx(mw, rel=1e-12)
        assert v.meta["closestWinningDistance"] == cw and v.meta["closestLosingDistance"] == cl
        assert (v.meta["meanLosingDistance"] is None) == (ml is None)


def test_a_unanimous_vote_equals_the_reference_and_is_certain():
    rng = np.random.default_rng(12)
    for _ in range(300):
        k = int(rng.integers(1, 12))
        d = np.round(rng.random(k), 2).tolist() if rng.random() < 0.9 else [0.0] * k
        v = vote(["only"] * k, d)
        label, conf, (mw, cw, ml, cl) = _numpy_vote(["only"] * k, d)
        assert (v.label, v.confidence, ml, cl) == (label, 1.0, None, None) and conf == pytest.approx(1.0)
        assert v.meta == {"overallCount": k, "winningCount": k, "losingCount": 0, "meanWinningDistance": sum(d) / k,
                          "closestWinningDistance": cw, "meanLosingDistance": None, "closestLosingDistance": None,
                          "closestOverallDistance": min(d)}
        assert list(v.meta) == list(META_KEYS)  # Weaviate's key order, as the general path writes it
