"""The bytes made in the classify pool are the contract: they validate against ``Result`` /
``ModerationHit``, equal ``dumps`` of the models (what the sink used to send; the steps build
results as ``ResultDoc``, plain data validated here as the ``Result`` it stands for), and are the
same for a redelivery of the same record."""

from __future__ import annotations

import numpy as np
import pytest

from app.classify.codec import dumps
from app.classify.objects import objects_step
from app.classify.outcome import Outcome
from app.schemas.results import ModerationHit, Result
from app.service.runtime import _encoded
from tests.unit.test_steps import knn, obj, rec, state, train  # noqa: F401 - `state` is a fixture


def _zeroshot_with_policy(state) -> None:
    classes = [{"name": n, "prompts": [n], "prompt_vectors": [v]}
               for n, v in (("ok", [1.0, 0.0]), ("toxic", [0.0, 1.0]))]
    train(state, {"record": "taxonomy", "name": "tone", "version": 1, "classes": classes,
                  "policies": [{"action": "block", "classes": ["toxic"], "min_score": 0.1}]},
          {"record": "classifier", "name": "tone", "type": "zeroshot", "class": "Comment",
           "classifyProperties": ["tone"], "taxonomies": ["tone"]})


def test_encoded_results_and_hits_validate_and_equal_the_models(state):
    train(state, knn(), {"record": "example", "id": "e1", "class": "Article", "vector": [1.0, 0.0],
                         "labels": {"topic": "sport"}})
    _zeroshot_with_policy(state)
    batch = [rec(obj(0, [1.0, 0.1]), offset=0), rec(obj(1, [0.0, 1.0], cls="Comment"), offset=1),
             rec(b"{not json", offset=2)]
    outs = _encoded(objects_step, state, batch, state.snapshot())
    assert outs[2].rejected is not None and outs[2].encoded is None
    assert outs[0].encoded and outs[1].encoded and outs[1].encoded_hits, "a result each, and one policy hit"
    for out in outs[:2]:
        assert out.encoded == [dumps(r) for r in out.results]
        assert out.encoded_hits == [dumps(h) for h in out.hits]
        for body, r in zip(out.encoded, out.results, strict=True):
            assert Result.model_validate_json(body) == Result.model_validate(r.doc)
        for body, h in zip(out.encoded_hits or [], out.hits, strict=True):
            assert ModerationHit.model_validate_json(body) == h
    again = _encoded(objects_step, state, batch, state.snapshot())
    assert [o.encoded for o in again] == [o.encoded for o in outs], "a redelivery sends the same bytes"


def test_a_value_that_cannot_be_serialized_fails_only_its_outcome():
    deep: object = 1
    for _ in range(300):  # orjson serializes 255 levels
        deep = [deep]
    good = Outcome(results=[Result(result_id="a/c", item_id="a", class_="C", classifier="c", method="knn",
                                   labels={}, source=rec({}).source)])
    bad = Outcome(results=[Result(result_id="b/c", item_id="b", class_="C", classifier="c", method="knn",
                                  labels={}, detail={"x": deep}, source=rec({}).source)])
    assert good.encode().encoded and good.rejected is None
    assert bad.encode().rejected is not None and bad.rejected.reason == "internal_error"
    assert bad.encoded is None and bad.results == []


@pytest.mark.parametrize("n", [1, 200])
def test_encoding_keeps_one_outcome_per_record_in_order(state, n):
    train(state, knn(), {"record": "example", "id": "e1", "class": "Article", "vector": [1.0, 0.0],
                         "labels": {"topic": "sport"}})
    batch = [rec(obj(i, np.random.default_rng(i).random(2).tolist()), offset=i) for i in range(n)]
    outs = _encoded(objects_step, state, batch, state.snapshot())
    assert [Result.model_validate_json(o.encoded[0]).item_id for o in outs if o.encoded] == [f"o{i}" for i in range(n)]


def test_zeroshot_results_carry_the_top_classes_and_the_full_distributions_only_on_request(state):
    _zeroshot_with_policy(state)
    batch = [rec(obj(1, [0.2, 1.0], cls="Comment"), offset=1)]
    (compact,) = objects_step(state, batch)[0].results
    assert set(compact.detail) == {"zeroshot", "top", "paths", "policy"}
    top = compact.detail["top"]["tone"]["default"]
    assert [t["class"] for t in top] == ["toxic", "ok"] and top[0]["score"] > top[1]["score"]
    assert abs(sum(t["score"] for t in top) - 1) < 1e-9, "both classes of the head: they sum to 1"

    train(state, {"record": "classifier", "name": "tone", "type": "zeroshot", "class": "Comment",
                  "classifyProperties": ["tone"], "taxonomies": ["tone"], "distributions": ["models", "heads"]})
    (full,) = objects_step(state, batch)[0].results
    assert set(full.detail) == {"zeroshot", "models", "heads", "paths", "policy"}
    models = {p["name"]: p["probability"] for p in full.detail["models"][0]["properties"]}
    assert models == {t["class"]: t["score"] for t in top}
    assert {h["class"]: h["score"] for h in full.detail["heads"]["tone"]} == models
