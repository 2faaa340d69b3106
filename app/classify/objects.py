"""Objects in, outcomes out: the pure step of the objects pipeline.

``objects_step`` takes one batch of raw records, decodes them, picks the classifiers of each
object's class (``sourceWhere``), vectorizes text in the space of the thing it is compared
with, runs each classifier over its rows in one go, and returns exactly one ``Outcome`` per
input: results (one per classifier) and the stored-object write, or a rejection that
becomes a dead letter. Runs in a worker thread: no asyncio, no Kafka.

**Per-item isolation.** Rows are grouped by (classifier, vector dimension) before vectors
are stacked, so objects of different dimensions never meet in one matrix. When a group
fails anyway (a class's first examples arriving between the dimension check and the search,
a bug), the group is retried one item at a time: the item that fails gets its own dead
letter (``internal_error`` with the exception, or a specific reason), the others their
results.

**Vector spaces.** Text is vectorized by the vectorizer of what it is compared with: a
zero-shot classifier's taxonomies (all of one classifier's taxonomies must share one), a kNN
classifier's ``vectorizer`` (default the global one), which must also be the vectorizer
its class's text examples were embedded with. A mismatch is ``vectorizer_mismatch``, never
a silent score across two spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from app.classify.codec import Rejected, check_depth, decode, internal_error
from app.classify.expiry import now_ms, stamped
from app.classify.outcome import Outcome, Record, TableWrite
from app.classify.state import Classifier, ModelState, Snapshot
from app.classify.zeroshot import run_zeroshot, taxonomy_vectorizer
from app.core.knn import classify_batch
from app.core.vectorizers import VectorizerError
from app.index.store import DimensionError
from app.schemas.deadletter import Source
from app.schemas.objects import ObjectEvent
from app.schemas.results import ModerationHit, Result, ResultDoc
from app.schemas.vectors import encode_vector

STORED_OBJECTS = "stored-objects"


@dataclass
class Item:
    event: ObjectEvent
    source: Source
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # vectorizer ("" = the event's own) -> vector

    def vector(self, space: str) -> np.ndarray:
        return self.vectors[space]


# A method classifies rows of one classifier; one (ResultDoc | Rejected, hits) per item.
Method = Callable[[ModelState, Snapshot, Classifier, list[Item], np.ndarray],
                  list[tuple[ResultDoc | Rejected, list[ModerationHit]]]]


def objects_step(state: ModelState, records: Sequence[Record], snap: Snapshot | None = None) -> list[Outcome]:
    """Decode and classify one batch: one ``Outcome`` per record, in order. ``snap``: the model
    snapshot to use (a batch split over threads passes the one it took, so the batch sees one)."""
    outcomes: list[Outcome | None] = [None] * len(records)  # each filled below: a rejection or its classification
    items: list[Item] = []
    rows: list[int] = []
    limit = state.settings.max_payload_bytes
    for i, rec in enumerate(records):
        try:
            obj = decode(rec.value, ObjectEvent, limit)
            check_depth(obj.properties, "properties")
        except Rejected as r:
            outcomes[i] = Outcome.reject(r)
            continue
        except Exception as e:  # noqa: BLE001 - errors are data
            outcomes[i] = Outcome.reject(internal_error(e))
            continue
        items.append(Item(obj, rec.source))
        rows.append(i)
    now = now_ms()  # the stored objects' stamp, for their retention (app/classify/expiry.py)
    for i, item, out in zip(rows, items, classify_objects(state, items, snap), strict=True):
        outcomes[i] = out
        if out.rejected is None and state.settings.store_objects:
            try:  # per item: a value that cannot be stored fails this object, not the batch
                out.writes.append(TableWrite(STORED_OBJECTS, item.event.id.encode(), stored(item, out.results, now)))
            except Exception as e:  # noqa: BLE001 - errors are data
                out.fail(internal_error(e))
    return cast(list[Outcome], outcomes)  # every record is a rejection or in rows


Pick = Callable[[Snapshot, Item], list[Classifier]]


def classify_objects(state: ModelState, items: list[Item], snap: Snapshot | None = None,
                     pick: Pick | None = None) -> list[Outcome]:
    """One outcome per item; ``pick`` chooses each item's classifiers (default: the standing
    classifiers of its class whose sourceWhere matches; a job passes its own)."""
    snap = snap or state.snapshot()
    pick = pick or _classifiers_for
    outcomes = [Outcome() for _ in items]
    plan: dict[tuple[str, str, int], list[int]] = {}  # (classifier, space, dim) -> rows
    by_name: dict[str, Classifier] = {}
    wanted: dict[str, list[int]] = {}  # vectorizer -> rows whose text it must embed
    chosen_of: list[list[tuple[Classifier, str]]] = [[] for _ in items]
    for i, item in enumerate(items):
        try:
            chosen = pick(snap, item)
            if not chosen:
                outcomes[i].results.append(_skipped(item, snap))
            for c in chosen:
                space = "" if item.event.vector is not None else _space(state, snap, c)
                chosen_of[i].append((c, space))
                if space:
                    wanted.setdefault(space, []).append(i)
        except Rejected as r:
            outcomes[i].fail(r)
        except Exception as e:  # noqa: BLE001
            outcomes[i].fail(internal_error(e))
    _vectorize(state, items, wanted, outcomes)
    for i, item in enumerate(items):
        if outcomes[i].rejected:
            continue
        try:
            for c, space in chosen_of[i]:
                v = item.vector(space)
                _check_dims(state, snap, c, v.size)
                plan.setdefault((c.name, space, v.size), []).append(i)
                by_name[c.name] = c
        except Rejected as r:
            outcomes[i].fail(r)
        except Exception as e:  # noqa: BLE001
            outcomes[i].fail(internal_error(e))
    for (name, space, _dim), group in plan.items():
        _run_group(state, snap, by_name[name], space, [g for g in group if not outcomes[g].rejected], items, outcomes)
    return outcomes


def _run_group(state: ModelState, snap: Snapshot, c: Classifier, space: str, group: list[int],
               items: list[Item], outcomes: list[Outcome]) -> None:
    """Run one classifier over its rows; if that fails, one row at a time so only the culprit fails."""
    if not group:
        return
    run = METHODS[c.spec.type]
    try:
        _collect(group, run(state, snap, c, [items[i] for i in group], _stack(items, group, space)), outcomes)
        return
    except Exception as e:  # noqa: BLE001
        if len(group) == 1:
            outcomes[group[0]].fail(_as_rejection(e))
            return
    for i in group:
        try:
            _collect([i], run(state, snap, c, [items[i]], _stack(items, [i], space)), outcomes)
        except Exception as e:  # noqa: BLE001
            outcomes[i].fail(_as_rejection(e))


def _collect(group: list[int], produced: list[tuple[ResultDoc | Rejected, list[ModerationHit]]],
             outcomes: list[Outcome]) -> None:
    for i, (result, hits) in zip(group, produced, strict=True):
        if outcomes[i].rejected:
            continue
        if isinstance(result, Rejected):
            outcomes[i].fail(result)
        else:
            outcomes[i].results.append(result)
            outcomes[i].hits.extend(hits)


def _as_rejection(e: BaseException) -> Rejected:
    if isinstance(e, Rejected):
        return e
    if isinstance(e, DimensionError):  # the index changed dimension under us (first examples just arrived)
        return Rejected("vector_dimension_mismatch", str(e), "vector")
    return internal_error(e)


def _stack(items: list[Item], group: list[int], space: str) -> np.ndarray:
    return np.stack([items[i].vector(space) for i in group]).astype(np.float32, copy=False)


def _space(state: ModelState, snap: Snapshot, c: Classifier) -> str:
    """The vectorizer that embeds an object's text for classifier ``c`` (raises ``Rejected``)."""
    if c.spec.type == "knn":
        name = c.spec.vectorizer or state.settings.vectorizer
        used = state.example_vectorizers(c.spec.class_) - {name}
        if used:
            raise Rejected("vectorizer_mismatch", f"classifier {c.name!r} embeds text with {name!r}, but the "
                           f"text examples of class {c.spec.class_!r} were embedded with {sorted(used)}", "text")
        return name
    return taxonomy_vectorizer(snap, c)


