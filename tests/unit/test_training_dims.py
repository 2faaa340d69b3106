"""Training validation vs. the replica's lag: the first examples of a new class fix its dimension
even when they arrive in different batches, before the replica has applied the first one."""

from __future__ import annotations

import numpy as np
import orjson

from app.classify.outcome import Record
from app.classify.state import ModelState
from app.classify.training import training_step
from app.devtools import samples
from app.schemas.deadletter import Source
from app.settings import Settings


def _rec(ex_id: str, dim: int, offset: int) -> Record:
    value = {**samples.example(ex_id, np.ones(dim), "a"), "class": "New"}
    return Record(ex_id.encode(), orjson.dumps(value), Source(topic="training", partition=0, offset=offset))


def test_a_second_dimension_is_refused_across_batches_before_the_replica_applies(tmp_path):
    state = ModelState(Settings(data_dir=tmp_path))
    [first] = training_step(state, [_rec("e8", 8, 0)])
    assert first.rejected is None
    [second] = training_step(state, [_rec("e12", 12, 1)])  # the replica has not applied e8 yet
    assert second.rejected is not None and second.rejected.reason == "vector_dimension_mismatch"
    [same] = training_step(state, [_rec("e8b", 8, 2)])
    assert same.rejected is None

    for out in (first, same):  # the replica catches up: the index holds the dimension from now on
        for w in out.writes:
            state.apply(w.key.decode(), w.value)
    [third] = training_step(state, [_rec("e12", 12, 3)])
    assert third.rejected is not None and third.rejected.reason == "vector_dimension_mismatch"


def test_a_class_whose_pending_example_was_refused_by_the_index_is_free_again(tmp_path):
    state = ModelState(Settings(data_dir=tmp_path))
    [first] = training_step(state, [_rec("e8", 8, 0)])
    state.apply("e8", None)  # the replica saw the key (here: deleted before it was applied)
    [other] = training_step(state, [_rec("e12", 12, 1)])
    assert other.rejected is None
