"""Classification jobs, the pure part: start records, one chunk of a partition, the job's status.

A job runs per partition of the stored-objects table: the worker that owns partition ``p``
walks its keys in sorted order, a chunk at a time (``chunk_step``), and after each chunk
writes the partition's progress (``cursor`` = last key done, running counts) to the
``job-progress`` table under a key that lands in partition ``p`` (``progress_key``). A
restarted worker resumes after the cursor. A chunk redone after a crash (its progress write
lost) reproduces the same results (same ``result_id``, same bytes) and the same counts: an
object this job already labelled stays in scope (``in_scope``).

The status a client sees is derived from the job record and every partition's progress
(``job_body``), Weaviate's shape:

    >>> job = {"id": "j1", "class": "Article", "type": "knn", "classifyProperties": ["topic"],
    ...        "basedOnProperties": ["summary"], "settings": {"k": 3}, "filters": {}, "scope": "unlabeled",
    ...        "started": 0}
    >>> b = job_body(job, {0: {"count": 2, "countSucceeded": 2, "countFailed": 0, "done": True,
    ...                        "completed": 1000}}, partitions=2)
    >>> b["status"], b["meta"]
    ('running', {'started': '1970-01-01T00:00:00.000Z', 'completed': '0001-01-01T00:00:00.000Z', 'countSucceeded': 2})
    >>> b = job_body(job, {0: {"count": 2, "countSucceeded": 2, "countFailed": 0, "done": True, "completed": 1000},
    ...                    1: {"count": 1, "countSucceeded": 1, "countFailed": 0, "done": True, "completed": 2000}}, 2)
    >>> b["status"], b["meta"]
    ('completed', {'started': '1970-01-01T00:00:00.000Z', 'completed': '1970-01-01T00:00:02.000Z', 'count': 3, 'countSucceeded': 3})
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from app.classify.assembly import colocated
from app.classify.codec import Rejected, load_json
from app.classify.expiry import stamped
from app.classify.jobrules import JobError, check, parse
from app.classify.objects import Item, classify_objects
from app.classify.outcome import Outcome, Record, TableWrite
from app.classify.state import Classifier, ModelState, Snapshot, filter_limits
from app.schemas.deadletter import Source
from app.schemas.jobs import JobRequest
from app.schemas.objects import ObjectEvent
from app.schemas.training import ClassifierDef, Filters, KnnSettings

JOBS = "jobs"
JOB_PROGRESS = "job-progress"
STORED_OBJECTS = "stored-objects"
ZERO_TIME = "0001-01-01T00:00:00.000Z"  # Weaviate's "not completed yet"
NOTHING_TO_DO = "classification failed: no classes to be classified - did you run a previous classification already?"
Reader = Callable[[bytes], bytes | None]


def iso(ms: int | None) -> str:
    """Weaviate's timestamp format (strfmt.DateTime, milliseconds, UTC).

    >>> iso(1599663428468), iso(None)
    ('2020-09-09T14:57:08.468Z', '0001-01-01T00:00:00.000Z')
    """
    if ms is None:
        return ZERO_TIME
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def is_uuid(s: str) -> bool:
    """A UUID in its canonical text form (the Weaviate clients send and check these).

    >>> is_uuid("ee722219-b8ec-4db1-8f8d-5150bb1a9e0c"), is_uuid("x")
    (True, False)
    """
    try:
        return str(uuid.UUID(s)) == s.lower()
    except ValueError:
        return False


def job_doc(req: JobRequest, job_id: str, started: int) -> dict[str, Any]:
    """The job record the jobs table keeps (``req`` already checked, settings defaulted)."""
    doc = req.model_dump(mode="json", by_alias=True, exclude={"id", "started"})
    return {**doc, "id": job_id, "started": started}


def job_value(doc: dict[str, Any]) -> bytes:
    """Stamped with its start, so the sweeper removes it ``jobs_retention`` after (app/classify/expiry.py)."""
    return stamped(doc["started"], doc)


# -- the jobs topic: start records ------------------------------------------------------------------

def start_step(state: ModelState, records: Sequence[Record], now: int) -> list[Outcome]:
    """One outcome per start record: the jobs-table write, or a dead letter (``schema_violation``,
    ``invalid_job`` with Weaviate's message). The id is the body's, else the key (a UUID), else
    derived from the record's position, so a redelivered record starts the same job, not a second."""
    out = []
    snap = state.snapshot()
    for rec in records:
        try:
            data = load_json(rec.value, state.settings.max_payload_bytes)
            try:
                req = check(parse(data), snap, filter_limits(state.settings))
            except JobError as e:
                raise Rejected("schema_violation" if e.status == 422 else "invalid_job", e.message, e.path) from None
            key = rec.key.decode(errors="replace") if rec.key else ""
            job_id = req.id or (key if is_uuid(key) else str(uuid.uuid5(
                uuid.NAMESPACE_URL, f"{rec.source.topic}/{rec.source.partition}/{rec.source.offset}")))
            if not is_uuid(job_id):
                raise Rejected("schema_violation", f"id: must be a UUID, got {job_id!r}", "id")
            started = req.started if req.started is not None else (rec.source.timestamp or now)
            out.append(Outcome(writes=[TableWrite(JOBS, job_id.encode(), job_value(job_doc(req, job_id, started)))]))
        except Rejected as r:
            out.append(Outcome.reject(r))
    return out


# -- one chunk of one partition ---------------------------------------------------------------------

def classifier_of(job: Mapping[str, Any], state: ModelState) -> Classifier:
    """The job as a classifier named ``job:<id>`` (its results' ``classifier``; ``result_id`` ``<item>/job:<id>``)."""
    settings = job.get("settings") or {}
    spec = ClassifierDef(name=f"job:{job['id']}", type=job["type"], class_=job["class"],
                         classifyProperties=job["classifyProperties"], basedOnProperties=job["basedOnProperties"],
                         settings=KnnSettings(**{k: v for k, v in settings.items() if k in ("k", "distance")}),
                         filters=Filters(**(job.get("filters") or {})), taxonomies=settings.get("taxonomies", []))
    return Classifier.compile(spec, filter_limits(state.settings))


def progress_key(job_id: str, partition: int, partitions: int) -> bytes:
    """The job-progress key of (job, partition), placed in that partition (its owner writes it).

    >>> from app.classify.assembly import partition_of
    >>> partition_of(progress_key("j1", 5, 8), 8)
    5
    """
    return colocated([job_id, partition], partition, partitions)


def labeled(doc: Mapping[str, Any], prop: str) -> bool:
    """Has the stored object a value for ``prop``: sent with it, set by a job, or by a classifier."""
    if (doc.get("object") or {}).get("properties", {}).get(prop) is not None or prop in (doc.get("labels") or {}):
        return True
    return any((r.get("labels") or {}).get(prop) is not None for r in (doc.get("results") or {}).values())


def in_scope(job: Mapping[str, Any], clf: Classifier, doc: Mapping[str, Any]) -> bool:
    """Weaviate's semantics for ``unlabeled`` (an object without a value for a classify property),
    everything for ``all``; ``sourceWhere`` applies either way. An object labelled by this very job
    stays in scope, so a chunk redone after a crash counts it again, the same way."""
    obj = doc.get("object") or {}
    if obj.get("class") != job["class"] or not clf.applies_to(obj.get("properties") or {}):
        return False
    if job.get("scope") == "all" or (doc.get("classification") or {}).get("id") == job["id"]:
        return True
    return not all(labeled(doc, p) for p in job["classifyProperties"])


@dataclass
class Progress:
    """One (job, partition): the last key done and running counts, written after every chunk."""

    cursor: str | None = None
    count: int = 0
    countSucceeded: int = 0
    countFailed: int = 0
    done: bool = False
    completed: int | None = None
    error: str | None = None

    @classmethod
    def load(cls, value: bytes | None) -> "Progress":
        if value is None:
            return cls()
        d = orjson.loads(value)
        return cls(d.get("cursor"), d.get("count", 0), d.get("countSucceeded", 0), d.get("countFailed", 0),
                   d.get("done", False), d.get("completed"), d.get("error"))

    def value(self, job_id: str, partition: int, at: int) -> bytes:
        return stamped(at, {"job": job_id, "partition": partition, "cursor": self.cursor, "count": self.count,
                            "countSucceeded": self.countSucceeded, "countFailed": self.countFailed,
                            "done": self.done, "completed": self.completed, "error": self.error})


def chunk_step(state: ModelState, job: Mapping[str, Any], keys: Sequence[bytes], read: Reader, source: Source,
               progress: Progress, now: int, last: bool,
               snap: Snapshot | None = None) -> tuple[list[tuple[Record, Outcome]], Progress]:
    """Classify the in-scope objects among ``keys`` (the next keys of one partition, sorted):
    their outcomes (a result and the updated stored object, or a dead letter) and the new progress
    (``last``: these are the partition's last keys, so it is done). Runs in the classify pool
    (it reads the table through ``read``)."""
    snap = snap or state.snapshot()
    clf = classifier_of(job, state)
    records: list[Record] = []
    items: list[Item] = []
    docs: list[dict[str, Any]] = []
    failed: list[tuple[Record, Outcome]] = []
    for key in keys:
        value = read(key)
        if value is None:
            continue
        rec = Record(key, value, source)
        try:
            doc = orjson.loads(value)
            if not in_scope(job, clf, doc):
                continue
            items.append(Item(ObjectEvent.model_validate(doc["object"]), source))
        except Exception as e:  # noqa: BLE001 - a stored value that cannot be read fails this item, not the job
            failed.append((rec, Outcome.reject(Rejected("internal_error", f"stored object: {type(e).__name__}: {e}"))))
            continue
        records.append(rec)
        docs.append(doc)
    outcomes = classify_objects(state, items, snap, pick=lambda _s, _i: [clf]) if items else []
    pairs = list(failed)
    ok = 0
    for rec, doc, out in zip(records, docs, outcomes, strict=True):
        if out.rejected is None:
            try:
                _finish(job, rec.key or b"", doc, out, now)
                ok += 1
            except Exception as e:  # noqa: BLE001
                out.fail(Rejected("internal_error", f"{type(e).__name__}: {e}"))
        pairs.append((rec, out.encode()))
    new = Progress(keys[-1].decode(errors="surrogateescape") if keys else progress.cursor,
                   progress.count + len(pairs), progress.countSucceeded + ok,
                   progress.countFailed + len(pairs) - ok, done=last, completed=now if last else None)
    return pairs, new


def _meta(result: Any, prop: str) -> dict[str, Any]:
    """Weaviate's per-reference classification meta: kNN's as computed; zero-shot: the one winner."""
    knn = result.detail.get("knn")
    if knn is not None:
        return dict(knn[prop]["meta"])
    m = (result.detail.get("zeroshot") or {}).get(prop) or {}
    d = m.get("distance")
    return {"overallCount": 1 if m else 0, "winningCount": 1 if m else 0, "losingCount": 0,
            "closestOverallDistance": d, "meanWinningDistance": d, "closestWinningDistance": d,
            "meanLosingDistance": None, "closestLosingDistance": None}


def _finish(job: Mapping[str, Any], key: bytes, doc: dict[str, Any], out: Outcome, now: int) -> None:
    """Name the job on the result and write its labels into the stored object."""
    result = out.results[0]
    result.detail["job"] = {"id": job["id"], "scope": job.get("scope", "unlabeled")}
    labels = dict(doc.get("labels") or {})
    for p in job["classifyProperties"]:
        if result.labels.get(p) is not None:
            labels[p] = {"label": result.labels[p], "meta": _meta(result, p), "job": job["id"]}
    doc["labels"] = labels
    doc["classification"] = {"id": job["id"], "scope": list(job["classifyProperties"]),
                             "classifiedFields": [p for p in job["classifyProperties"] if result.labels.get(p)],
                             "basedOn": list(job["basedOnProperties"]), "completed": now}
    out.writes.append(TableWrite(STORED_OBJECTS, key, stamped(now, doc)))


# -- what a client sees -----------------------------------------------------------------------------

def job_body(job: Mapping[str, Any], parts: Mapping[int, Mapping[str, Any]], partitions: int) -> dict[str, Any]:
    """Weaviate's classification body: status running -> completed | failed; meta ``countSucceeded`` and
    ``countFailed`` (when > 0) as running totals, ``count`` once it ended; ``error`` when failed; plus
    ``scope`` and ``progress`` (ours: partitions done of all)."""
    count = sum(p.get("count", 0) for p in parts.values())
    ok = sum(p.get("countSucceeded", 0) for p in parts.values())
    bad = sum(p.get("countFailed", 0) for p in parts.values())
    done = sum(1 for n in range(partitions) if (parts.get(n) or {}).get("done"))
    error = next((p["error"] for p in parts.values() if p.get("error")), None)
    status, completed = "running", None
    if error is not None or done == partitions:
        completed = max((p.get("completed") or 0 for p in parts.values()), default=None) or job["started"]
        status = "failed" if error is not None else "completed"
        if status == "completed" and count == 0:
            status, error = "failed", NOTHING_TO_DO
    meta: dict[str, Any] = {"started": iso(job["started"]), "completed": iso(completed)}
    if status != "running":  # Weaviate: the total only at the end (the matching objects are counted as they are met)
        meta["count"] = count
    meta["countSucceeded"] = ok
    if bad:
        meta["countFailed"] = bad
    body: dict[str, Any] = {
        "id": job["id"], "class": job["class"], "classifyProperties": job["classifyProperties"],
        "basedOnProperties": job["basedOnProperties"], "type": job["type"], "settings": job.get("settings") or {},
        "status": status, "meta": meta, "scope": job.get("scope", "unlabeled"),
        "progress": {"partitions": partitions, "partitionsDone": done},
    }
    filters = {k: v for k, v in (job.get("filters") or {}).items() if v is not None}
    if filters:
        body["filters"] = filters
    if error is not None:
        body["error"] = error
    return body