def _vectorize(state: ModelState, items: list[Item], wanted: dict[str, list[int]], outcomes: list[Outcome]) -> None:
    """Own vectors as the space ``""``; text embedded once per vectorizer, batched, one failure per item."""
    for it in items:
        if it.event.vector is not None:
            it.vectors[""] = it.event.vector
    limit = state.settings.max_vector_dim
    for name, rows in wanted.items():
        rows = [i for i in dict.fromkeys(rows) if not outcomes[i].rejected]
        texts = [items[i].event.text or "" for i in rows]
        try:
            vecs: list[np.ndarray] = list(state.vectorizer(name).encode(texts))
        except Exception:  # noqa: BLE001 - find the text that fails, the others go on
            vecs = []
        if len(vecs) != len(rows):
            vecs = []
            for i, text in zip(rows, texts, strict=True):
                try:
                    vecs.append(state.vectorizer(name).encode([text])[0])
                except VectorizerError as e:
                    outcomes[i].fail(Rejected(getattr(e, "reason", "vectorizer_error"), str(e), "text"))
                    vecs.append(np.zeros(0, np.float32))
                except Exception as e:  # noqa: BLE001
                    outcomes[i].fail(internal_error(e))
                    vecs.append(np.zeros(0, np.float32))
        for i, v in zip(rows, vecs, strict=True):
            items[i].vectors[name] = v
    for i, it in enumerate(items):
        for v in it.vectors.values():
            if v.size > limit and not outcomes[i].rejected:
                outcomes[i].fail(Rejected("vector_too_large",
                                          f"vector has {v.size} dimensions, the limit is {limit}", "vector"))


