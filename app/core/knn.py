"""kNN classification: distances, exact search, the vote and Weaviate's kNN meta.

Distances (always reported in OUR metric, whatever index found the neighbours):

* ``cosine``: ``(1 - cos(q, x)) / 2`` in ``[0, 1]``; 0 = same direction, 1 = opposite.
  A zero vector has no direction: it is treated as orthogonal to everything (its cosine
  is 0, so its distance is 0.5), including another zero vector.
* ``euclidean``: the L2 distance ``||q - x||``.

Search ranks with one float32 matrix product per batch (queries are chunked only to bound
memory), then recomputes the distances of the chosen ``k`` exactly in float64 from the
vectors, so the meta does not carry the ``|q|^2 + |x|^2 - 2 q.x`` cancellation error.
Rows are sorted by distance, then by base index.

The vote (one event's neighbours): the label with most neighbours wins. Ties are broken
deterministically by (1) the smaller summed distance, then (2) the smaller closest
distance, then (3) the lexicographically smallest label.

Confidence is the distance-weighted vote share of the winner: ``w_i = 1 / (d_i + eps)``,
``confidence = sum(w_i for winners) / sum(w_i)``, with ``eps = 1e-6 * max_i d_i`` so the
share does not depend on the scale of the distances (cosine and euclidean alike) and a
neighbour at distance 0 dominates without dividing by zero. If every neighbour is at
distance 0 the weights are equal and the confidence is the plain vote share.

>>> v = vote(["spam", "ham", "spam"], [0.1, 0.2, 0.3])
>>> v.label, v.meta["winningCount"], v.meta["closestLosingDistance"]
('spam', 2, 0.2)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, cast

import numpy as np

from app.core.filters import Predicate, compile_where

Metric = Literal["cosine", "euclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean")
EPS_REL = 1e-6
META_KEYS = ("overallCount", "winningCount", "losingCount", "meanWinningDistance",
             "closestWinningDistance", "meanLosingDistance", "closestLosingDistance",
             "closestOverallDistance")
# Bound the (n, m) distance matrix of one matrix product to ~64 MB of float32.
_MAX_MATRIX_ELEMS = 16_000_000

__all__ = ["EPS_REL", "META_KEYS", "METRICS", "KnnOutcome", "KnnVote", "Metric",
           "NeighbourSource", "Neighbours", "check_metric", "classify_batch",
           "exact_search", "normalize", "pair_distances", "vote"]


def cosine_distance(cos: float) -> float:
    """Labelstream's one cosine distance, ``(1 - cos) / 2`` in ``[0, 1]``, for kNN and zero-shot alike.

    Weaviate reports ``1 - cos`` in ``[0, 2]``: halve a Weaviate distance to compare.

    >>> cosine_distance(1.0), cosine_distance(0.0), cosine_distance(-1.0)
    (0.0, 0.5, 1.0)
    """
    return min(1.0, max(0.0, (1.0 - cos) / 2.0))


def check_metric(metric: str) -> Metric:
    """``metric`` as a :data:`Metric`, or ``ValueError``."""
    if metric in METRICS:
        return cast(Metric, metric)
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32; zero rows stay zero (distance 0.5 to all).

    >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def pair_distances(queries: np.ndarray, cands: np.ndarray, metric: Metric,
                   *, normalized: bool = False) -> np.ndarray:
    """Exact float64 distances of ``queries (n, d)`` to their own ``cands (n, c, d)``.

    >>> pair_distances(np.array([[1.0, 0.0]]), np.array([[[0.0, 1.0], [-1.0, 0.0]]]), "cosine")
    array([[0.5, 1. ]])
    """
    check_metric(metric)
    q = np.asarray(queries, dtype=np.float64)
    c = np.asarray(cands, dtype=np.float64)
    if metric == "euclidean":
        return np.linalg.norm(c - q[:, None, :], axis=-1)
    if not normalized:
        q, c = normalize(q).astype(np.float64), normalize(c).astype(np.float64)
    cos = np.einsum("nd,ncd->nc", q, c)
    return np.clip((1.0 - cos) / 2.0, 0.0, 1.0)


def _rank_matrix(qs: np.ndarray, base: np.ndarray, base_sq: np.ndarray | None,
                 metric: str, inv_norms: np.ndarray | None = None) -> np.ndarray:
    """A matrix that ranks like the distance (monotone in it), from one product."""
    prod = qs @ base.T
    if metric == "cosine":
        return -prod if inv_norms is None else -(prod * inv_norms[None, :])
    # ||q - x||^2 up to the per-row constant ||q||^2, which does not change a row's ranking.
    assert base_sq is not None, "euclidean ranking needs the base rows' squared norms"
    return base_sq[None, :] - 2.0 * prod


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k smallest scores per row; ties at the cut go to lower index."""
    n, m = scores.shape
    if k >= m:
        return np.argsort(scores, axis=1, kind="stable")
    part = np.argpartition(scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).max(axis=1)
    crowded = np.flatnonzero((scores <= kth[:, None]).sum(axis=1) > k)
    for r in crowded:  # rare: exact ties straddle the cut; pick the lowest indices
        part[r] = np.argsort(scores[r], kind="stable")[:k]
    return part


