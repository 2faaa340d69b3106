"""Jobs through the official Weaviate 3.x client, unchanged, against a real worker on the real broker."""

from __future__ import annotations

import asyncio
import warnings

import pytest
import weaviate

from app.classify.jobs import NOTHING_TO_DO, ZERO_TIME
from app.devtools import samples
from tests.integration.jobs_helpers import ARTICLE, articles, http

N = 3000


def client(port: int, auth: weaviate.AuthApiKey | None = None) -> weaviate.Client:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 3.x client warns that it is deprecated
        return weaviate.Client(f"http://127.0.0.1:{port}", auth_client_secret=auth)


async def test_knn_job_through_the_weaviate_client(stack):
    w = stack.worker()
    training = samples.training_records()[:-1] + [("class:Article", ARTICLE)]  # examples, no standing classifier
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))
    objects, truth = articles(N)
    await stack.produce("objects", objects + [("o1", {"id": "o1", "class": "Other", "vector": [1.0, 0.0]})])
    # a declared class without a classifier: stored, and each object says so; an undeclared one: dead letter
    stored = await stack.collect("results", N, 90, where=lambda k, v: v["result_id"].endswith("/-"))
    assert len(stored) == N and "stored for jobs" in stored[0][1]["detail"]["skipped"]
    assert [v["reason"] for _, v in await stack.collect("deadletter", 1, 30)] == ["unknown_class"]

    c = await asyncio.to_thread(client, w.web_port)
    job = await asyncio.to_thread(
        lambda: c.classification.schedule().with_type("knn").with_class_name("Article")
        .with_classify_properties(["topic"]).with_based_on_properties(["body"]).with_k(3)
        .with_wait_for_completion().do())
    assert job["status"] == "completed", job
    assert job["meta"]["count"] == job["meta"]["countSucceeded"] == N
    assert "countFailed" not in job["meta"] and job["meta"]["completed"] != ZERO_TIME
    assert (await asyncio.to_thread(c.classification.get, job["id"]))["meta"] == job["meta"]

    results = await stack.collect("results", N, 60, where=lambda k, v: v["classifier"] == f"job:{job['id']}")
    assert len({v["result_id"] for _, v in results}) == N
    right = sum(v["labels"]["topic"] == truth[v["item_id"]] for _, v in results)
    assert right >= 0.95 * N
    assert all(v["detail"]["job"] == {"id": job["id"], "scope": "unlabeled"} for _, v in results)

    some = objects[7][0]
    obj = await asyncio.to_thread(c.data_object.get_by_id, some, class_name="Article",
                                  additional_properties=["classification"])
    ref = obj["properties"]["topic"][0]
    assert ref["label"] == truth[some] and ref["beacon"].startswith("weaviate://localhost/Topic/")
    assert ref["classification"]["overallCount"] == 3
    assert obj["additional"]["classification"]["id"] == job["id"]
    assert obj["additional"]["classification"]["classifiedFields"] == ["topic"]
    assert obj["properties"]["body"] == "article 7"

    # everything is labelled now: Weaviate's "nothing to classify" failure
    again = await asyncio.to_thread(
        lambda: c.classification.schedule().with_type("knn").with_class_name("Article")
        .with_classify_properties(["topic"]).with_based_on_properties(["body"]).with_k(3)
        .with_wait_for_completion().do())
    assert again["status"] == "failed" and again["error"] == NOTHING_TO_DO
    listed = http(w.web_port, "GET", "/v1/classifications")[1]
    assert [j["id"] for j in listed] == [job["id"], again["id"]]

    await _error_paths(w.web_port, job["id"])
    await _jobs_topic(stack, w.web_port)


