"""Objects published to Kafka come back as one classified result each, through a real worker."""

import asyncio
import time
import urllib.request

from app.devtools import samples


async def test_objects_in_results_out(stack):
    w = stack.worker()
    await stack.wait_ready(w)
    training = samples.training_records()
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))

    objs = samples.objects(30, run="e2e")
    await stack.produce("objects", [(k, v) for k, v, _ in objs])
    got = await stack.collect("results", 30, timeout=60)

    assert len(got) == 30
    expected = {k: label for k, _, label in objs}
    by_id = {v["item_id"]: (k, v) for k, v in got}
    assert set(by_id) == set(expected), "exactly one result per object"
    for oid, (key, r) in by_id.items():
        assert key == oid.encode(), "results are keyed by object id"
        assert r["classifier"] == samples.CLASSIFIER and r["method"] == "knn"
        assert r["labels"]["topic"] == expected[oid]
        assert r["detail"]["knn"]["topic"]["meta"]["overallCount"] == 5
        assert r["source"]["topic"].endswith("objects")
    assert not await stack.collect("deadletter", 1, timeout=1)

    # The worker's Prometheus metrics count what the inputs became.
    text = scrape(w.web_port)
    assert 'labelstream_results_total{method="knn"} 30.0' in text
    assert 'labelstream_inputs_total{topic="objects"} 30.0' in text
    # What was alive at catch-up is out of the cyclic GC's full collections (they took ~75 ms each).
    assert metric(text, "labelstream_gc_frozen_objects") > 10_000

    # The consumer batched its fetches while records flowed (app/service/fetchpace.py) and went back
    # to Faust's long poll once they stopped: an idle worker does not poll the broker every 10 ms.
    assert metric(text, 'labelstream_fetch_pace_switches_total{to="flowing"}') >= 1
    deadline = time.monotonic() + 30
    while metric(text, "labelstream_fetch_flowing") != 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        text = scrape(w.web_port)
    assert metric(text, "labelstream_fetch_flowing") == 0
    assert metric(text, 'labelstream_fetch_pace_switches_total{to="idle"}') >= 1

    # Its fetches ran in a fetch session (app/service/fetchsession.py): after the first full fetch,
    # requests named only the partitions whose position moved, not all 40 of the worker's.
    assert metric(text, 'labelstream_fetches_total{kind="incremental"}') > metric(text, 'labelstream_fetches_total{kind="full"}')
    sent = metric(text, 'labelstream_fetch_partitions_total{kind="sent"}')
    assert 0 < sent < metric(text, 'labelstream_fetch_partitions_total{kind="wanted"}') / 4


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric(text: str, name: str) -> float:
    return next(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " "))