def exact_search(queries: np.ndarray, base: np.ndarray, k: int, metric: Metric,
                 *, normalized: bool = False, out_dtype: Any = np.float32,
                 base_norms: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force kNN: ``(idx (n, k') int64, dist (n, k'))`` with ``k' = min(k, m)``.

    ``normalized=True`` says both inputs are already unit rows (cosine), skipping that pass.
    ``base_norms`` (the L2 norm of each raw base row, kept by the caller) lets one raw
    store serve both metrics: cosine ranks ``q.x / |x|`` without a normalised copy of
    ``base``, euclidean skips recomputing ``|x|^2``.

    >>> b = np.array([[0.0, 2.0], [3.0, 0.0], [1.0, 1.0]])
    >>> exact_search(np.array([[1.0, 0.0]]), b, 2, "cosine",
    ...              base_norms=np.linalg.norm(b, axis=1))[0].tolist()
    [[1, 2]]

    >>> idx, dist = exact_search(np.array([[1.0, 0.0]]),
    ...                          np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), 2, "cosine")
    >>> idx.tolist(), dist.astype(float).round(4).tolist()
    ([[1, 2]], [[0.0, 0.1464]])
    """
    check_metric(metric)
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    b = np.atleast_2d(np.asarray(base, dtype=np.float32))
    n, m = q.shape[0], b.shape[0] if b.size else 0
    kk = max(0, min(int(k), m))
    idx = np.zeros((n, kk), dtype=np.int64)
    dist = np.zeros((n, kk), dtype=np.float64)
    if n == 0 or kk == 0:
        return idx, dist.astype(out_dtype)
    if q.shape[1] != b.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]}, base has {b.shape[1]}")
    norms = None if base_norms is None else np.asarray(base_norms, dtype=np.float32)
    raw_cos = metric == "cosine" and not normalized and norms is not None
    inv_norms = None
    if raw_cos and norms is not None:  # zero rows get 1/|x| = 0: cosine 0, as normalize() treats them
        inv_norms = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        q = normalize(q)
    elif metric == "cosine" and not normalized:
        q, b = normalize(q), normalize(b)  # once per call, not per chunk
    base_sq = None
    if metric == "euclidean":
        base_sq = np.square(norms) if norms is not None else np.einsum("ij,ij->i", b, b)
    step = max(1, _MAX_MATRIX_ELEMS // m)
    for s in range(0, n, step):
        qs = q[s:s + step]
        top = _top_k(_rank_matrix(qs, b, base_sq, metric, inv_norms), kk)
        d = pair_distances(qs, b[top], metric, normalized=not raw_cos)
        order = np.lexsort((top, d), axis=-1)  # by distance, then by index
        idx[s:s + step] = np.take_along_axis(top, order, axis=1)
        dist[s:s + step] = np.take_along_axis(d, order, axis=1)
    return idx, dist.astype(out_dtype)


class KnnVote(NamedTuple):
    """The outcome of one event's vote; ``label`` is None when there were no neighbours."""

    label: str | None
    meta: dict[str, Any]
    confidence: float