async def _jobs_topic(stack, port: int) -> None:
    """Jobs start from the topic too; bad start records are dead letters with Weaviate's message."""
    ident = "5d0e3c3e-2a39-4d36-9e4c-1f2a3b4c5d6e"
    body = {"type": "knn", "class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["body"],
            "scope": "all"}
    await stack.produce("jobs", [("j-bad", b"{nope"), ("j-class", {**body, "class": "Nope"}),
                                 ("j-type", {**body, "settings": []}), (ident, body)])
    dead = await stack.collect("deadletter", 3, 30, where=lambda k, v: v["source"]["topic"].endswith(".jobs"))
    assert sorted((v["reason"], v["detail"][:40]) for _, v in dead) == [
        ("invalid_job", "invalid classification: class 'Nope' not"),
        ("invalid_json", "value is not valid JSON: unexpected char"),
        ("schema_violation", "settings: Input should be a valid dictio")]
    async def finished():
        while (b := http(port, "GET", f"/v1/classifications/{ident}"))[0] != 200 or b[1]["status"] == "running":
            await asyncio.sleep(0.2)
        return b[1]
    got = await asyncio.wait_for(finished(), 60)
    assert got["status"] == "completed" and got["meta"]["count"] == N and got["scope"] == "all"


async def _error_paths(port: int, known: str) -> None:
    ok = {"type": "knn", "class": "Article", "classifyProperties": ["topic"], "basedOnProperties": ["body"],
          "settings": {"k": 3}}
    inv = "invalid classification: "
    cases = [
        (b"{not json", 400, "request body is not valid JSON"),
        (b"", 400, "request body is not valid JSON"),
        (b"[1, 2]", 422, "the body must be a JSON object, not list"),
        ({**ok, "classifyProperties": "topic"}, 422, "classifyProperties: Input should be a valid list"),
        ({**ok, "class": 5}, 422, "class: Input should be a valid string"),
        ({**ok, "scope": "some"}, 422, "scope: Input should be 'unlabeled' or 'all'"),
        ({**ok, "class": ""}, 400, inv + "class must be set"),
        ({k: v for k, v in ok.items() if k != "class"}, 400, inv + "class must be set"),
        ({**ok, "class": "Nope"}, 400, inv + "class 'Nope' not found in schema"),
        ({**ok, "filters": {"targetWhere": {"path": ["x"], "operator": "Equal", "valueText": "y"}}}, 400,
         inv + "type is 'knn', but 'targetWhere' filter is set"),
        ({**ok, "basedOnProperties": []}, 400, inv + "basedOnProperties must have at least one property"),
        ({**ok, "basedOnProperties": ["body", "x"]}, 400,
         inv + "only a single property in basedOnProperties supported at the moment, got [body x]"),
        ({**ok, "basedOnProperties": ["nope"]}, 400, inv + "basedOnProperties: property 'nope' does not exist"),
        ({**ok, "basedOnProperties": ["wordCount"]}, 400,
         inv + "basedOnProperties: property 'wordCount' must be of type 'text'"),
        ({**ok, "classifyProperties": []}, 400, inv + "classifyProperties must have at least one property"),
        ({**ok, "classifyProperties": None, "filters": None}, 400,
         inv + "classifyProperties must have at least one property"),
        ({**ok, "classifyProperties": ["nope"]}, 400, inv + "classifyProperties: property 'nope' does not exist"),
        ({**ok, "classifyProperties": ["body"]}, 400,
         inv + "classifyProperties: property 'body' must be of reference type (cref)"),
        ({**ok, "settings": {"k": "3"}}, 400, "parse knn specific settings: settings.k must be number, got string"),
        ({**ok, "settings": {"k": 0}}, 400, "parse knn specific settings: settings.k must be at least 1, got 0"),
        ({**ok, "type": "contextual"}, 400, inv + "type 'contextual' is not supported"),
        ({**ok, "type": "zeroshot", "settings": {}}, 400, "parse zeroshot specific settings: settings.taxonomies"),
        ({**ok, "type": "zeroshot", "settings": {"taxonomies": ["nope"]}}, 400,
         inv + "settings.taxonomies: taxonomy 'nope' does not exist"),
        ({**ok, "filters": {"sourceWhere": {"operator": "Bogus"}}}, 400, inv + "filters.sourceWhere: "),
    ]
    for body, status, message in cases:
        got_status, got = http(port, "POST", "/v1/classifications", body)
        assert got_status == status, (body, got)
        assert isinstance(got, dict) and len(got["error"]) == 1 and got["error"][0]["message"].startswith(message), \
            (body, got)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert http(port, "GET", f"/v1/classifications/{unknown}")[0] == 404
    assert http(port, "GET", f"/v1/classifications/{known}")[0] == 200
    assert http(port, "GET", f"/v1/objects/Article/{unknown}")[0] == 404
    assert http(port, "GET", f"/v1/objects/{unknown}")[0] == 404
    assert http(port, "GET", "/v1/schema/Nope")[0] == 404
    assert http(port, "GET", "/v1/schema/Article") == (200, {k: v for k, v in ARTICLE.items() if k != "record"})
    assert http(port, "GET", "/v1/schema")[1] == {"classes": [{k: v for k, v in ARTICLE.items() if k != "record"}]}
    assert http(port, "GET", "/v1/meta")[1]["version"] >= "1.14"
    assert http(port, "GET", "/v1/.well-known/live")[0] == http(port, "GET", "/v1/.well-known/ready")[0] == 200


