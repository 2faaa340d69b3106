"""The pure steps of the pipeline, fed hostile batches: one outcome per record, the bad one alone fails."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from app.classify import training as training_mod
from app.classify.objects import objects_step
from app.classify.outcome import Record
from app.classify.state import ModelState
from app.classify.training import training_step
from app.schemas.deadletter import Source
from app.schemas.objects import ObjectEvent
from app.schemas.vectors import encode_vector
from app.settings import Settings


@pytest.fixture
def state(tmp_path):
    s = ModelState(Settings(data_dir=tmp_path, vectorizer="hashing", vector_dim=64))
    yield s
    s.close()


def rec(value, key: bytes | None = b"k", offset: int = 0, topic: str = "t.objects") -> Record:
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    return Record(key, raw, Source(topic=topic, partition=0, offset=offset))


def train(state: ModelState, *records: dict) -> list:
    """Validate like the training agent, then apply like the replica (table bytes -> model state)."""
    outs = training_step(state, [rec(r, offset=i, topic="t.training") for i, r in enumerate(records)])
    for o in outs:
        for w in o.writes:
            state.apply(w.key.decode(), w.value)
    return outs


def knn(name="topic", cls="Article", **extra) -> dict:
    return {"record": "classifier", "name": name, "type": "knn", "class": cls, "classifyProperties": ["topic"],
            "settings": {"k": 1}, **extra}


def obj(i, vector=None, cls="Article", **extra) -> dict:
    d = {"id": f"o{i}", "class": cls, **extra}
    if vector is not None:
        d["vector"] = vector
    return d


def test_mixed_dimensions_before_any_example_fail_alone(state):
    train(state, knn())
    outs = objects_step(state, [rec(obj(0, [1.0, 0.0])), rec(obj(1, [1.0, 0.0, 0.0])), rec(b"{not json")])
    assert len(outs) == 3
    assert [o.rejected.reason if o.rejected else None for o in outs][2] == "invalid_json"
    # no example yet: nothing to compare with, but neither object takes the other down
    assert all(o.rejected is None or o.rejected.reason != "internal_error" for o in outs)


def test_an_exception_in_one_item_becomes_its_dead_letter_only(state, monkeypatch):
    train(state, knn(), {"record": "example", "id": "e1", "class": "Article", "vector": [1, 0],
                         "labels": {"topic": "a"}},
          {"record": "example", "id": "e2", "class": "Article", "vector": [0, 1], "labels": {"topic": "b"}})
    from app.classify import objects as objects_mod

    real = objects_mod.classify_batch

    def explode_on_negative(q, index, k, where):
        if (q < 0).any():
            raise ValueError("boom")
        return real(q, index, k, where)

    monkeypatch.setattr(objects_mod, "classify_batch", explode_on_negative)
    outs = objects_step(state, [rec(obj(0, [1.0, 0.1])), rec(obj(1, [-1.0, 0.0])), rec(obj(2, [0.1, 1.0]))])
    assert outs[0].results[0].labels == {"topic": "a"}
    assert outs[1].rejected.reason == "internal_error" and "ValueError: boom" in outs[1].rejected.detail
    assert outs[2].results[0].labels == {"topic": "b"}
    assert all(len(o.writes) == 1 for o in (outs[0], outs[2])) and outs[1].writes == []


def test_dimension_change_under_the_search_is_a_dimension_dead_letter(state, monkeypatch):
    train(state, knn(), {"record": "example", "id": "e1", "class": "Article", "vector": [1, 0],
                         "labels": {"topic": "a"}})
    from app.classify import objects as objects_mod
    from app.index.store import DimensionError

    def raced(q, index, k, where):
        raise DimensionError(3, 2, "Article")

    monkeypatch.setattr(objects_mod, "classify_batch", raced)
    [out] = objects_step(state, [rec(obj(0, [1.0, 0.0]))])
    assert out.rejected.reason == "vector_dimension_mismatch"


def tax(version: int, prompt: str = "sport news", name: str = "tone") -> dict:
    return {"record": "taxonomy", "name": name, "version": version,
            "classes": [{"name": "sport", "prompts": [prompt]}, {"name": "politics", "prompts": ["election vote"]}]}


def test_taxonomy_versions_are_checked_against_the_batch_itself(state):
    outs = training_step(state, [rec(tax(2), b"taxonomy:tone", 0), rec(tax(1), b"taxonomy:tone", 1)])
    assert outs[0].rejected is None and outs[1].rejected.reason == "invalid_taxonomy"


def test_taxonomy_versions_are_checked_against_the_table(state):
    written = {b"taxonomy:tone": orjson.dumps(tax(5))}
    [out] = training_step(state, [rec(tax(4), b"taxonomy:tone")], written.get)
    assert out.rejected.reason == "invalid_taxonomy" and "older" in out.rejected.detail


def test_first_examples_of_a_class_with_two_dimensions_in_one_batch(state):
    ex = lambda i, v: {"record": "example", "id": f"e{i}", "class": "New", "vector": v, "labels": {"t": "x"}}  # noqa: E731
    outs = training_step(state, [rec(ex(1, [1, 0])), rec(ex(2, [1, 0, 0]))])
    assert outs[0].rejected is None and outs[1].rejected.reason == "vector_dimension_mismatch"


def test_a_taxonomy_is_compiled_once_per_worker(state, monkeypatch):
    from app.core import taxonomy as core_taxonomy

    calls = []
    real = core_taxonomy.compile_taxonomy

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(core_taxonomy, "compile_taxonomy", counting)
    train(state, tax(1))
    assert len(calls) == 1 and state.snapshot().taxonomies["tone"].version == 1


def test_object_text_is_embedded_by_the_taxonomy_vectorizer(state):
    train(state, {**tax(1), "vectorizer": "hashing"},
          {"record": "classifier", "name": "z", "type": "zeroshot", "class": "Comment",
           "classifyProperties": ["tone"], "taxonomies": ["tone"]})
    [out] = objects_step(state, [rec({"id": "c1", "class": "Comment", "text": "sport news today"})])
    assert out.results[0].labels == {"tone": "sport"}


def test_text_against_a_taxonomy_without_vectorizer_is_refused(state):
    v = np.eye(2).tolist()
    t = {"record": "taxonomy", "name": "raw", "version": 1, "vectorizer": "none",
         "classes": [{"name": "a", "prompts": ["a"], "prompt_vectors": [v[0]]},
                     {"name": "b", "prompts": ["b"], "prompt_vectors": [v[1]]}]}
    train(state, t, {"record": "classifier", "name": "z", "type": "zeroshot", "class": "C",
                     "classifyProperties": ["p"], "taxonomies": ["raw"]})
    [ok, text] = objects_step(state, [rec(obj(1, [1.0, 0.0], cls="C")), rec({"id": "t", "class": "C", "text": "a"})])
    assert ok.results[0].labels == {"p": "a"}
    assert text.rejected.reason == "vectorizer_error"


def test_knn_text_in_another_space_than_the_examples_is_refused(state):
    train(state, {"record": "example", "id": "e1", "class": "A", "text": "sport", "labels": {"topic": "s"}})
    [out] = training_step(state, [rec(knn(cls="A", vectorizer="minilm"))])
    assert out.rejected.reason == "invalid_classifier" and "hashing" in out.rejected.detail
    train(state, knn(cls="A"))
    [res] = objects_step(state, [rec({"id": "x", "class": "A", "text": "sport"})])
    assert res.results[0].labels == {"topic": "s"}


def test_training_step_isolates_an_unexpected_error(state, monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("bug")

    monkeypatch.setattr(training_mod, "_taxonomy", broken)
    outs = training_step(state, [rec(tax(1), b"taxonomy:tone"), rec(knn())])
    assert outs[0].rejected.reason == "internal_error" and outs[1].rejected is None


def test_a_filter_nested_400_deep_is_refused_with_its_reason(state):
    where: dict = {"path": ["n"], "operator": "Equal", "valueInt": 1}
    for _ in range(400):
        where = {"operator": "Not", "operands": [where]}
    deep = json.dumps(knn(filters={"sourceWhere": where})).encode()  # orjson refuses to write 800 levels
    outs = training_step(state, [rec(deep), rec(knn(name="ok"))])
    assert outs[0].rejected.reason == "filter_too_complex"
    assert outs[0].rejected.path.startswith("filters.sourceWhere") and outs[1].rejected is None


def test_only_the_text_over_the_limit_is_refused(tmp_path):
    s = ModelState(Settings(data_dir=tmp_path, vectorizer="hashing", vector_dim=64, max_text_chars=1000))
    try:
        train(s, tax(1), {"record": "classifier", "name": "z", "type": "zeroshot", "class": "Comment",
                          "classifyProperties": ["tone"], "taxonomies": ["tone"]})
        outs = objects_step(s, [rec({"id": "a", "class": "Comment", "text": "sport news"}),
                                rec({"id": "b", "class": "Comment", "text": "x" * 1001}),
                                rec({"id": "c", "class": "Comment", "text": "election vote"})])
        assert outs[0].results[0].labels == {"tone": "sport"} and outs[2].results[0].labels == {"tone": "politics"}
        assert outs[1].rejected.reason == "text_too_long"
    finally:
        s.close()


def test_the_stored_object_is_the_events_json_dump_without_its_vector(state):
    """``stored`` builds the object field by field: the bytes of pydantic's ``model_dump`` (which it replaced)."""
    train(state, knn(), {"record": "class", "class": "Note", "properties": []},
          {"record": "example", "id": "e1", "class": "Article", "vector": [1.0, 0.0], "labels": {"topic": "sport"}})
    events = [obj(0, [1.0, 0.25], properties={"a": [1, {"b": None}], "ü": "ß\u2028", "n": 2**62, "f": 1e-300},
                  text="hé"),
              obj(1, [0.5, 0.5]),
              {"id": "o2", "class": "Note", "text": "only text", "properties": {"x": True, "y": [], "z": {}}},
              {"id": "o3", "class": "Note", "vector": "AACAPwAAAEA=", "ignored": 1}]
    outs = objects_step(state, [rec(e, offset=i) for i, e in enumerate(events)])
    assert [o.rejected for o in outs] == [None] * 4
    for e, out in zip(events, outs, strict=True):
        (write,) = out.writes
        event = ObjectEvent.model_validate(e)
        want = event.model_dump(mode="json", by_alias=True, exclude={"vector"})
        if event.vector is not None:
            want["vector"] = encode_vector(event.vector)
        assert orjson.dumps(orjson.loads(write.value)["object"]) == orjson.dumps(want)
