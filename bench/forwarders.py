"""The two ceilings Labelstream is measured against: services that only decode and forward.

Each runs as its own process (like the real worker), reads ``BENCH_IN``, decodes every value
with orjson and produces one small record per input, keyed as the input, to ``BENCH_OUT``:

- ``raw``: one plain aiokafka consumer (group, manual commit per batch) and producer — the most
  any consume → decode → produce service with this client can do here;
- ``faust``: a Faust agent with Labelstream's own consumption (``take_events`` batches of
  ``LABELSTREAM_BATCH_SIZE`` within ``LABELSTREAM_BATCH_WITHIN``) and producer settings that
  sends each output with ``Topic.send`` — the framework's own ceiling, so the framework's
  overhead and ours are told apart (``LABELSTREAM_BATCH_SIZE=1``: plain ``stream.events()``, one at a time);
- ``lean``: the same Faust app, but its topic consumed the way Labelstream's hot topics are
  (``app/service/lean.py``: fetched batches handed to one handler, acked in bulk, outputs
  straight into the producer's buffer): the ceiling of that delivery, without our step.

    BENCH_BROKER=kafka://127.0.0.1:9092 BENCH_IN=x.objects BENCH_OUT=x.results BENCH_GROUP=g \\
        .venv/bin/python bench/forwarders.py raw|faust|lean

Runs until SIGTERM. ``raw`` and ``faust``: stdlib, orjson, aiokafka and faust only, nothing from
app/ (the ceilings must not share any of the code they are a baseline for); ``lean`` uses
app/service/faustfix.py and lean.py on purpose: it measures that delivery path alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import orjson

BROKER = os.environ.get("BENCH_BROKER", "kafka://127.0.0.1:9092")
SOURCE, SINK, GROUP = os.environ.get("BENCH_IN", ""), os.environ.get("BENCH_OUT", ""), os.environ.get("BENCH_GROUP", "")
BATCH = int(os.environ.get("LABELSTREAM_BATCH_SIZE", "256"))
WITHIN = float(os.environ.get("LABELSTREAM_BATCH_WITHIN", "0.05"))
MAX_BYTES = 16 * 1024 * 1024


def output(key: bytes | None, value: bytes) -> bytes:
    """Decode the event (the work every service does) and build the small forwarded record."""
    ev = orjson.loads(value)
    return orjson.dumps({"item_id": ev.get("id") or ev.get("media_id"), "labels": {}})


async def raw() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    servers = BROKER.removeprefix("kafka://")
    consumer = AIOKafkaConsumer(SOURCE, bootstrap_servers=servers, group_id=GROUP, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=2000, fetch_max_wait_ms=500,  # e2e.READ_WAIT_MS
                                max_partition_fetch_bytes=MAX_BYTES)
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, acks="all", max_request_size=MAX_BYTES)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=2000)
            for recs in batch.values():
                for r in recs:
                    await producer.send(SINK, key=r.key, value=output(r.key, r.value))
            if batch:
                await producer.flush()
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def faust_app(lean: bool = False):
    import faust

    if lean:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from app.service import faustfix

        faustfix.apply()
    app = faust.App(GROUP, broker=BROKER, store="memory://", web_enabled=False,
                    datadir=os.environ.get("BENCH_DATADIR", "var/bench-faust"),
                    producer_max_request_size=MAX_BYTES, consumer_max_fetch_size=MAX_BYTES, producer_acks=-1,
                    broker_commit_interval=1.0, key_serializer="raw", value_serializer="raw")
    src = app.topic(SOURCE, key_serializer="raw", value_serializer="raw")
    dst = app.topic(SINK, key_serializer="raw", value_serializer="raw")
    if lean:
        from app.service.lean import Lanes

        async def handler(records) -> None:
            producer = await app.maybe_start_producer()
            for r in records:
                await producer.send(SINK, r.key, output(r.key, r.value), partition=None, timestamp=None,
                                    headers=None)

        Lanes(app).register(src, "forward", handler, BATCH)
        return app

    @app.agent(src)
    async def forward(stream):
        if BATCH <= 1:  # Faust's plainest form, one event at a time
            async for e in stream.events():
                await dst.send(key=e.key, value=output(e.key, e.value))
            return
        async for batch in stream.take_events(BATCH, WITHIN):
            for e in batch:
                await dst.send(key=e.key, value=output(e.key, e.value))

    return app


def main(argv: list[str]) -> None:
    if not (SOURCE and SINK and GROUP) or argv[:1] not in (["raw"], ["faust"], ["lean"]):
        sys.exit("usage: BENCH_BROKER=... BENCH_IN=... BENCH_OUT=... BENCH_GROUP=... forwarders.py raw|faust|lean")
    if argv[0] == "raw":
        asyncio.run(raw())
    else:
        sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
        faust_app(lean=argv[0] == "lean").main()


if __name__ == "__main__":
    main(sys.argv[1:])
