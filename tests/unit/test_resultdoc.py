"""The kNN and zero-shot steps build results as ``ResultDoc`` (plain data, no pydantic model per
result); ``Result`` stays the contract. Every document a real step makes must validate as a
``Result`` and serialize to the very bytes that ``Result`` gives, over kNN (several properties,
k > 1, filters, both metrics), zero-shot (flat, hierarchical, multi-head, full distributions,
``targetWhere``), skipped objects and a job's result."""

from __future__ import annotations

import numpy as np
import pytest

from app.classify.codec import dumps
from app.classify.jobs import Progress, chunk_step
from app.classify.objects import objects_step
from app.classify.state import ModelState
from app.schemas.results import Result, ResultDoc
from app.service.runtime import _encoded
from app.settings import Settings
from tests.unit.test_codec_dumps import reference
from tests.unit.test_jobs import CLASS, JOB_ID, SRC, job, stored_table
from tests.unit.test_steps import obj, rec, state, train  # noqa: F401 - `state` is a fixture
from tests.unit.test_zeroshot import TREE, cls

DIM = 4


def test_the_document_has_the_schemas_keys_in_its_field_order():
    doc = ResultDoc(result_id="a/c", item_id="a", class_="C", classifier="c", method="knn", labels={},
                    source=rec({}).source).doc
    assert list(doc) == [f.alias or name for name, f in Result.model_fields.items()]


def _model(state, rng: np.random.Generator) -> None:
    examples = [{"record": "example", "id": f"e{i}", "class": "Article", "vector": rng.normal(size=DIM).tolist(),
                 "labels": {"topic": str(rng.choice(["sport", "news", "art"])), "tone": str(rng.choice(["a", "b"]))},
                 "properties": {"lang": str(rng.choice(["en", "de"]))}} for i in range(40)]
    heads = [cls("calm", [rng.normal(size=DIM).tolist()], head="mood"),
             cls("angry", [rng.normal(size=DIM).tolist()], head="mood"),
             cls("short", [rng.normal(size=DIM).tolist()], head="length"),
             cls("long", [rng.normal(size=DIM).tolist(), rng.normal(size=DIM).tolist()], head="length")]
    outs = train(state,
          {"record": "classifier", "name": "topic", "type": "knn", "class": "Article",
           "classifyProperties": ["topic", "tone"], "settings": {"k": 5}},
          {"record": "classifier", "name": "topic-de", "type": "knn", "class": "Article",
           "classifyProperties": ["topic"], "settings": {"k": 3, "distance": "euclidean"},
           "filters": {"trainingSetWhere": {"path": ["lang"], "operator": "Equal", "valueText": "de"}}},
          *examples,
          {"record": "taxonomy", "name": "sport", "version": 3, "classes": TREE,
           "policies": [{"action": "review", "classes": ["tennis"], "min_score": 0.01}]},
          {"record": "taxonomy", "name": "style", "version": 1, "classes": heads},
          {"record": "classifier", "name": "zs", "type": "zeroshot", "class": "Comment",
           "classifyProperties": ["sport", "style"], "taxonomies": ["sport", "style"]},
          {"record": "classifier", "name": "zs-full", "type": "zeroshot", "class": "Comment",
           "classifyProperties": ["sport"], "taxonomies": ["sport"], "distributions": ["models", "heads"],
           "filters": {"targetWhere": {"path": ["leaf"], "operator": "Equal", "valueBoolean": True}}},
          {"record": "classifier", "name": "only-red", "type": "knn", "class": "Thing", "classifyProperties": ["topic"],
           "filters": {"sourceWhere": {"path": ["colour"], "operator": "Equal", "valueText": "red"}}})
    assert [o.rejected for o in outs if o.rejected] == [], "every training record accepted"


def test_every_result_of_a_real_step_is_the_result_schemas_bytes(state):
    rng = np.random.default_rng(11)
    _model(state, rng)
    batch = [rec(obj(i, rng.normal(size=DIM).tolist(), cls=str(rng.choice(["Article", "Comment", "Thing"])),
                     properties={"colour": "blue"}), offset=i) for i in range(60)]
    outs = _encoded(objects_step, state, batch, state.snapshot())
    docs = [r for o in outs for r in o.results]
    assert all(o.rejected is None for o in outs), [o.rejected for o in outs if o.rejected]
    assert {d.method for d in docs} == {"knn", "zeroshot"} and any(d.classifier == "" for d in docs), \
        "kNN, zero-shot and skipped results all made"
    assert all(type(d) is ResultDoc for d in docs)
    for out in outs:
        for body, doc in zip(out.encoded or [], out.results, strict=True):
            assert body == dumps(doc) == reference(doc)
            assert dumps(Result.model_validate_json(body)) == body


@pytest.mark.parametrize("scope", ["all", "unlabeled"])
def test_a_jobs_results_are_the_result_schemas_bytes(tmp_path, scope):
    jstate = ModelState(Settings(data_dir=tmp_path, vectorizer="hashing", vector_dim=64))
    try:
        train(jstate, CLASS, *({"record": "example", "id": f"e{i}", "class": "Article", "vector": v,
                                "labels": {"topic": t}} for i, (v, t) in enumerate([([1.0, 0.0], "sport"),
                                                                                  ([0.0, 1.0], "news")])))
        table = stored_table(jstate, [{"id": f"s{i}", "class": "Article", "vector": [1.0, i / 4]} for i in range(4)])
        pairs, _ = chunk_step(jstate, job(jstate, scope=scope), sorted(table), table.get, SRC, Progress(), 5000, True)
        docs = [r for _, o in pairs for r in o.results]
        assert len(docs) == 4 and all(d.detail["job"]["id"] == JOB_ID for d in docs), "the job named on each"
        for _, out in pairs:
            assert out.encoded == [dumps(d) for d in out.results] == [reference(d) for d in out.results]
    finally:
        jstate.close()
