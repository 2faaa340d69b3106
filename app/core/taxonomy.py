"""Compile a :class:`~app.schemas.taxonomy.Taxonomy` once per version into arrays for scoring.

Compilation validates the class graph, embeds every leaf prompt exactly once and lays the
classes out so that scoring a batch is one matrix product plus a few ``reduceat`` calls:

* classes are stored in depth-first order (roots, then each root's subtree; siblings in declared
  order). A flat taxonomy keeps its declared order. In this order the leaves under any class
  form a contiguous run, ``leaf_range[c] = [lo, hi)`` in leaf coordinates;
* ``P (p, d)`` holds the L2-normalised prompt vectors of the leaves, grouped by leaf in leaf
  order (``prompt_starts``), so a class's prompts are one contiguous block of columns;
* a parent's own prompts are not scored: its score is derived from its children (max of
  similarities, sum of probabilities), so parents may declare ``prompts=[]``;
* heads: a class without ``head`` inherits its parent's; a root without one is in head
  ``"default"``. A child naming a head different from its parent's is an error, so each head is
  a forest and every probability derived from a head stays a distribution.

>>> from app.schemas.taxonomy import Taxonomy
>>> tax = Taxonomy(name="t", version=3, vectorizer="none", classes=[
...     {"name": "sport", "prompts": []},
...     {"name": "football", "prompts": ["a match"], "prompt_vectors": [[1, 0]], "parent": "sport"},
...     {"name": "news", "prompts": ["the news"], "prompt_vectors": [[0, 2]]}])
>>> ct = compile_taxonomy(tax)
>>> ct.class_names, ct.paths[1], ct.P.tolist()
(('sport', 'football', 'news'), ('sport', 'football'), [[1.0, 0.0], [0.0, 1.0]])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.core.vectorizers import Vectorizer, VectorizerError, get_vectorizer
from app.schemas.taxonomy import PolicyRule, Taxonomy

__all__ = ["TaxonomyError", "CompiledTaxonomy", "compile_taxonomy", "DEFAULT_HEAD", "DEFAULT_MAX_PROMPTS"]

DEFAULT_HEAD = "default"
#: Scoring allocates an ``(n, p)`` similarity matrix per batch: 4096 prompts x 1000 events is 16 MB.
DEFAULT_MAX_PROMPTS = 4096


class TaxonomyError(ValueError):
    """An invalid taxonomy; ``reason`` is machine-readable (dead letters), ``str()`` is for humans."""

    def __init__(self, reason: str, message: str, **details: Any):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CompiledTaxonomy:
    """Immutable, vectorised form of one taxonomy version (arrays are read-only)."""

    name: str
    version: int
    vectorizer: Vectorizer = field(repr=False)
    temperature: float
    dim: int
    class_names: tuple[str, ...]  # (C,) depth-first order
    parent: np.ndarray  # (C,) int, -1 for roots
    depth: np.ndarray  # (C,) int, 0 for roots
    head_of_class: np.ndarray  # (C,) int index into heads
    heads: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]  # (C,) root -> class names
    path_index: tuple[tuple[int, ...], ...]  # (C,) root -> class indices
    is_leaf: np.ndarray  # (C,) bool
    leaf_classes: np.ndarray  # (L,) class index of each leaf
    leaf_range: np.ndarray  # (C, 2) [lo, hi) of the class's leaves in leaf coordinates
    P: np.ndarray = field(repr=False)  # (p, d) float32, unit rows
    prompts: tuple[str, ...] = field(repr=False)  # (p,) prompt texts
    prompt_class: np.ndarray = field(repr=False)  # (p,) class index of each prompt
    prompt_leaf: np.ndarray = field(repr=False)  # (p,) leaf index of each prompt
    prompt_starts: np.ndarray = field(repr=False)  # (L,) first prompt of each leaf
    policies: tuple[PolicyRule, ...] = ()
    fingerprint: str = ""  # sha256 of the taxonomy JSON: tells apart a re-published version

    @property
    def class_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.class_names)}

    def class_properties(self, c: int) -> dict[str, Any]:
        """The properties a ``targetWhere`` predicate may read for class ``c``."""
        p = int(self.parent[c])
        return {
            "name": self.class_names[c],
            "parent": self.class_names[p] if p >= 0 else None,
            "head": self.heads[int(self.head_of_class[c])],
            "path": list(self.paths[c]),
            "depth": int(self.depth[c]),
            "leaf": bool(self.is_leaf[c]),
        }


def _structure(tax: Taxonomy) -> tuple[list[int], list[int], list[str]]:
    """Validate the class graph; return (depth-first order, parent per class, head per class)."""
    classes = tax.classes
    if not classes:
        raise TaxonomyError("taxonomy_empty", f"taxonomy {tax.name!r} v{tax.version} has no classes")
    index: dict[str, int] = {}
    for i, c in enumerate(classes):
        if c.name in index:
            raise TaxonomyError("taxonomy_duplicate_class", f"class {c.name!r} is defined twice", cls=c.name)
        index[c.name] = i
    parent = []
    for c in classes:
        if c.parent is not None and c.parent not in index:
            raise TaxonomyError(
                "taxonomy_unknown_parent", f"class {c.name!r} has unknown parent {c.parent!r}", cls=c.name
            )
        parent.append(-1 if c.parent is None else index[c.parent])
    # Walk up from every class; a walk longer than the class count must revisit a class.
    for i, c in enumerate(classes):
        seen, j = {i}, parent[i]
        while j >= 0:
            if j in seen:
                raise TaxonomyError("taxonomy_cycle", f"class {c.name!r} is its own ancestor", cls=c.name)
            seen.add(j)
            j = parent[j]
    children: list[list[int]] = [[] for _ in classes]
    for i, p in enumerate(parent):
        if p >= 0:
            children[p].append(i)
    order: list[int] = []
    head = [""] * len(classes)
    stack = [i for i in reversed(range(len(classes))) if parent[i] < 0]
    while stack:  # iterative DFS: deep taxonomies must not hit the recursion limit
        i = stack.pop()
        c = classes[i]
        inherited = head[parent[i]] if parent[i] >= 0 else None
        if c.head is not None and inherited is not None and c.head != inherited:
            raise TaxonomyError(
                "taxonomy_head_conflict",
                f"class {c.name!r} is in head {c.head!r} but its parent is in head {inherited!r}",
                cls=c.name,
            )
        head[i] = c.head or inherited or DEFAULT_HEAD
        order.append(i)
        stack.extend(reversed(children[i]))
    for i in order:
        if not children[i] and not classes[i].prompts:
            raise TaxonomyError(
                "taxonomy_class_without_prompts", f"leaf class {classes[i].name!r} has no prompts",
                cls=classes[i].name,
            )
    return order, parent, head


def compile_taxonomy(
    tax: Taxonomy,
    vectorizer: Vectorizer | None = None,
    *,
    max_prompts: int = DEFAULT_MAX_PROMPTS,
    dim: int | None = None,
) -> CompiledTaxonomy:
    """Validate ``tax`` and embed its leaf prompts once; raise :class:`TaxonomyError` if invalid.

    ``vectorizer`` defaults to ``get_vectorizer(tax.vectorizer, dim)``; it embeds prompts that
    carry no ``prompt_vectors`` and is kept on the result so event text is embedded the same way.
    ``dim``, when given, is the dimension event vectors will have (checked here, not per event).
    """
    order, parent_decl, head_decl = _structure(tax)
    classes = [tax.classes[i] for i in order]
    pos = {old: new for new, old in enumerate(order)}
    parent = np.array([pos[parent_decl[i]] if parent_decl[i] >= 0 else -1 for i in order], dtype=np.int64)
    C = len(classes)
    is_leaf = np.ones(C, dtype=bool)
    is_leaf[parent[parent >= 0]] = False

    n_prompts = sum(len(c.prompts) for c, leaf in zip(classes, is_leaf, strict=True) if leaf)
    if n_prompts > max_prompts:
        raise TaxonomyError(
            "taxonomy_too_many_prompts", f"{n_prompts} leaf prompts exceed the limit of {max_prompts}"
        )
    names = {c.name for c in classes}
    for r, rule in enumerate(tax.policies):
        unknown = [c for c in rule.classes if c not in names]
        if unknown:
            raise TaxonomyError(
                "taxonomy_policy_unknown_class", f"policy rule {r} names unknown classes {unknown}", rule=r
            )

    # Paths, depths, leaf ranges. Depth-first order puts parents before children, so one
    # forward pass suffices; a reverse pass grows each ancestor's leaf range.
    paths: list[tuple[int, ...]] = []
    for c in range(C):
        paths.append((*paths[parent[c]], c) if parent[c] >= 0 else (c,))
    leaf_classes = np.flatnonzero(is_leaf)
    leaf_pos = np.full(C, -1, dtype=np.int64)
    leaf_pos[leaf_classes] = np.arange(leaf_classes.size)
    leaf_range = np.stack([leaf_pos, leaf_pos + 1], axis=1)
    for c in reversed(range(C)):
        if is_leaf[c]:
            continue
        kids = np.flatnonzero(parent == c)
        leaf_range[c] = (leaf_range[kids, 0].min(), leaf_range[kids, 1].max())
    heads = tuple(dict.fromkeys(head_decl[i] for i in order))
    head_of_class = np.array([heads.index(head_decl[i]) for i in order], dtype=np.int64)

    vec = vectorizer if vectorizer is not None else _vectorizer_for(tax, dim)
    texts: list[str] = []
    rows: list[np.ndarray | None] = []
    prompt_class: list[int] = []
    for c in leaf_classes.tolist():
        cls = classes[c]
        for k, text in enumerate(cls.prompts):
            texts.append(text)
            prompt_class.append(int(c))
            rows.append(None if cls.prompt_vectors is None else np.asarray(cls.prompt_vectors[k], dtype=np.float64))
    P = _prompt_matrix(vec, texts, rows, [classes[c].name for c in prompt_class], dim)

    prompt_class_a = np.array(prompt_class, dtype=np.int64)
    prompt_leaf = leaf_pos[prompt_class_a]
    prompt_starts = np.flatnonzero(np.r_[True, prompt_leaf[1:] != prompt_leaf[:-1]])
    return CompiledTaxonomy(
        name=tax.name,
        version=tax.version,
        vectorizer=vec,
        temperature=float(tax.temperature),
        dim=int(P.shape[1]),
        class_names=tuple(c.name for c in classes),
        parent=_frozen(parent),
        depth=_frozen(np.array([len(p) - 1 for p in paths], dtype=np.int64)),
        head_of_class=_frozen(head_of_class),
        heads=heads,
        paths=tuple(tuple(classes[j].name for j in p) for p in paths),
        path_index=tuple(paths),
        is_leaf=_frozen(is_leaf),
        leaf_classes=_frozen(leaf_classes),
        leaf_range=_frozen(leaf_range),
        P=_frozen(P),
        prompts=tuple(texts),
        prompt_class=_frozen(prompt_class_a),
        prompt_leaf=_frozen(prompt_leaf),
        prompt_starts=_frozen(prompt_starts),
        policies=tuple(tax.policies),
        # Only the Taxonomy fields: a subclass (e.g. a training-topic record) adds envelope fields.
        fingerprint=hashlib.sha256(tax.model_dump_json(include=set(Taxonomy.model_fields)).encode()).hexdigest(),
    )


def _vectorizer_for(tax: Taxonomy, dim: int | None) -> Vectorizer:
    try:
        return get_vectorizer(tax.vectorizer, dim=dim)
    except VectorizerError as exc:
        raise TaxonomyError("taxonomy_vectorizer_unavailable", str(exc)) from exc


def _prompt_matrix(
    vec: Vectorizer, texts: list[str], rows: list[np.ndarray | None],
    owners: list[str], dim: int | None,
) -> np.ndarray:
    """Stack given prompt vectors and embed the rest in one ``encode`` call; unit rows."""
    missing = [i for i, r in enumerate(rows) if r is None]
    if missing:
        try:
            enc = vec.encode([texts[i] for i in missing])
        except VectorizerError as exc:
            reason = "taxonomy_missing_vector" if vec.name == "none" else "taxonomy_vectorizer_unavailable"
            raise TaxonomyError(
                reason, f"class {owners[missing[0]]!r}: {exc}", cls=owners[missing[0]]
            ) from exc
        for i, r in zip(missing, enc, strict=True):
            rows[i] = np.asarray(r, dtype=np.float64)
    dims = {int(r.shape[0]) for r in rows if r is not None}
    want = dim if dim is not None else (next(iter(dims)) if len(dims) == 1 else None)
    for i, r in enumerate(rows):
        assert r is not None
        if r.ndim != 1 or r.shape[0] != want:
            raise TaxonomyError(
                "taxonomy_dimension_mismatch",
                f"class {owners[i]!r}: prompt {texts[i]!r} has dimension {r.shape[0]}, "
                f"expected {want if want is not None else 'one dimension for all prompts: ' + str(sorted(dims))}",
                cls=owners[i],
            )
    M = np.stack([r for r in rows if r is not None])
    norms = np.linalg.norm(M, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        i = int(bad[0])
        raise TaxonomyError(
            "taxonomy_invalid_vector",
            f"class {owners[i]!r}: prompt {texts[i]!r} has a zero or non-finite vector",
            cls=owners[i],
        )
    return (M / norms[:, None]).astype(np.float32)