def vote(labels: Sequence[str], distances: Sequence[float]) -> KnnVote:
    """Majority vote with Weaviate's kNN meta and a distance-weighted confidence.

    >>> v = vote(["a", "b"], [0.2, 0.2])  # 1-1, equal sums and closest: "a" < "b"
    >>> v.label, round(v.confidence, 6)
    ('a', 0.5)
    >>> vote(["a", "a"], [0.1, 0.3]).meta["meanWinningDistance"], vote(["a", "a"], [0.1, 0.3]).confidence
    (0.2, 1.0)
    """
    if len(labels) != len(distances):
        raise ValueError(f"{len(labels)} labels but {len(distances)} distances")
    # Plain floats, not numpy: k is small, and numpy's per-call overhead on 5-element arrays
    # was most of the vote's cost (it runs once per event and classifier).
    d = [float(x) for x in distances]
    n = len(d)
    if not n:
        empty = dict.fromkeys(META_KEYS)
        empty.update(overallCount=0, winningCount=0, losingCount=0)
        return KnnVote(None, empty, 0.0)
    closest = min(d)
    first = labels[0]
    if labels.count(first) == n:
        # Unanimous (the common case): the weighted share is all the weight, exactly 1.0.
        return KnnVote(first, {
            "overallCount": n, "winningCount": n, "losingCount": 0,
            "meanWinningDistance": sum(d) / n, "closestWinningDistance": closest,
            "meanLosingDistance": None, "closestLosingDistance": None, "closestOverallDistance": closest,
        }, 1.0)
    groups: dict[str, list[float]] = {}
    for lab, x in zip(labels, d):
        if lab in groups:
            groups[lab].append(x)
        else:
            groups[lab] = [x]
    # Most neighbours, then smaller summed distance, then smaller closest, then the label.
    best = min((-len(xs), sum(xs), min(xs), lab) for lab, xs in groups.items())
    winner = best[3]
    wd = groups[winner]
    ld = [x for lab, x in zip(labels, d) if lab != winner]
    scale = max(d)
    eps = EPS_REL * scale
    weights = [1.0] * n if scale == 0.0 else [1.0 / (x + eps) for x in d]
    meta = {
        "overallCount": n,
        "winningCount": len(wd),
        "losingCount": len(ld),
        "meanWinningDistance": sum(wd) / len(wd),
        "closestWinningDistance": min(wd),
        "meanLosingDistance": sum(ld) / len(ld),
        "closestLosingDistance": min(ld),
        "closestOverallDistance": closest,
    }
    won = sum(w for lab, w in zip(labels, weights) if lab == winner)
    return KnnVote(winner, meta, won / sum(weights))


@dataclass(frozen=True)
class Neighbours:
    """A batch search result: row i holds query i's neighbours, nearest first (ragged)."""

    ids: list[list[str]]
    labels: list[list[str]]
    distances: list[np.ndarray]
    version: int = 0


class NeighbourSource(Protocol):
    """What :func:`classify_batch` needs from an index (``app.index.LiveIndex`` is one)."""

    def search(self, queries: np.ndarray, k: int,
               where_fn: Predicate | None = None) -> Neighbours: ...


class KnnOutcome(NamedTuple):
    """One event's classification: the vote, its neighbours and the index version used."""

    vote: KnnVote
    neighbours: list[dict[str, Any]]
    index_version: int = 0

    @property
    def label(self) -> str | None:
        return self.vote.label

    @property
    def meta(self) -> dict[str, Any]:
        return self.vote.meta

    @property
    def confidence(self) -> float:
        return self.vote.confidence


def classify_batch(queries: np.ndarray, index: NeighbourSource | None, k: int = 3,
                   train_filter: Predicate | Mapping[str, Any] | None = None,
                   ) -> list[KnnOutcome]:
    """Classify ``queries (n, d)`` by their k nearest training examples; one outcome per row.

    ``train_filter`` is Weaviate's ``trainingSetWhere``: a compiled predicate (compile it
    once per classifier) or a where body. ``index=None`` (no training data) yields
    outcomes with ``label=None``.

    >>> class Two:
    ...     def search(self, queries, k, where_fn=None):
    ...         return Neighbours([["e1", "e2"]], [["cat", "dog"]], [np.array([0.1, 0.3])], 7)
    >>> out = classify_batch(np.zeros((1, 4)), Two(), k=2)[0]
    >>> out.label, out.index_version, out.neighbours[1]
    ('cat', 7, {'id': 'e2', 'label': 'dog', 'distance': 0.3})
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    if index is None:
        return [KnnOutcome(vote([], []), []) for _ in range(q.shape[0])]
    where_fn: Callable[[Mapping[str, Any]], bool] | None
    where_fn = compile_where(train_filter) if isinstance(train_filter, Mapping) else train_filter
    found = index.search(q, int(k), where_fn)
    outcomes = []
    for ids, labs, dists in zip(found.ids, found.labels, found.distances):
        ds = dists.tolist() if isinstance(dists, np.ndarray) else [float(x) for x in dists]  # the same floats
        neigh = [{"id": i, "label": lab, "distance": x} for i, lab, x in zip(ids, labs, ds)]
        outcomes.append(KnnOutcome(vote(labs, ds), neigh, found.version))
    return outcomes
