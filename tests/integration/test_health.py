"""Health endpoints of a real worker: live while the process answers, ready only when it can classify.

``/health/ready`` must not lie in either direction: 503 while the consumer has no
partitions, tables are recovering or the training replica is behind; 200 once all hold, and
then the worker really classifies with the full training state.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from app.devtools import samples

pytestmark = pytest.mark.kafka


def get(port: int, path: str) -> tuple[int | None, dict | None]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError:
        return None, None  # web server not listening yet


async def watch_until_ready(port: int, timeout: float = 90.0) -> list[tuple[int, dict, int | None]]:
    """Every distinct (ready status, body, live status) seen from process start until ready is 200."""
    seen: list[tuple[int, dict, int | None]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await asyncio.to_thread(get, port, "/health/ready")
        if status is not None:
            live, _ = await asyncio.to_thread(get, port, "/health/live")
            if not seen or (seen[-1][0], seen[-1][1].get("checks")) != (status, body.get("checks")):
                seen.append((status, body, live))
            if status == 200:
                return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"/health/ready never answered 200 within {timeout}s; seen: {seen}")


async def test_ready_is_503_until_the_worker_can_classify_then_200(stack):
    training = samples.training_records()
    await stack.produce("training", training)  # the worker must load all of it before it is ready

    w = stack.worker()
    seen = await watch_until_ready(w.web_port)

    first_status, first_body, first_live = seen[0]
    assert first_status == 503, f"the first answer must be 'not ready': {seen}"
    assert first_body["ready"] is False and not all(first_body["checks"].values())
    assert first_live == 200, "live answers as soon as the web server does, ready or not"
    for status, body, live in seen[:-1]:
        assert status == 503 and body["ready"] is False and live == 200

    status, body, live = seen[-1]
    assert status == 200 and live == 200 and body["ready"] is True and all(body["checks"].values())
    # ready means the whole training state is loaded, not part of it
    assert body["training_records_applied"] == len(training)
    assert body["classifiers"] == 1
    assert body["tables"]["training"] == len(training)

    # ... and that the worker classifies with it at once
    objs = samples.objects(9, run="ready")
    await stack.produce("objects", [(k, v) for k, v, _ in objs])
    got = await stack.collect("results", len(objs), timeout=60)
    assert {v["item_id"]: v["labels"]["topic"] for _, v in got} == {k: label for k, _, label in objs}
    assert not await stack.collect("deadletter", 1, timeout=1)


async def test_live_is_200_and_ready_stays_200_while_idle(stack):
    w = stack.worker()
    await stack.wait_ready(w)
    for _ in range(5):
        assert get(w.web_port, "/health/live") == (200, {"live": True})
        status, body = get(w.web_port, "/health/ready")
        assert status == 200 and body["ready"] is True, body
        await asyncio.sleep(0.2)

