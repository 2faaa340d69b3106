"""What the console sees, read from Kafka by every worker that serves it.

Group-less consumers (like the training replica): ``feedback``, ``training`` and ``workers``
from the beginning, always (accuracy is computed over all verdicts and exported as metrics;
taxonomy versions that compaction has not removed yet can be diffed; every worker's latest
counters, ``app/service/worker_report.py``); the output topics ``results``, ``moderation`` and
``deadletter`` from a recent window (``console_window`` results), only while the console is in
use (``console_idle_seconds``: reading every worker's output is a real cost to a worker that
nobody is watching). Every record goes into a pure :class:`~app.console.window.Window` and the accuracy
fold; new results are pushed to the live page's subscribers (SSE).

Once a second a sampler reads the end offsets of the input and output topics and the consumer
group's committed offsets: events/s in and out of the whole deployment, and lag per partition.

The console writes verdicts and re-published dead letters through the sink (``Sink.publish``:
one record, awaited until the broker acknowledged it), the worker's one producer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
from pydantic import ValidationError

from app.classify.accuracy import Accuracy
from app.console.window import Window
from app.schemas.feedback import Feedback
from app.schemas.workers import WorkerReport
from app.service.admin import bootstrap
from app.service.replica import IDLE_FETCH_WAIT_MS
from app.settings import Settings

log = logging.getLogger(__name__)
INPUTS = ("objects", "media", "training", "feedback", "jobs")
OUTPUTS = ("results", "moderation", "deadletter")
ALWAYS = ("feedback", "training", "workers")
TAILED = (*OUTPUTS, *ALWAYS)
Publish = Callable[[str, bytes, bytes], Awaitable[None]]


class ConsoleFeed:
    def __init__(self, settings: Settings, publish: Publish, local_report: Callable[[], WorkerReport] | None = None):
        self.settings, self._publish, self._local_report = settings, publish, local_report
        self._window = Window(max_results=settings.console_window)
        self.accuracy = Accuracy()
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=300)  # (time, in total, out total)
        self.lag: dict[str, dict[int, int]] = {}
        self.taxonomies: dict[str, dict[int, dict[str, Any]]] = {}  # name -> version -> document
        self.classifiers: dict[str, dict[str, Any]] = {}
        self.workers: dict[str, WorkerReport] = {}  # worker id -> its latest report (the workers topic)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.caught_up = _Both()  # feedback + training read, and the output window (when watched)
        self._inputs_caught_up = self.caught_up.a
        self._outputs_caught_up = self.caught_up.b
        self._watched = asyncio.Event()  # the console was used lately: tail the outputs
        self._last_use = -1e18
        self.names = {settings.topic(t): t for t in (*TAILED, *INPUTS)}
        _COLLECTOR.feed = self

    # -- reading -----------------------------------------------------------------------
    @property
    def window(self) -> Window:
        """The recent outputs. Reading it (every console page and API call does) marks the console
        as watched, which starts the output tail if it was idle."""
        self.touch()
        return self._window

    def touch(self) -> None:
        self._last_use = time.monotonic()
        self._watched.set()

    def watched(self) -> bool:
        idle = self.settings.console_idle_seconds
        return not idle or bool(self.subscribers) or time.monotonic() - self._last_use < idle

    async def run(self) -> None:
        """Feedback and training from the beginning, always (accuracy metrics, taxonomy versions);
        the output topics only while the console is watched (:meth:`_tail_outputs`)."""
        boot = bootstrap(self.settings.broker)
        consumer = self._consumer(boot)
        await consumer.start()
        sampler = asyncio.create_task(self._sample(consumer, boot))
        outputs = asyncio.create_task(self._tail_outputs(boot))
        try:
            tps = await self._partitions(consumer, ALWAYS)
            consumer.assign(tps)
            await self._read(consumer, tps, recent=False, done=self._inputs_caught_up, until=None)
        finally:
            sampler.cancel()
            outputs.cancel()
            await consumer.stop()

    def _consumer(self, boot: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=boot, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=IDLE_FETCH_WAIT_MS,
                                max_partition_fetch_bytes=16 * 1024 * 1024)

    async def _tail_outputs(self, boot: str) -> None:
        """Results, moderation hits and dead letters, from the recent window, while watched.

        Tailing every worker's output costs each worker that serves the console about as much as
        its own serialization (a fifth of its CPU in the benchmark), so it stops after
        ``console_idle_seconds`` without a page or API call or an open live stream. When the
        console is opened again the window is read afresh from the last ``console_window`` results."""
        while True:
            await self._watched.wait()
            consumer = self._consumer(boot)
            await consumer.start()
            try:
                tps = await self._partitions(consumer, OUTPUTS)
                consumer.assign(tps)
                self._window.restart_outputs()
                self._outputs_caught_up.clear()
                await self._read(consumer, tps, recent=True, done=self._outputs_caught_up, until=self.watched)
            finally:
                await consumer.stop()
            self._watched.clear()
            if self.watched():  # touched while stopping
                self._watched.set()

    async def _read(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], recent: bool,
                    done: asyncio.Event, until: Callable[[], bool] | None) -> None:
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        n_results = sum(1 for tp in tps if self.names[tp.topic] == "results")
        per = max(1, self.settings.console_window // max(1, n_results))
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - per) if recent else begin[tp])
        pending = {tp for tp in tps if end[tp] > 0}
        if not pending:
            done.set()
        while until is None or until():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                for rec in records:
                    self._take(self.names[tp.topic], rec.key, rec.value)
            if pending:
                pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
                if not pending:
                    done.set()

    async def _partitions(self, consumer: AIOKafkaConsumer, names: tuple[str, ...]) -> list[TopicPartition]:
        while True:
            out = []
            for n in names:
                parts = consumer.partitions_for_topic(self.settings.topic(n))
                if not parts:
                    break
                out += [TopicPartition(self.settings.topic(n), p) for p in sorted(parts)]
            else:
                return out
            await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            await asyncio.sleep(0.2)

    def _take(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if topic == "training":
            self._training(key, value)
            return
        if topic == "workers":
            self._worker(key, value)
            return
        if value is None:
            return
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return  # not ours to judge: the console shows what parses
        if not isinstance(doc, dict):
            return
        if topic == "results":
            row = self._window.add_result(doc, value)
            for q in list(self.subscribers):
                if q.qsize() < 1000:  # a slow page misses rows rather than growing memory
                    q.put_nowait(row)
        elif topic == "moderation":
            self._window.add_hit(doc)
        elif topic == "deadletter":
            self._window.add_dead(doc)
        elif topic == "feedback":
            try:
                self.accuracy.add(Feedback.model_validate(doc))
            except ValidationError:
                return  # the feedback agent dead-letters it
            self._window.add_feedback(doc)

    def _training(self, key: bytes | None, value: bytes | None) -> None:
        k = (key or b"").decode(errors="replace")
        if not k.startswith(("taxonomy:", "classifier:")) or value is None:
            return
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(doc, dict) or doc.get("op") == "delete":
            return
        if k.startswith("taxonomy:") and isinstance(doc.get("version"), int):
            self.taxonomies.setdefault(k[len("taxonomy:"):], {})[doc["version"]] = doc
        elif k.startswith("classifier:"):
            self.classifiers[k[len("classifier:"):]] = doc

    def _worker(self, key: bytes | None, value: bytes | None) -> None:
        wid = (key or b"").decode(errors="replace")
        if value is None:  # the worker stopped normally
            self.workers.pop(wid, None)
            return
        try:
            self.workers[wid] = WorkerReport.model_validate_json(value)
        except ValidationError:
            return  # not a report: nothing to count

    def worker_reports(self) -> dict[str, WorkerReport]:
        """Every worker's latest report; this worker's own counters as they are now (its report on the
        topic is up to one interval old)."""
        reports = dict(self.workers)
        if self._local_report is not None:
            mine = self._local_report()
            reports[mine.worker] = mine
        return reports

    # -- sampling: rates and lag ------------------------------------------------------------
    async def _sample(self, consumer: AIOKafkaConsumer, boot: str) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=boot)
        await admin.start()
        try:
            ins = await self._partitions(consumer, INPUTS)
            outs = await self._partitions(consumer, OUTPUTS)
            while True:
                try:
                    end = await consumer.end_offsets(ins + outs)
                    committed = await admin.list_consumer_group_offsets(self.settings.app_id)
                    lag: dict[str, dict[int, int]] = {}
                    for tp in ins:
                        c = committed.get(tp)
                        lag.setdefault(self.names[tp.topic], {})[tp.partition] = end[tp] - (c.offset if c and c.offset >= 0 else 0)
                    self.lag = lag
                    self.samples.append((time.time(), sum(end[tp] for tp in ins), sum(end[tp] for tp in outs)))
                except Exception as e:  # noqa: BLE001 - a broker hiccup: the next sample tries again
                    log.debug("console sample failed: %r", e)
                await asyncio.sleep(1.0)
        finally:
            await admin.close()

    def rates(self) -> list[tuple[float, float, float]]:
        """(time, events/s in, events/s out) between consecutive samples."""
        s = list(self.samples)
        return [(b[0], (b[1] - a[1]) / ((b[0] - a[0]) or 1), (b[2] - a[2]) / ((b[0] - a[0]) or 1))
                for a, b in zip(s, s[1:])]

    # -- writing -------------------------------------------------------------------------
    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record to a catalog topic through the sink and wait for the broker's ack."""
        await self._publish(self.settings.topic(topic), key, value)


