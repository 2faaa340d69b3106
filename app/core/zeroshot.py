"""Zero-shot scoring of a batch of event vectors against a compiled prompt taxonomy.

:func:`score` is the algorithm; everything after it only reshapes a :class:`Scores`:

* similarity of a leaf class = max cosine over its prompts (one ``Xn @ P.T`` for the batch);
  of a parent = max of its children's (recursively), with the matching prompt carried up;
* probability of a leaf = softmax of leaf similarities over the leaves of its head, at the
  taxonomy temperature (a flat taxonomy is one head); of a parent = sum of its leaves', so the
  roots of a head also sum to 1 (``P(category) = sum of P(subcategory)``).

Output shapes: :func:`weaviate_zeroshot` (nearest class per classify property, ``targetWhere``),
:func:`model_output` (Yandex: every class with a probability), :func:`multi_head_output` (Hive:
``{"class", "score"}``, each head sums to 1), :func:`best_paths` (category -> subcategory).

>>> import numpy as np
>>> from app.schemas.taxonomy import Taxonomy
>>> from app.core.taxonomy import compile_taxonomy
>>> ct = compile_taxonomy(Taxonomy(name="t", version=1, vectorizer="none", classes=[
...     {"name": "cat", "prompts": ["a cat", "a kitten"], "prompt_vectors": [[1, 0], [.6, .8]]},
...     {"name": "dog", "prompts": ["a dog"], "prompt_vectors": [[0, 1]]}]))
>>> s = score(np.array([[0.5, 0.9]]), ct)
>>> nearest(s)[0]["class"], nearest(s)[0]["prompt"]
('cat', 'a kitten')
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.heads import head_softmax
from app.core.knn import cosine_distance
from app.core.policies import PolicyDecision, evaluate_batch
from app.core.taxonomy import CompiledTaxonomy

__all__ = [
    "ScoreError", "Scores", "score", "probabilities", "candidate_mask", "nearest",
    "weaviate_zeroshot", "model_output", "multi_head_output", "best_paths", "decide",
]

#: ``targetWhere``: allowed class names, or a predicate on :meth:`CompiledTaxonomy.class_properties`.
TargetWhere = Collection[str] | Callable[[Mapping[str, Any]], bool] | None


class ScoreError(ValueError):
    """Event vectors that cannot be scored; ``reason`` matches the dead-letter codes."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class Scores:
    """Per-event scores of every class (columns in ``taxonomy.class_names`` order)."""

    taxonomy: CompiledTaxonomy
    similarity: np.ndarray  # (n, C) float32 cosine
    probability: np.ndarray  # (n, C) float64 head softmax (parents: sum of their leaves)
    prompt: np.ndarray  # (n, C) int64 index into taxonomy.prompts of the best-matching prompt
    temperature: float

    def __len__(self) -> int:
        return int(self.similarity.shape[0])


def score(X: np.ndarray, ct: CompiledTaxonomy, *, temperature: float | None = None) -> Scores:
    """Score ``X (n, d)`` (or one ``(d,)`` vector) against ``ct``; rows need not be normalised.

    A zero row has similarity 0 to every prompt (uniform probabilities within each head).
    Raises :class:`ScoreError` for a wrong dimension or non-finite values.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != ct.dim:
        raise ScoreError(
            "vector_dimension_mismatch",
            f"taxonomy {ct.name!r} v{ct.version} has dimension {ct.dim}, the vectors have shape {X.shape}",
        )
    if not np.isfinite(X).all():
        raise ScoreError("vector_not_finite", "the vectors hold NaN or infinity")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = X / np.where(norms > 0, norms, 1.0)

    S = Xn @ ct.P.T  # (n, p): the one matrix product of the batch
    starts = ct.prompt_starts
    n, p = S.shape
    L = starts.size
    if n == 0:
        leaf_sim = np.zeros((0, L), dtype=np.float32)
        leaf_prompt = np.zeros((0, L), dtype=np.int64)
    else:
        # Each leaf's prompts are one block of columns: max per block in one reduceat; the
        # matched prompt is the first column of its block that reaches that max.
        leaf_sim = np.maximum.reduceat(S, starts, axis=1)
        hit = S == leaf_sim[:, ct.prompt_leaf]
        leaf_prompt = np.minimum.reduceat(np.where(hit, np.arange(p), p), starts, axis=1)

    C = len(ct.class_names)
    sim = np.empty((n, C), dtype=np.float32)
    prompt = np.empty((n, C), dtype=np.int64)
    sim[:, ct.leaf_classes] = leaf_sim
    prompt[:, ct.leaf_classes] = leaf_prompt
    rows = np.arange(n)
    for c in np.flatnonzero(~ct.is_leaf):  # parents: the max over their (contiguous) leaves
        lo, hi = ct.leaf_range[c]
        a = lo + leaf_sim[:, lo:hi].argmax(axis=1)
        sim[:, c] = leaf_sim[rows, a]
        prompt[:, c] = leaf_prompt[rows, a]

    t = ct.temperature if temperature is None else float(temperature)
    return Scores(ct, sim, probabilities(sim, ct, t), prompt, t)


def probabilities(sim: np.ndarray, ct: CompiledTaxonomy, temperature: float) -> np.ndarray:
    """``(n, C)``: head softmax over leaves; a parent gets the sum of its leaves' probabilities."""
    leaf_prob = head_softmax(sim[:, ct.leaf_classes], ct.head_of_class[ct.leaf_classes], temperature)
    prob = np.empty(sim.shape, dtype=np.float64)
    prob[:, ct.leaf_classes] = leaf_prob
    inner = np.flatnonzero(~ct.is_leaf)
    if inner.size:
        # Leaves under a class are contiguous: a range sum is a difference of prefix sums.
        cs = np.concatenate([np.zeros((sim.shape[0], 1)), np.cumsum(leaf_prob, axis=1)], axis=1)
        lo, hi = ct.leaf_range[inner, 0], ct.leaf_range[inner, 1]
        prob[:, inner] = cs[:, hi] - cs[:, lo]
    return prob