def _classifiers_for(snap: Snapshot, item: Item) -> list[Classifier]:
    cls = item.event.class_
    candidates = snap.classifiers_by_class.get(cls)
    if not candidates:
        if cls in snap.classes:  # declared: stored for jobs, answered by a skipped result
            return []
        raise Rejected("unknown_class", f"no classifier is defined for class {cls!r} and the class is not "
                       "declared (a 'class:<name>' training record)", "class")
    return [c for c in candidates if c.spec.type in METHODS and c.applies_to(item.event.properties)]


def _check_dims(state: ModelState, snap: Snapshot, c: Classifier, size: int) -> None:
    for what, dim in _dims(state, snap, c):
        if dim is not None and dim != size:
            raise Rejected("vector_dimension_mismatch",
                           f"{what} has dimension {dim}, the object's vector has {size}", "vector")


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


def _skipped(item: Item, snap: Snapshot) -> ResultDoc:
    """Every sourceWhere left the object out, or its class is declared without a classifier."""
    why = ("no classifier's sourceWhere matched the object" if snap.classifiers_by_class.get(item.event.class_)
           else f"class {item.event.class_!r} is declared but has no classifier: the object is stored for jobs")
    return ResultDoc(result_id=f"{item.event.id}/-", item_id=item.event.id, class_=item.event.class_, classifier="",
                     method="knn", labels={}, detail={"skipped": why},
                     event_time=item.source.timestamp, source=item.source)


def run_knn(state: ModelState, snap: Snapshot, c: Classifier, items: list[Item], q: np.ndarray):
    """One ``(ResultDoc, moderation hits)`` per item (kNN has no policies)."""
    k, metric = c.spec.settings.k, c.spec.settings.distance
    per_prop = {}
    for p in c.spec.classifyProperties:
        index = state.indexes.get(c.spec.class_, p, metric)
        per_prop[p] = classify_batch(q, index, k, c.training_where)
    out: list[tuple[ResultDoc | Rejected, list[ModerationHit]]] = []
    for row, item in enumerate(items):
        labels, conf, versions, detail = {}, {}, {}, {}
        for p, outs in per_prop.items():
            o = outs[row]
            labels[p], conf[p], versions[p] = o.label, o.confidence, o.index_version
            detail[p] = {"meta": o.meta, "neighbours": o.neighbours}
        out.append((ResultDoc(**_base(item, c), labels=labels, confidence=conf, index_version=versions,
                              detail={"knn": detail, "settings": {"k": k, "distance": metric}}), []))
    return out


def _run_zeroshot(state: ModelState, snap: Snapshot, c: Classifier, items: list[Item], q: np.ndarray):
    return run_zeroshot(snap, c, items, q, _base)


def stored(item: Item, results: Sequence[Result | ResultDoc], at: int) -> bytes:
    """The stored-objects value: when it was stored (ms), the object (vector as base64) and its
    latest labels per classifier.

    The object is ``ObjectEvent``'s JSON dump without its vector, field by field: the event was
    decoded from JSON, so its properties are JSON values already, and pydantic's ``model_dump``
    walk over them cost a quarter of this function (``tests/unit/test_steps.py`` holds the two to
    the same bytes)."""
    e = item.event
    obj: dict[str, Any] = {"id": e.id, "class": e.class_, "properties": e.properties, "text": e.text}
    if e.vector is not None:
        obj["vector"] = encode_vector(e.vector)
    return stamped(at, {"object": obj, "results": {r.classifier: {"labels": r.labels, "confidence": r.confidence}
                                                     for r in results if r.classifier}})


METHODS: dict[str, Method] = {"knn": run_knn, "zeroshot": _run_zeroshot}
