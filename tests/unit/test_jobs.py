"""The pure job steps: which stored objects a job takes, one chunk's outcomes and progress, start records."""

from __future__ import annotations

import orjson
import pytest

from app.classify.jobs import (NOTHING_TO_DO, Progress, chunk_step, classifier_of, in_scope, job_body, job_doc,
                               start_step)
from app.classify.jobrules import check, parse
from app.classify.objects import objects_step
from app.classify.state import ModelState
from app.schemas.deadletter import Source
from app.settings import Settings
from tests.unit.test_steps import rec, train

CLASS = {"record": "class", "class": "Article", "properties": [
    {"name": "body", "dataType": ["text"]}, {"name": "topic", "dataType": ["Topic"]}]}
BODY = {"type": "knn", "class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["body"],
        "settings": {"k": 1}}
JOB_ID = "5d0e3c3e-2a39-4d36-9e4c-1f2a3b4c5d6e"
SRC = Source(topic="t.stored-objects-changelog", partition=0, offset=0)


@pytest.fixture
def state(tmp_path):
    s = ModelState(Settings(data_dir=tmp_path, vectorizer="hashing", vector_dim=64))
    train(s, CLASS,
          {"record": "example", "id": "e1", "class": "Article", "vector": [1.0, 0.0], "labels": {"topic": "sport"}},
          {"record": "example", "id": "e2", "class": "Article", "vector": [0.0, 1.0], "labels": {"topic": "news"}})
    yield s
    s.close()


def stored_table(state: ModelState, objects: list[dict]) -> dict[bytes, bytes]:
    """The stored-objects table the objects pipeline writes for ``objects`` (a declared class)."""
    outs = objects_step(state, [rec(o, key=o["id"].encode(), offset=i) for i, o in enumerate(objects)])
    assert all(o.rejected is None for o in outs)
    return {w.key: w.value for o in outs for w in o.writes}


def job(state, **change) -> dict:
    req = check(parse({**BODY, **change}), state.snapshot())
    return job_doc(req, JOB_ID, 1000)


def test_declared_class_objects_are_stored_with_a_result_that_says_so(state):
    outs = objects_step(state, [rec({"id": "a", "class": "Article", "vector": [1.0, 0.0]})])
    assert outs[0].results[0].result_id == "a/-" and "stored for jobs" in outs[0].results[0].detail["skipped"]
    assert [w.table for w in outs[0].writes] == ["stored-objects"]
    other = objects_step(state, [rec({"id": "b", "class": "Other", "vector": [1.0, 0.0]})])
    assert other[0].rejected.reason == "unknown_class"


def test_a_chunk_labels_the_unlabelled_and_counts_each_once(state):
    table = stored_table(state, [
        {"id": "a", "class": "Article", "vector": [0.9, 0.1]},
        {"id": "b", "class": "Article", "vector": [0.1, 0.9]},
        {"id": "c", "class": "Article", "vector": [0.9, 0.1], "properties": {"topic": "given"}},  # has a value
    ])
    j = job(state)
    keys = sorted(table)
    pairs, prog = chunk_step(state, j, keys[:2], table.get, SRC, Progress(), now=5000, last=False)
    assert [(r.key, o.results[0].labels["topic"]) for r, o in pairs] == [(b"a", "sport"), (b"b", "news")]
    assert prog == Progress(cursor="b", count=2, countSucceeded=2, countFailed=0)
    assert pairs[0][1].results[0].result_id == f"a/job:{JOB_ID}"
    for r, o in pairs:  # the sink writes the stored objects back
        table.update({w.key: w.value for w in o.writes})
    doc = orjson.loads(table[b"a"])
    assert doc["labels"]["topic"]["label"] == "sport" and doc["classification"]["id"] == JOB_ID
    assert doc["labels"]["topic"]["meta"]["overallCount"] == 1

    # the rest: "c" already has a value, so nothing; the partition is done
    rest, done = chunk_step(state, j, keys[2:], table.get, SRC, prog, now=6000, last=True)
    assert rest == [] and done.done and done.count == 2 and done.completed == 6000

    # a chunk redone after a crash (its progress lost) gives the same bytes and the same counts
    again, prog2 = chunk_step(state, j, keys[:2], table.get, SRC, Progress(), now=7000, last=False)
    assert [o.encoded for _, o in again] == [o.encoded for _, o in pairs] and prog2 == prog

    # another unlabeled job finds nothing left; scope all takes everything of the class
    other = {**j, "id": "6d0e3c3e-2a39-4d36-9e4c-1f2a3b4c5d6e"}
    assert chunk_step(state, other, keys, table.get, SRC, Progress(), 8000, True)[1].count == 0
    assert chunk_step(state, {**other, "scope": "all"}, keys, table.get, SRC, Progress(), 8000, True)[1].count == 3


def test_source_where_and_class_limit_the_scope(state):
    j = job(state, filters={"sourceWhere": {"path": ["lang"], "operator": "Equal", "valueText": "en"}})
    clf = classifier_of(j, state)
    doc = {"object": {"class": "Article", "properties": {"lang": "en"}}}
    assert in_scope(j, clf, doc)
    assert not in_scope(j, clf, {"object": {"class": "Article", "properties": {"lang": "de"}}})
    assert not in_scope(j, clf, {"object": {"class": "Other", "properties": {"lang": "en"}}})


def test_a_failing_item_is_counted_failed_and_dead_lettered(state):
    table = stored_table(state, [{"id": "a", "class": "Article", "vector": [0.9, 0.1]}])
    table[b"z"] = b'{"at":1,"object":{"class":"Article","id":"z","vector":[1,2,3]}}'  # wrong dimension
    pairs, prog = chunk_step(state, job(state), sorted(table), table.get, SRC, Progress(), 5000, True)
    assert [o.rejected.reason if o.rejected else None for _, o in pairs] == [None, "vector_dimension_mismatch"]
    assert (prog.count, prog.countSucceeded, prog.countFailed) == (2, 1, 1)
    body = job_body(job(state), {0: orjson.loads(prog.value(JOB_ID, 0, 5000))}, 1)
    assert body["status"] == "completed" and body["meta"]["countFailed"] == 1


def test_a_job_with_nothing_to_do_fails_like_weaviate(state):
    body = job_body(job(state), {0: {"count": 0, "done": True, "completed": 2000}}, 1)
    assert body["status"] == "failed" and body["error"] == NOTHING_TO_DO and "countFailed" not in body["meta"]


def test_start_records_are_idempotent_and_bad_ones_are_rejected(state):
    good = rec(BODY, key=b"not-a-uuid", offset=4, topic="t.jobs")
    outs = start_step(state, [good, good, rec(b"{x", topic="t.jobs"), rec({**BODY, "class": "Nope"}, topic="t.jobs"),
                              rec({**BODY, "id": "nope"}, topic="t.jobs")], now=1)
    assert outs[0].writes == outs[1].writes  # a redelivery starts the same job, not a second one
    assert [o.rejected.reason for o in outs[2:]] == ["invalid_json", "invalid_job", "schema_violation"]
    assert outs[3].rejected.detail == "invalid classification: class 'Nope' not found in schema"
