"""The feedback pipeline's pure step: verdicts kept per item, and learned as training examples.

Each feedback record (``app/schemas/feedback.py``) is added to its item's verdicts (table
``feedback-verdicts``, key = item id: the feedback topic is keyed by item id, so the worker
that owns the item's stored object owns its verdicts). For a kNN classifier of the item's
class that opts in (``"feedback": {"learn": true, "min_agreeing": 2, "trusted_reviewers": [...]}``),
once the verdicts on a property meet its rule, the item becomes a training example:

- id ``feedback/<item_id>/<property>``, the item's stored vector (or text), the agreed label;
- provenance in ``properties._feedback``: the verdicts' ids, reviewers, the rule that was met;
- validated exactly like a record of the training topic (``app/classify/training.validate``), and
  returned as a ``TableWrite`` of the training table that the feedback agent publishes to the
  training topic (the training agent writes it into the partition that owns the example's key).

When the verdicts stop meeting the rule (a retraction, a disagreeing verdict), the example is
deleted: every learned example can be traced to its verdicts and removed by retracting them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from app.classify.codec import Rejected, from_validation_error, internal_error, load_json
from app.classify.outcome import Outcome, Record, TableWrite
from app.classify.state import ModelState
from app.classify.training import TRAINING, BatchView, validate
from app.schemas.feedback import Feedback, FeedbackRule

FEEDBACK_VERDICTS = "feedback-verdicts"
STORED_OBJECTS = "stored-objects"
MAX_VERDICTS = 100  # per item: the newest are kept (a verdict storm cannot grow a table value without bound)
Reader = Callable[[bytes], bytes | None]


def example_id(item_id: str, prop: str) -> str:
    """
    >>> example_id("c1", "tone")
    'feedback/c1/tone'
    """
    return f"feedback/{item_id}/{prop}"


def apply_verdict(verdicts: list[dict[str, Any]], fb: Feedback) -> list[dict[str, Any]]:
    """The item's verdicts after ``fb``: a retraction drops every verdict on its result and
    property; a verdict replaces one with the same ``feedback_id`` (a redelivery) and is appended.

    >>> v = apply_verdict([], _fb("f1", "ana", "confirm"))
    >>> v = apply_verdict(v, _fb("f1", "ana", "confirm"))  # redelivered: once
    >>> [x["feedback_id"] for x in apply_verdict(v, _fb("f2", "bo", "reject"))]
    ['f1', 'f2']
    >>> apply_verdict(v, _fb("f3", "bo", "confirm", op="retract"))
    []
    """
    if fb.op == "retract":
        return [v for v in verdicts if not (v["result_id"] == fb.result_id and v.get("property", "") == fb.property)]
    doc = fb.model_dump(mode="json", by_alias=True)
    kept = [v for v in verdicts if v["feedback_id"] != fb.feedback_id] + [doc]
    return kept[-MAX_VERDICTS:]


def learned_label(verdicts: Sequence[dict[str, Any]], prop: str, rule: FeedbackRule) -> tuple[str, list[str], str] | None:
    """``(label, supporting feedback ids, the rule met)`` for a property, or None.

    Only each reviewer's latest verdict counts. The latest verdict of a trusted reviewer that
    names a label wins; otherwise a label needs ``min_agreeing`` reviewers and more than any
    other label. A reject names no label: it supports nothing.

    >>> rule = FeedbackRule(learn=True, min_agreeing=2, trusted_reviewers=["lead"])
    >>> one = [_doc("f1", "ana", "confirm")]
    >>> learned_label(one, "tone", rule) is None
    True
    >>> learned_label(one + [_doc("f2", "bo", "confirm")], "tone", rule)
    ('toxic', ['f1', 'f2'], '2 agreeing verdicts')
    >>> learned_label(one + [_doc("f2", "lead", "relabel", "calm")], "tone", rule)
    ('calm', ['f2'], 'trusted reviewer lead')
    >>> learned_label(one + [_doc("f2", "ana", "reject")], "tone", rule) is None  # ana changed her mind
    True
    """
    latest: dict[str, dict[str, Any]] = {}
    for v in sorted((v for v in verdicts if v.get("property", "") == prop and v.get("op", "verdict") == "verdict"),
                    key=lambda v: (v["at"], v["feedback_id"])):
        latest[v["reviewer"]] = v
    labelled = [(v, Feedback.model_validate(v).true_label()) for v in latest.values()]
    labelled = [(v, lab) for v, lab in labelled if lab]
    trusted = [(v, lab) for v, lab in labelled if v["reviewer"] in rule.trusted_reviewers]
    if trusted:
        v, lab = max(trusted, key=lambda t: (t[0]["at"], t[0]["feedback_id"]))
        return str(lab), [v["feedback_id"]], f"trusted reviewer {v['reviewer']}"
    counts: dict[str, list[str]] = {}
    for v, lab in labelled:
        counts.setdefault(str(lab), []).append(v["feedback_id"])
    ranked = sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    if not ranked or len(ranked[0][1]) < rule.min_agreeing or (len(ranked) > 1 and len(ranked[1][1]) == len(ranked[0][1])):
        return None
    label, ids = ranked[0]
    return label, sorted(ids), f"{len(ids)} agreeing verdicts"


def feedback_step(state: ModelState, records: Sequence[Record], read_verdicts: Reader,
                  read_stored: Reader) -> list[Outcome]:
    """One ``Outcome`` per feedback record: its item's verdicts written, and a learned example
    written or deleted for each opted-in kNN classifier's property; or its rejection."""
    pending: dict[bytes, bytes] = {}
    view = BatchView(state)
    outcomes = []
    for rec in records:
        try:
            outcomes.append(_one(state, rec, pending, view, read_verdicts, read_stored))
        except Rejected as r:
            outcomes.append(Outcome.reject(r))
        except Exception as e:  # noqa: BLE001 - errors are data
            outcomes.append(Outcome.reject(internal_error(e)))
    return outcomes