def candidate_mask(ct: CompiledTaxonomy, target_where: TargetWhere = None, head: str | None = None) -> np.ndarray:
    """``(C,)`` bool: classes allowed by ``target_where`` (names or predicate) and in ``head``."""
    mask = np.ones(len(ct.class_names), dtype=bool)
    if head is not None:
        if head not in ct.heads:
            raise KeyError(f"taxonomy {ct.name!r} has no head {head!r} (heads: {list(ct.heads)})")
        mask &= ct.head_of_class == ct.heads.index(head)
    if target_where is None:
        return mask
    if callable(target_where):
        allowed = [bool(target_where(ct.class_properties(c))) for c in range(mask.size)]
    else:
        names = set(target_where)
        allowed = [n in names for n in ct.class_names]
    return mask & np.array(allowed, dtype=bool)


def _matches(scores: Scores, choice: np.ndarray) -> list[dict[str, Any] | None]:
    """Per event ``i``, the match of class ``choice[i]``: its path, similarity, probability and the
    prompt that matched. Gathered per batch (one fancy index per field), not per event."""
    ct = scores.taxonomy
    rows = np.arange(choice.shape[0])
    k = scores.prompt[rows, choice]
    names, paths, prompts = ct.class_names, ct.paths, ct.prompts
    return [{
        "class": names[c],
        "path": list(paths[c]),
        "similarity": sim,
        "distance": cosine_distance(sim),  # one cosine distance everywhere
        "probability": prob,
        "prompt": prompts[kk],
        "prompt_class": names[owner],  # the leaf whose prompt matched
        "prompt_index": at,  # index in its prompts
    } for c, kk, sim, prob, owner, at in zip(
        choice.tolist(), k.tolist(), scores.similarity[rows, choice].tolist(),
        scores.probability[rows, choice].tolist(), ct.prompt_class[k].tolist(), _prompt_index(ct, k).tolist())]


def _prompt_index(ct: CompiledTaxonomy, k: np.ndarray) -> np.ndarray:
    """Index of prompt ``k`` among its class's prompts."""
    return k - ct.prompt_starts[ct.prompt_leaf[k]]


def nearest(scores: Scores, candidates: np.ndarray | None = None) -> list[dict[str, Any] | None]:
    """Per event the most similar candidate class (``None`` if there is no candidate).

    Ties go to the deeper class, then the earlier one: a parent ties with its best child (its
    similarity *is* the child's), so with all classes allowed the answer is the best leaf, and
    with only categories allowed it is the best category.
    """
    ct = scores.taxonomy
    C = len(ct.class_names)
    mask = np.ones(C, dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool)
    if not mask.any():
        return [None] * len(scores)
    sim = np.where(mask, scores.similarity, -np.inf)
    best = sim.max(axis=1, keepdims=True)
    rank = ct.depth * (C + 1) + (C - np.arange(C))  # deeper first, then declared order
    choice = np.where(sim == best, rank, -1).argmax(axis=1)
    return _matches(scores, choice)


def weaviate_zeroshot(
    scores: Scores,
    classify_properties: Sequence[str] | Mapping[str, str | None],
    target_where: TargetWhere = None,
) -> list[dict[str, dict[str, Any] | None]]:
    """Per event ``{property: nearest class}`` as Weaviate's zero-shot classification.

    ``classify_properties`` lists the properties, or maps each to a head of the taxonomy (its
    candidates); ``None`` / a plain list means every class. ``target_where`` limits candidates.
    """
    props = classify_properties if isinstance(classify_properties, Mapping) else dict.fromkeys(classify_properties)
    per_prop = {
        prop: nearest(scores, candidate_mask(scores.taxonomy, target_where, head))
        for prop, head in props.items()
    }
    return [{prop: res[i] for prop, res in per_prop.items()} for i in range(len(scores))]


