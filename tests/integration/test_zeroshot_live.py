"""Zero-shot against the real broker: taxonomy versions switch atomically; policy hits."""

import asyncio

import numpy as np

from app.schemas.vectors import encode_vector

E = np.eye(4)


def taxonomy(version: int, swap: bool) -> dict:
    # v1: "calm" is axis 0 and "toxic" axis 1; v2 swaps the prompts' vectors.
    a, b = (E[1], E[0]) if swap else (E[0], E[1])
    return {"record": "taxonomy", "name": "tone", "version": version, "vectorizer": "none", "temperature": 0.05,
            "classes": [{"name": "calm", "prompts": ["a calm remark"], "prompt_vectors": [a.tolist()]},
                        {"name": "toxic", "prompts": ["an insult"], "prompt_vectors": [b.tolist()]}],
            "policies": [{"action": "block", "classes": ["toxic"], "min_score": 0.9},
                         {"action": "review", "classes": ["toxic"], "min_score": 0.6}]}


CLASSIFIER = {"record": "classifier", "name": "tone", "type": "zeroshot", "class": "Comment",
              "classifyProperties": ["tone"], "taxonomies": ["tone"]}
# The full per-class distributions are opt-in: this one's results carry them (Yandex models, Hive heads).
FULL = {**CLASSIFIER, "distributions": ["models", "heads"]}


def comment(i: int, axis: int) -> tuple[str, dict]:
    v = E[axis] + 0.05 * E[2]
    return f"c{i}", {"id": f"c{i}", "class": "Comment", "vector": encode_vector(v)}


async def test_taxonomy_version_switches_mid_stream_without_mixing(stack):
    w = stack.worker()
    await stack.produce("training", [("taxonomy:tone", taxonomy(1, swap=False)), ("classifier:tone", FULL)])
    await stack.wait_ready(w, min_training=2)

    # Before the switch: everything is scored with v1.
    await stack.produce("objects", [comment(j, axis=0) for j in range(150)])
    before = await stack.collect("results", 150, timeout=60)
    assert {(r["taxonomies"][0]["version"], r["labels"]["tone"]) for _, r in before} == {(1, "calm")}

    # The switch lands while events keep flowing: each result uses one version, consistently.
    async def stream_more() -> None:
        for wave in range(5):
            await stack.produce("objects", [comment(150 + wave * 30 + j, axis=0) for j in range(30)])
            await asyncio.sleep(0.1)

    flowing = asyncio.create_task(stream_more())
    await stack.produce("training", [("taxonomy:tone", taxonomy(2, swap=True))])
    await flowing
    await stack.wait_ready(w, min_training=3)
    await stack.produce("objects", [comment(300 + j, axis=0) for j in range(50)])  # after: v2 only

    got = await stack.collect("results", 350, timeout=60)
    assert len(got) == 350
    versions = {}
    for _, r in got:
        (tax,) = r["taxonomies"]
        assert tax["name"] == "tone"
        models = r["detail"]["models"]
        assert [m["version"] for m in models] == [tax["version"]], "one version per result"
        assert {p["name"] for p in models[0]["properties"]} == {"calm", "toxic"}
        assert abs(sum(p["probability"] for p in models[0]["properties"]) - 1) < 1e-6
        assert {h["class"] for h in r["detail"]["heads"]["tone"]} == {"calm", "toxic"}
        # Axis-0 comments are calm under v1 and toxic under v2: labels never mix versions.
        assert r["labels"]["tone"] == {1: "calm", 2: "toxic"}[tax["version"]]
        versions[int(r["item_id"][1:])] = tax["version"]
    assert all(versions[i] == 1 for i in range(150))
    assert all(versions[i] == 2 for i in range(300, 350))


async def test_policy_hits_go_to_the_moderation_topic(stack):
    w = stack.worker()
    await stack.produce("training", [("taxonomy:tone", taxonomy(1, swap=False)), ("classifier:tone", CLASSIFIER)])
    await stack.wait_ready(w, min_training=2)
    await stack.produce("objects", [comment(1, axis=1), comment(2, axis=0)])

    results = await stack.collect("results", 2, timeout=30)
    assert {r["item_id"]: r["labels"]["tone"] for _, r in results} == {"c1": "toxic", "c2": "calm"}
    hits = await stack.collect("moderation", 2, timeout=5)
    assert len(hits) == 1, "only the toxic comment is a hit"
    key, hit = hits[0]
    assert key == b"c1" and hit["action"] == "block" and hit["class_name"] == "toxic" and hit["score"] >= 0.9
    assert hit["taxonomy"] == {"name": "tone", "version": 1}
    policy = {r["item_id"]: r["detail"]["policy"]["tone"]["action"] for _, r in results}
    assert policy == {"c1": "block", "c2": "allow"}
    for _, r in results:  # the default result: the top classes per head, no full distributions
        assert "models" not in r["detail"] and "heads" not in r["detail"]
        top = r["detail"]["top"]["tone"]["default"]
        assert top[0]["class"] == r["labels"]["tone"] and top[0]["score"] == r["confidence"]["tone"]
