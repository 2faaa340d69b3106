"""Shared pieces of the jobs tests: a declared class, UUID objects, plain HTTP calls."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer

from app.devtools import samples
from app.schemas.vectors import encode_vector
from app.service.admin import bootstrap

ARTICLE = {"record": "class", "class": samples.CLASS, "properties": [
    {"name": "body", "dataType": ["text"]}, {"name": "topic", "dataType": ["Topic"]},
    {"name": "wordCount", "dataType": ["int"]}]}


def oid(i: int, run: str = "") -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"jobs-test/{run}/{i}"))


def articles(n: int, run: str = "", seed: int = 5) -> tuple[list[tuple[str, dict]], dict[str, str]]:
    """``n`` unlabelled articles around the sample centres, and each one's true topic."""
    rng = np.random.default_rng(seed)
    centres = samples.centres()
    recs, truth = [], {}
    for i in range(n):
        c = i % len(samples.LABELS)
        ident = oid(i, run)
        vec = centres[c] + 0.3 * rng.normal(size=samples.DIM)
        recs.append((ident, {"id": ident, "class": samples.CLASS, "properties": {"body": f"article {i}", "wordCount": i},
                             "vector": encode_vector(vec)}))
        truth[ident] = samples.LABELS[c]
    return recs, truth


def http(port: int, method: str, path: str, body: bytes | dict | None = None, key: str | None = None,
         headers: dict | None = None, timeout: float = 30.0) -> tuple[int, Any]:
    """One JSON request to a worker's web server (the key as ``x-api-key``); ``(status, parsed body)``."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json", **({"x-api-key": key} if key else {}), **(headers or {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, raw.decode(errors="replace")




async def raw_results(settings, classifier: str, n: int, timeout: float = 60.0, quiet: float = 3.0) -> list[tuple[str, bytes]]:
    """``(result_id, value bytes)`` of one classifier on the results topic: at least ``n``, then
    until the topic is quiet for ``quiet`` s (redelivered duplicates come in too)."""
    consumer = AIOKafkaConsumer(settings.topic("results"), bootstrap_servers=bootstrap(settings.broker),
                                group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=16 * 1024 * 1024)
    await consumer.start()
    out: list[tuple[str, bytes]] = []
    try:
        deadline, last = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                for r in recs:
                    last = time.monotonic()
                    v = orjson.loads(r.value)
                    if v["classifier"] == classifier:
                        out.append((v["result_id"], r.value))
            if len(out) >= n and time.monotonic() - last > quiet:
                break
    finally:
        await consumer.stop()
    return out
