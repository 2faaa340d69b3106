"""Objects in, results out: the glue between decoded object events and the pure core.

``classify_objects`` takes one batch (already decoded), picks the classifiers of each
object's class (``sourceWhere``), checks vector dimensions, runs each classifier over its
rows in one go, and returns exactly one ``Outcome`` per input: results (one per
classifier), or a rejection that becomes a dead letter. Runs in a worker thread: no
asyncio, no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.codec import Rejected
from app.core.knn import classify_batch
from app.engine.zeroshot import run_zeroshot
from app.schemas.deadletter import Source
from app.schemas.objects import ObjectEvent
from app.schemas.results import ModerationHit, Result
from app.state import Classifier, ModelState, Snapshot


@dataclass
class Item:
    event: ObjectEvent
    source: Source
    vector: np.ndarray | None = None


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    rejected: Rejected | None = None
    hits: list[ModerationHit] = field(default_factory=list)


def classify_objects(state: ModelState, items: list[Item]) -> list[Outcome]:
    snap = state.snapshot()
    outcomes = [Outcome() for _ in items]
    _vectorize(state, items, outcomes)
    plan: dict[str, list[int]] = {}  # classifier name -> rows
    by_name: dict[str, Classifier] = {}
    for i, item in enumerate(items):
        if outcomes[i].rejected:
            continue
        try:
            chosen = _classifiers_for(state, snap, item)
        except Rejected as r:
            outcomes[i].rejected = r
            continue
        if not chosen:
            outcomes[i].results.append(_skipped(item))
        for c in chosen:
            plan.setdefault(c.name, []).append(i)
            by_name[c.name] = c
    for name, rows in plan.items():
        c = by_name[name]
        run = METHODS[c.spec.type]
        for i, (result, hits) in zip(rows, run(state, snap, c, [items[i] for i in rows], _base)):
            if isinstance(result, Rejected):
                outcomes[i].rejected = result
            else:
                outcomes[i].results.append(result)
                outcomes[i].hits.extend(hits)
    for o in outcomes:  # one output per input: a rejection wins over partial results
        if o.rejected:
            o.results.clear()
    return outcomes


def _vectorize(state: ModelState, items: list[Item], outcomes: list[Outcome]) -> None:
    texts = [i for i, it in enumerate(items) if it.event.vector is None]
    for it in items:
        it.vector = it.event.vector
    if texts:
        from app.core.vectorizers import VectorizerError

        try:
            vecs = state.vectorizer().encode([items[i].event.text or "" for i in texts])
        except VectorizerError as e:
            for i in texts:
                outcomes[i].rejected = Rejected("vectorizer_error", str(e), "text")
            return
        for i, v in zip(texts, vecs):
            items[i].vector = v
    limit = state.settings.max_vector_dim
    for i, it in enumerate(items):
        if it.vector is not None and it.vector.size > limit and not outcomes[i].rejected:
            outcomes[i].rejected = Rejected("vector_too_large", f"vector has {it.vector.size} dimensions, the limit is {limit}", "vector")


def _classifiers_for(state: ModelState, snap: Snapshot, item: Item) -> list[Classifier]:
    cls = item.event.class_
    candidates = snap.classifiers_by_class.get(cls)
    if not candidates:
        raise Rejected("unknown_class", f"no classifier is defined for class {cls!r}", "class")
    chosen = [c for c in candidates if c.spec.type in METHODS and c.applies_to(item.event.properties)]
    for c in chosen:
        for what, dim in _dims(state, snap, c):
            if dim is not None and dim != item.vector.size:
                raise Rejected("vector_dimension_mismatch",
                               f"{what} has dimension {dim}, the object's vector has {item.vector.size}", "vector")
    return chosen


def _dims(state: ModelState, snap: Snapshot, c: Classifier):
    if c.spec.type == "knn":
        yield f"class {c.spec.class_}", state.indexes.dim(c.spec.class_)
    else:
        for name in c.spec.taxonomies:
            t = snap.taxonomies.get(name)
            yield f"taxonomy {name!r}", (t.dim if t is not None else None)


def _base(item: Item, c: Classifier) -> dict:
    ts = item.source.timestamp
    return dict(result_id=f"{item.event.id}/{c.name}", item_id=item.event.id, item_kind="object",
                class_=item.event.class_, classifier=c.name, method=c.spec.type, event_time=ts, source=item.source)


def _skipped(item: Item) -> Result:
    """Classifiers exist for the class but every sourceWhere left the object out."""
    return Result(result_id=f"{item.event.id}/-", item_id=item.event.id, class_=item.event.class_, classifier="",
                  method="knn", labels={}, detail={"skipped": "no classifier's sourceWhere matched the object"},
                  event_time=item.source.timestamp, source=item.source)


def run_knn(state: ModelState, snap: Snapshot, c: Classifier, items: list[Item], base=_base):
    """One ``(Result, moderation hits)`` per item (kNN has no policies)."""
    q = np.stack([it.vector for it in items]).astype(np.float32, copy=False)
    k, metric = c.spec.settings.k, c.spec.settings.distance
    per_prop = {}
    for p in c.spec.classifyProperties:
        index = state.indexes.get(c.spec.class_, p, metric)
        per_prop[p] = classify_batch(q, index, k, c.training_where)
    out = []
    for row, item in enumerate(items):
        labels, conf, versions, detail = {}, {}, {}, {}
        for p, outs in per_prop.items():
            o = outs[row]
            labels[p], conf[p], versions[p] = o.label, o.confidence, o.index_version
            detail[p] = {"meta": o.meta, "neighbours": o.neighbours}
        out.append((Result(**base(item, c), labels=labels, confidence=conf, index_version=versions,
                           detail={"knn": detail, "settings": {"k": k, "distance": metric}}), []))
    return out


METHODS = {"knn": run_knn, "zeroshot": run_zeroshot}
