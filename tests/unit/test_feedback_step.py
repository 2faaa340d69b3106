"""The feedback step on a real model state: verdicts kept per item, a learned example once the
classifier's rule is met (with provenance), deleted when the verdicts are retracted; bad records
rejected with a reason."""

from __future__ import annotations

import orjson
import pytest

from app.classify.expiry import stamped
from app.classify.feedback import FEEDBACK_VERDICTS, feedback_step
from app.classify.outcome import Record
from app.classify.state import ModelState
from app.classify.training import TRAINING, training_step
from app.devtools import console_scenario as sc
from app.schemas.deadletter import Source
from app.schemas.vectors import encode_vector
from app.settings import Settings


@pytest.fixture
def state(tmp_path):
    s = ModelState(Settings(data_dir=tmp_path))
    for o in training_step(s, [Record(k.encode(), orjson.dumps(v), Source(topic="t", partition=0, offset=i))
                               for i, (k, v) in enumerate(sc.training())]):
        assert o.rejected is None, o.rejected
        for w in o.writes:
            s.apply(w.key.decode(), w.value)
    yield s
    s.close()


def verdict(fid: str, reviewer: str, verdict: str = "confirm", op: str = "verdict", item: str = "c1", key=None):
    doc = {"op": op, "feedback_id": fid, "item_id": item, "result_id": f"{item}/tone", "classifier": "tone",
           "class": "Comment", "property": "tone", "taxonomy": {"name": "tone", "version": 1},
           "decision": {"action": "review", "label": "toxic"}, "verdict": verdict, "reviewer": reviewer,
           "at": int(fid[1:])}
    return Record(key if key is not None else item.encode(), orjson.dumps(doc), Source(topic="f", partition=0, offset=0))


class Tables:
    """The two tables the step reads, applied like the sink does."""

    def __init__(self):
        self.verdicts: dict[bytes, bytes] = {}
        self.stored = {b"c1": stamped(1, {"object": {"id": "c1", "class": "Comment", "properties": {"text": "hi"},
                                                     "vector": encode_vector(sc.review_vector(1))}})}

    def run(self, state, *records):
        outs = feedback_step(state, list(records), self.verdicts.get, self.stored.get)
        training = []
        for o in outs:
            for w in o.writes:
                if w.table == FEEDBACK_VERDICTS:
                    self.verdicts[w.key] = w.value
                else:
                    assert w.table == TRAINING
                    training.append((w.key.decode(), orjson.loads(w.value) if w.value else None))
        return outs, training


def test_two_agreeing_verdicts_learn_an_example_and_a_retraction_removes_it(state):
    t = Tables()
    _, learned = t.run(state, verdict("f1", "ana"))
    assert learned == [], "one untrusted verdict is not enough (min_agreeing 2)"
    _, learned = t.run(state, verdict("f1", "ana"))  # a redelivery is not a second reviewer
    assert learned == []
    _, learned = t.run(state, verdict("f2", "bo"))
    ((key, example),) = learned
    assert key == "feedback/c1/tone" and example["labels"] == {"tone": "toxic"} and example["class"] == "Comment"
    assert example["properties"]["_feedback"] == {"feedback_ids": ["f1", "f2"], "rule": "2 agreeing verdicts",
                                                  "result_id": "c1/tone", "item_id": "c1"}
    assert example["properties"]["text"] == "hi" and example["vector"]
    assert orjson.loads(t.verdicts[b"c1"])["learned"]["tone"]["feedback"] == ["f1", "f2"]
    _, learned = t.run(state, verdict("f3", "ana", op="retract"))
    assert learned == [("feedback/c1/tone", None)]


def test_a_trusted_reviewer_suffices_and_a_reject_teaches_nothing(state):
    t = Tables()
    assert t.run(state, verdict("f1", "ana", "reject"), verdict("f2", "bo", "reject"))[1] == []
    _, learned = t.run(state, verdict("f3", "lead"))
    assert [(k, e["labels"], e["properties"]["_feedback"]["rule"]) for k, e in learned] == \
        [("feedback/c1/tone", {"tone": "toxic"}, "trusted reviewer lead")]


def test_bad_records_are_rejected_with_a_reason(state):
    t = Tables()
    outs, _ = t.run(state, verdict("f1", "ana", key=b"other"), Record(b"c1", b"{", Source(topic="f", partition=0, offset=1)),
                    Record(b"c1", orjson.dumps({"feedback_id": "x"}), Source(topic="f", partition=0, offset=2)))
    assert [o.rejected.reason for o in outs] == ["feedback_key_mismatch", "invalid_json", "schema_violation"]


def test_no_stored_object_no_example(state):
    t = Tables()
    t.stored.clear()
    _, learned = t.run(state, verdict("f1", "lead"))
    assert learned == [] and "not stored" in orjson.loads(t.verdicts[b"c1"])["unlearned"]["tone"]
