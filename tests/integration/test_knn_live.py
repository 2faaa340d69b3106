"""kNN against the real broker: live training updates, deletes, restarts, index versions."""

import numpy as np
import pytest

from app.devtools import samples
from app.index import files
from app.schemas.vectors import encode_vector


def obj(oid: str, vector) -> tuple[str, dict]:
    return oid, {"id": oid, "class": samples.CLASS, "properties": {}, "vector": encode_vector(vector)}


async def classify(stack, oid: str, vector, timeout: float = 30) -> dict:
    await stack.produce("objects", [obj(oid, vector)])
    got = await stack.collect("results", 1, timeout, where=lambda k, v: v["item_id"] == oid)
    assert got, f"no result for {oid}"
    return got[0][1]


async def test_examples_added_and_deleted_mid_stream_change_the_next_result(stack):
    w = stack.worker()
    training = samples.training_records()[:-1] + [("classifier:nn", samples.classifier(k=1, name="nn"))]
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))

    probe = np.random.default_rng(11).normal(size=samples.DIM)  # somewhere between the clusters
    before = await classify(stack, "probe-1", probe)
    first = before["labels"]["topic"]
    other = next(label for label in samples.LABELS if label != first)
    assert before["detail"]["knn"]["topic"]["meta"]["closestOverallDistance"] > 0.01

    # A new example right at the probe, labelled otherwise: it wins the very next event.
    await stack.produce("training", [("ex-new", samples.example("ex-new", probe, other))])
    await stack.wait_ready(w, min_training=len(training) + 1)
    after = await classify(stack, "probe-2", probe)
    assert after["labels"]["topic"] == other
    assert after["detail"]["knn"]["topic"]["neighbours"][0]["id"] == "ex-new"
    assert after["detail"]["knn"]["topic"]["meta"]["closestOverallDistance"] < 1e-6

    # Its tombstone removes it again.
    await stack.produce("training", [("ex-new", None)])
    await stack.wait_ready(w, min_training=len(training) + 2)
    again = await classify(stack, "probe-3", probe)
    assert again["labels"]["topic"] == first
    assert "ex-new" not in [n["id"] for n in again["detail"]["knn"]["topic"]["neighbours"]]


@pytest.mark.parametrize("kind", ["annoy", "ivf"])
async def test_index_versions_move_forward_and_survive_a_kill(stack, kind):
    # The approximate path (Annoy's forest, or the inverted file) with a small training set
    env = {"LABELSTREAM_KNN_EXACT_THRESHOLD": "40", "LABELSTREAM_KNN_INDEX": kind}
    w = stack.worker("w1", **env)
    training = samples.training_records(per_label=30)
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))

    centre = samples.centres()[2]
    v1 = await _wait_version(stack, centre, at_least=1)
    rng = np.random.default_rng(3)
    more = [(f"ex-more-{i}", samples.example(f"ex-more-{i}", centre + 0.3 * rng.normal(size=samples.DIM), "science"))
            for i in range(20)]
    await stack.produce("training", more)
    v2 = await _wait_version(stack, centre, at_least=v1 + 1)
    assert v2 > v1
    assert _snapshot_kinds(stack.root / "w1" / "indexes" / "cosine") == {kind}  # built of the kind asked

    # kill -9 and restart on the same data dir: training set and index come back.
    w.kill()
    w2 = stack.worker("w1", **env)
    await stack.wait_ready(w2, min_training=len(training) + len(more))
    r = await classify(stack, "after-restart", centre, timeout=60)
    assert r["labels"]["topic"] == "science"
    assert r["index_version"]["topic"] >= v2
    assert r["detail"]["knn"]["topic"]["meta"]["overallCount"] == 5


def _snapshot_kinds(directory) -> set[str]:
    kinds = set()
    for sidecar in directory.glob("*.npz"):
        try:
            kinds.add(files.read_sidecar(sidecar)[2]["kind"])
        except FileNotFoundError:  # an older version removed after the newer one was swapped in
            pass
    return kinds


async def _wait_version(stack, vector, at_least: int, tries: int = 40) -> int:
    for i in range(tries):
        r = await classify(stack, f"v-{at_least}-{i}", vector)
        if r["index_version"]["topic"] >= at_least:
            return r["index_version"]["topic"]
        import asyncio

        await asyncio.sleep(0.5)
    raise AssertionError(f"index version never reached {at_least}")
