"""``dumps`` of a model skips pydantic's ``model_dump`` (the hot path's largest serialization cost):
these hold it to the exact bytes ``model_dump`` + orjson gave, on random and on real results."""

from __future__ import annotations

import enum
import math

import numpy as np
import orjson
import pytest
from pydantic import BaseModel

from app.classify.codec import dumps
from app.classify.objects import objects_step
from app.schemas.deadletter import Source
from app.schemas.objects import ObjectEvent
from app.schemas.results import ModerationHit, Result, ResultDoc, TaxonomyRef
from app.service.runtime import _encoded
from tests.unit.test_encoded_outputs import _zeroshot_with_policy
from tests.unit.test_steps import knn, obj, rec, state, train  # noqa: F401 - `state` is a fixture


def reference(m: BaseModel | ResultDoc) -> bytes:
    """pydantic's own bytes; a ``ResultDoc`` (plain data) is validated as the ``Result`` it stands for first."""
    if isinstance(m, ResultDoc):
        m = Result.model_validate(m.doc)
    return orjson.dumps(m.model_dump(mode="json", by_alias=True, exclude_none=False),
                        option=orjson.OPT_SERIALIZE_NUMPY)


def tree(rng: np.random.Generator, depth: int = 0):
    kind = int(rng.integers(0, 9 if depth < 4 else 6))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return int(rng.integers(-2**40, 2**40))
    if kind == 3:
        return float(rng.choice([rng.normal(), 1e-300, -0.0, math.nan, math.inf, 1 / 3]))
    if kind == 4:
        return "".join(chr(int(c)) for c in rng.integers(32, 0x2FF, int(rng.integers(0, 6))))
    if kind == 5:
        return float(np.float64(rng.random()))
    if kind == 6:
        return [tree(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    if kind == 7:
        return tuple(tree(rng, depth + 1) for _ in range(int(rng.integers(0, 3))))
    return {f"k{i}": tree(rng, depth + 1) for i in range(int(rng.integers(0, 4)))}


def result(detail, **extra) -> Result:
    return Result(result_id="a/c", item_id="a", class_="C", classifier="c", method="zeroshot",
                  labels={"p": "x", "q": None}, confidence={"p": 0.25}, index_version={"p": 3},
                  taxonomies=[TaxonomyRef(name="t", version=2)], detail=detail, event_time=17,
                  source=Source(topic="t.objects", partition=3, offset=9, timestamp=17), **extra)


def test_random_results_serialize_to_the_model_dump_bytes():
    rng = np.random.default_rng(5)
    for _ in range(500):
        r = result({"x": tree(rng), "y": tree(rng)}, from_cache=bool(rng.integers(0, 2)))
        assert dumps(r) == reference(r)
        hit = ModerationHit(item_id="a", action="block", rule="r", taxonomy=TaxonomyRef(name="t", version=1),
                            class_name="c", score=float(rng.random()), scores={"c": 0.5}, source=r.source)
        assert dumps(hit) == reference(hit)


class Colour(enum.Enum):
    RED = "red"


class Inner(BaseModel):
    a: int


@pytest.mark.parametrize("detail", [{"b": b"bytes"}, {"s": {1, 2}}, {"d": {1: "int key"}}, {"m": Inner(a=1)},
                                    {"e": Colour.RED}, {"n": np.float32(0.1)}])
def test_what_orjson_refuses_or_reads_differently_goes_through_model_dump(detail):
    r = result(detail)
    try:
        expected = reference(r)
    except Exception:  # noqa: BLE001 - pydantic cannot (numpy scalars): orjson may, into a valid result
        assert Result.model_validate_json(dumps(r)).detail.keys() == r.detail.keys()
        return
    assert dumps(r) == expected


def test_a_model_with_a_custom_serializer_is_dumped_by_pydantic():
    e = ObjectEvent.model_validate({"id": "a", "class": "C", "vector": [0.1, 0.2]})
    assert dumps(e) == reference(e)  # float32 -> tolist(): orjson alone would print 0.1, not 0.10000000149011612
    assert b"0.10000000149011612" in dumps(e)


def test_real_knn_and_zeroshot_results_equal_the_model_dump_bytes(state):
    train(state, knn(), {"record": "example", "id": "e1", "class": "Article", "vector": [1.0, 0.0],
                         "labels": {"topic": "sport"}})
    _zeroshot_with_policy(state)
    batch = [rec(obj(0, [1.0, 0.1]), offset=0), rec(obj(1, [0.0, 1.0], cls="Comment"), offset=1)]
    outs = _encoded(objects_step, state, batch, state.snapshot())
    models = [m for o in outs for m in (*o.results, *o.hits)]
    assert len(models) == 3
    assert [dumps(m) for m in models] == [reference(m) for m in models]