def model_output(scores: Scores) -> list[list[dict[str, Any]]]:
    """Yandex ``classification``: per event every class ``{"name", "probability"}``, zeros included.

    Classes come in taxonomy order; leaves of each head sum to 1, a parent carries its leaves' sum.
    """
    names = scores.taxonomy.class_names
    return [
        [{"name": n, "probability": p} for n, p in zip(names, row, strict=True)]
        for row in scores.probability.tolist()
    ]


def multi_head_output(
    scores: Scores, *, temperature: float | None = None, include_parents: bool = False
) -> list[list[dict[str, Any]]]:
    """Hive ``classes``: per event ``[{"class", "score"}]``, leaves of each head summing to 1.

    ``temperature`` re-scores with another softmax temperature; ``include_parents`` adds the
    parents (their score is the sum of their leaves', so then a head sums to more than 1).
    """
    ct = scores.taxonomy
    prob = scores.probability
    if temperature is not None and temperature != scores.temperature:
        prob = probabilities(scores.similarity, ct, temperature)
    cols = np.arange(len(ct.class_names)) if include_parents else ct.leaf_classes
    names = [ct.class_names[c] for c in cols]
    return [
        [{"class": n, "score": p} for n, p in zip(names, row, strict=True)]
        for row in prob[:, cols].tolist()
    ]


def top_classes(scores: Scores, n: int = 5) -> list[dict[str, list[dict[str, Any]]]]:
    """Per event, per head, its ``n`` most probable leaves ``[{"class", "score"}]``, best first
    (ties: taxonomy order). The compact form of :func:`multi_head_output` a result carries by default.

    >>> from app.schemas.taxonomy import Taxonomy
    >>> from app.core.taxonomy import compile_taxonomy
    >>> t = compile_taxonomy(Taxonomy(name="t", version=1, vectorizer="none", classes=[
    ...     {"name": c, "prompts": [c], "prompt_vectors": [v]} for c, v in (("a", [1, 0]), ("b", [0, 1]), ("c", [1, 1]))]))
    >>> [(c["class"], round(c["score"], 2)) for c in top_classes(score(np.array([[1.0, 0.2]]), t), n=2)[0]["default"]]
    [('a', 0.95), ('c', 0.05)]
    """
    ct = scores.taxonomy
    prob = scores.probability
    per_head = []
    for h, head in enumerate(ct.heads):
        leaves = ct.leaf_classes[ct.head_of_class[ct.leaf_classes] == h]
        order = np.argsort(-prob[:, leaves], axis=1, kind="stable")[:, :n]
        cols = leaves[order]
        per_head.append((head, cols.tolist(), np.take_along_axis(prob, cols, axis=1).tolist()))
    names = ct.class_names
    return [{head: [{"class": names[c], "score": p} for c, p in zip(cols[i], ps[i], strict=True)]
             for head, cols, ps in per_head} for i in range(len(scores))]


def best_paths(scores: Scores) -> list[list[dict[str, Any]]]:
    """Per event, per head, the path to the best leaf: ``{"head", "path", "scores", ...}``.

    ``path`` is root -> leaf (``["category", "subcategory"]``); ``scores`` are the probabilities of
    its nodes (a category's = sum of its subcategories'), ``similarities`` their similarities.
    """
    ct = scores.taxonomy
    sim, prob = scores.similarity, scores.probability
    n = len(scores)
    rows = np.arange(n)[:, None]
    # One gather per head for the batch (a per-event fancy index cost ~4 us each): each leaf's
    # path padded with its own leaf index to the deepest path, then cut back to its length.
    width = max(len(p) for p in ct.path_index)
    padded = np.array([p + (p[-1],) * (width - len(p)) for p in ct.path_index], dtype=np.int64)
    per_head = []
    for h, head in enumerate(ct.heads):
        leaves = ct.leaf_classes[ct.head_of_class[ct.leaf_classes] == h]
        best = leaves[sim[:, leaves].argmax(axis=1)]
        k = scores.prompt[rows[:, 0], best]
        idx = padded[best]
        per_head.append((head, best.tolist(), [ct.prompts[x] for x in k.tolist()], _prompt_index(ct, k).tolist(),
                         prob[rows, idx].tolist(), sim[rows, idx].tolist()))
    paths = [list(p) for p in ct.paths]
    return [[{
        "head": head,
        "path": paths[best[i]].copy(),
        "scores": ps[i][:len(paths[best[i]])],
        "similarities": ss[i][:len(paths[best[i]])],
        "prompt": prompt[i],
        "prompt_index": at[i],
    } for head, best, prompt, at, ps, ss in per_head] for i in range(n)]


def decide(scores: Scores) -> list[PolicyDecision]:
    """The taxonomy's moderation policies applied to every event (see :mod:`app.core.policies`)."""
    ct = scores.taxonomy
    return evaluate_batch(ct.policies, ct.class_names, scores.probability, scores.similarity)