KEY = "jobs-test-key-0123456789abcdef"


async def test_the_client_with_an_api_key_and_two_workers(stack):
    ws = [stack.worker(f"w{i}", LABELSTREAM_API_KEYS=KEY, LABELSTREAM_MAX_REQUEST_BYTES="4096") for i in range(2)]
    training = samples.training_records()[:-1] + [("class:Article", ARTICLE)]
    await stack.produce("training", training)
    await asyncio.gather(*(stack.wait_ready(w, min_training=len(training)) for w in ws))
    n = 300
    objects, truth = articles(n, run="keys")
    await stack.produce("objects", objects)
    assert len(await stack.collect("results", n, 60, where=lambda k, v: v["result_id"].endswith("/-"))) == n

    url = f"http://127.0.0.1:{ws[0].web_port}"
    for bad in (None, weaviate.AuthApiKey("wrong-key-0123456789abcdef")):
        # startup_period=None: a wrong key's readiness probe is a 401 too, which the client would retry for 5 s
        with pytest.raises(weaviate.exceptions.UnexpectedStatusCodeException, match="401"):
            await asyncio.to_thread(weaviate.Client, url, auth_client_secret=bad, startup_period=None)
    assert http(ws[0].web_port, "POST", "/v1/classifications", {"class": "Article"}) == (
        401, {"error": [{"message": "no API key: send Authorization: Bearer <key> or x-api-key"}]})
    assert http(ws[0].web_port, "GET", "/v1/classifications", key="wrong-key-0123456789abcdef") == (
        401, {"error": [{"message": "invalid API key"}]})
    huge = {"class": "Article", "basedOnProperties": ["body"], "classifyProperties": ["x" * 5000]}
    assert http(ws[0].web_port, "POST", "/v1/classifications", huge, key=KEY) == (
        413, {"error": [{"message": "request body larger than 4096 bytes"}]})
    assert http(ws[1].web_port, "GET", "/v1/classifications", key=KEY) == (200, [])

    c = await asyncio.to_thread(client, ws[0].web_port, weaviate.AuthApiKey(KEY))
    job = await asyncio.to_thread(
        lambda: c.classification.schedule().with_type("knn").with_class_name("Article")
        .with_classify_properties(["topic"]).with_based_on_properties(["body"]).with_k(3)
        .with_wait_for_completion().do())
    assert job["status"] == "completed" and job["meta"]["count"] == job["meta"]["countSucceeded"] == n
    other = await asyncio.to_thread(client, ws[1].web_port, weaviate.AuthApiKey(KEY))
    assert await asyncio.to_thread(other.classification.get, job["id"]) == job  # either worker answers
    for cl in (c, other):  # each object from both workers: one of them forwards it to the owner, with the key
        for ident, _ in objects[:8]:
            obj = await asyncio.to_thread(cl.data_object.get_by_id, ident, class_name="Article",
                                          additional_properties=["classification"])
            assert obj["properties"]["topic"][0]["label"] == truth[ident]
            assert obj["additional"]["classification"]["id"] == job["id"]