class _Both:
    """``is_set``/``wait`` of two events together: the feed is caught up when both of its reads are."""

    def __init__(self) -> None:
        self.a, self.b = asyncio.Event(), asyncio.Event()

    def is_set(self) -> bool:
        return self.a.is_set() and self.b.is_set()

    async def wait(self) -> bool:
        await self.a.wait()
        await self.b.wait()
        return True


class _AccuracyCollector:
    """Online accuracy as Prometheus metrics, from the feed's fold (registered once per process)."""

    feed: ConsoleFeed | None = None

    def collect(self) -> Iterator[Any]:
        if self.feed is None:
            return
        acc = self.feed.accuracy
        prec = GaugeMetricFamily("labelstream_feedback_precision", "share of judged block/review decisions that "
                                 "reviewers confirmed", labels=["classifier", "version", "action"])
        judged = CounterMetricFamily("labelstream_feedback_judged", "decisions with a verdict (each reviewer's latest)",
                                     labels=["classifier", "version", "action"])
        conf = GaugeMetricFamily("labelstream_feedback_confusion", "verdicts per decided and right label",
                                 labels=["classifier", "version", "decided", "actual"])
        cls = GaugeMetricFamily("labelstream_feedback_class_precision", "share of a decided class's judged "
                                "decisions that were right", labels=["classifier", "version", "class"])
        for (c, v), actions in acc.precision().items():
            for a, m in actions.items():
                prec.add_metric([c, v, a], m["precision"])
                judged.add_metric([c, v, a], m["judged"])
        for (c, v), rows in acc.confusion().items():
            for decided, row in rows.items():
                for actual, n in row.items():
                    conf.add_metric([c, v, decided, actual], n)
        for (c, v), classes in acc.class_precision().items():
            for name, p in classes.items():
                cls.add_metric([c, v, name], p)
        yield from (prec, judged, conf, cls)


_COLLECTOR = _AccuracyCollector()
REGISTRY.register(_COLLECTOR)