def _one(state: ModelState, rec: Record, pending: dict[bytes, bytes], view: BatchView, read_verdicts: Reader,
         read_stored: Reader) -> Outcome:
    data = load_json(rec.value, state.settings.max_payload_bytes)
    try:
        fb = Feedback.model_validate(data)
    except ValidationError as e:
        raise from_validation_error(e) from None
    if rec.key is not None and rec.key != fb.item_id.encode():
        raise Rejected("feedback_key_mismatch", f"feedback is keyed {rec.key!r}, its item_id is {fb.item_id!r}: "
                       "key it by item_id (the partition of the item's stored object)", "item_id")
    key = fb.item_id.encode()
    raw = pending.get(key) or read_verdicts(key)
    doc = orjson.loads(raw) if raw else {"verdicts": [], "learned": {}}
    doc["verdicts"] = apply_verdict(doc["verdicts"], fb)
    writes = []
    for prop, rule in _rules(state, fb.class_, fb.property).items():
        eid = example_id(fb.item_id, prop)
        found = learned_label(doc["verdicts"], prop, rule)
        if found is None:
            if doc["learned"].pop(prop, None) is not None:
                writes.append(TableWrite(TRAINING, eid.encode(), None))
            continue
        body = _example(fb, prop, found, read_stored(key))
        if body is None:
            doc.setdefault("unlearned", {})[prop] = "the item's object is not stored (LABELSTREAM_STORE_OBJECTS)"
            continue
        k, value = validate(eid.encode(), body, state, view.current, view)
        writes.append(TableWrite(TRAINING, k.encode(), value))
        doc["learned"][prop] = {"example_id": eid, "label": found[0], "feedback": found[1], "rule": found[2]}
    pending[key] = orjson.dumps(doc)
    return Outcome(writes=[TableWrite(FEEDBACK_VERDICTS, key, pending[key]), *writes])


def _rules(state: ModelState, class_name: str, prop: str) -> dict[str, FeedbackRule]:
    """property -> the rule of the first (by name) opted-in kNN classifier of the class that classifies it."""
    out: dict[str, FeedbackRule] = {}
    for c in state.snapshot().classifiers_by_class.get(class_name, ()):
        rule = c.spec.feedback
        if c.spec.type == "knn" and rule is not None and rule.learn:
            for p in c.spec.classifyProperties:
                if (not prop or p == prop) and p not in out:
                    out[p] = rule
    return out


def _example(fb: Feedback, prop: str, found: tuple[str, list[str], str], stored: bytes | None) -> bytes | None:
    if stored is None:
        return None
    obj = orjson.loads(stored).get("object") or {}
    if not obj.get("vector") and not obj.get("text"):
        return None
    label, ids, rule = found
    properties = {**(obj.get("properties") or {}),
                  "_feedback": {"feedback_ids": ids, "rule": rule, "result_id": fb.result_id, "item_id": fb.item_id}}
    doc: dict[str, Any] = {"record": "example", "id": example_id(fb.item_id, prop), "class": obj.get("class") or fb.class_,
                           "properties": properties, "labels": {prop: label}}
    if obj.get("vector"):
        doc["vector"] = obj["vector"]
    else:
        doc["text"] = obj["text"]
    return orjson.dumps(doc)


def _fb(fid: str, reviewer: str, verdict: str, label: str | None = None, op: str = "verdict") -> Feedback:
    """A feedback record for the examples above."""
    return Feedback.model_validate({"op": op, "feedback_id": fid, "item_id": "c1", "result_id": "c1/tone",
                                    "classifier": "tone", "class": "Comment", "property": "tone",
                                    "decision": {"action": "review", "label": "toxic"}, "verdict": verdict,
                                    "label": label, "reviewer": reviewer, "at": int(fid[1:])})


def _doc(fid: str, reviewer: str, verdict: str, label: str | None = None) -> dict[str, Any]:
    return _fb(fid, reviewer, verdict, label).model_dump(mode="json", by_alias=True)
