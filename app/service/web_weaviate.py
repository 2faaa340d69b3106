"""Weaviate's REST API on the worker's web server, enough for the official clients' classification calls.

- ``GET /v1/.well-known/live`` / ``ready``, ``GET /v1/meta`` (a ``version``: the Weaviate API level we follow)
- ``POST /v1/classifications`` (201, the job body with a UUID ``id``), ``GET /v1/classifications/{id}``
  (404 when unknown), ``GET /v1/classifications`` (every job, ours: Weaviate has no list)
- ``GET /v1/objects/{class}/{id}`` and ``GET /v1/objects/{id}`` (``?include=classification``): the stored
  object, each job-labelled property as a Weaviate reference with its ``classification`` meta
- ``GET /v1/schema``, ``GET /v1/schema/{class}``: the declared classes

Errors are Weaviate's ``{"error": [{"message": ...}]}``: 400 for a broken rule or bad JSON, 422 for
a field of the wrong type, 404 (empty body, as Weaviate) for an unknown id. Jobs are answered
from every worker's view of all jobs; an object by the worker that owns its partition (another
worker forwards the request there, once).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from faust.web import Request, Response, View

from app.classify.expiry import now_ms, stamp
from app.classify.jobrules import JobError, check, parse
from app.classify.jobs import is_uuid, iso, job_body, job_doc
from app.classify.state import filter_limits
from app.service.jobs import JobsView
from app.service.peers import ROUTED
from app.service.runtime import Runtime
from app.service.tables import STORED_OBJECTS
from app.service.web import readiness
from app.schemas.vectors import parse_vector

WEAVIATE_VERSION = "1.25.0"  # the REST API level the shapes follow (the 3.x client wants >= 1.14)
CATCH_UP_WAIT = 10.0  # s an unknown job id waits for a starting worker's view of all jobs
PENDING_TTL_MS = 60_000  # a job started here but never recorded (dead-lettered) stops showing after this


def error(view: View, status: int, message: str) -> Response:
    return view.json({"error": [{"message": message}]}, status=status)


def not_found(view: View) -> Response:
    return view.bytes(b"", status=404)


def reference(target: str, label: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    """A label as Weaviate's cross-reference: labels that are UUIDs (Weaviate's own) are the beacon's id;
    other labels get a stable UUID of (target class, label) and ride along as ``label`` (ours).

    >>> reference("Topic", "sport", None)["beacon"]
    'weaviate://localhost/Topic/73be5c32-b033-54ce-a845-930a8d44789d'
    """
    ident = label if is_uuid(label) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{target}/{label}"))
    ref: dict[str, Any] = {"beacon": f"weaviate://localhost/{target}/{ident}", "href": f"/v1/objects/{target}/{ident}",
                           "label": label}
    if meta is not None:
        ref["classification"] = meta
    return ref


def object_body(doc: dict[str, Any], targets: dict[str, str], include: set[str]) -> dict[str, Any]:
    """Weaviate's object from a stored-objects value."""
    obj = doc.get("object") or {}
    props = dict(obj.get("properties") or {})
    with_meta = "classification" in include
    for prop, lab in (doc.get("labels") or {}).items():
        props[prop] = [reference(targets.get(prop, "Label"), lab["label"], lab.get("meta") if with_meta else None)]
    at = doc.get("at")
    body: dict[str, Any] = {"class": obj.get("class"), "id": obj.get("id"), "properties": props,
                            "creationTimeUnix": at, "lastUpdateTimeUnix": at}
    if "vector" in include and obj.get("vector") is not None:
        body["vector"] = parse_vector(obj["vector"]).tolist()
    c = doc.get("classification")
    if with_meta and c:
        body["additional"] = {"classification": {**{k: c[k] for k in ("id", "scope", "classifiedFields", "basedOn")},
                                                 "completed": iso(c.get("completed"))}}
    return body


def register(rt: Runtime, view: JobsView) -> None:
    app = rt.app
    partitions = view.partitions

    @app.page("/v1/.well-known/live")
    class Live(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(b"", status=200)

    @app.page("/v1/.well-known/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(b"", status=200 if readiness(rt)["ready"] and view.caught_up else 503)

    @app.page("/v1/meta")
    class Meta(View):
        async def get(self, request: Request) -> Response:
            return self.json({"hostname": str(app.conf.canonical_url), "modules": {}, "version": WEAVIATE_VERSION,
                              "labelstream": {"api": "weaviate-compatible"}})

    @app.page("/v1/schema")
    class Schema(View):
        async def get(self, request: Request) -> Response:
            classes = rt.state.snapshot().classes
            return self.json({"classes": [classes[n].weaviate() for n in sorted(classes)]})

    @app.page("/v1/schema/{name}")
    class SchemaClass(View):
        async def get(self, request: Request, name: str) -> Response:
            decl = rt.state.snapshot().classes.get(name)
            return not_found(self) if decl is None else self.json(decl.weaviate())

    @app.page("/v1/classifications")
    class Classifications(View):
        async def get(self, request: Request) -> Response:
            return self.json(view.bodies())

        async def post(self, request: Request) -> Response:
            try:
                data = orjson.loads(await request.read())
            except orjson.JSONDecodeError as e:
                return error(self, 400, f"request body is not valid JSON: {e}")  # the guard's words (httpguard.py)
            try:
                req = check(parse(data), rt.state.snapshot(), filter_limits(rt.settings))
            except JobError as e:
                return error(self, e.status, e.message)
            job_id, started = str(uuid.uuid4()), now_ms()
            record = {**req.model_dump(mode="json", by_alias=True), "id": job_id, "started": started}
            await rt.sink.publish(rt.topics["jobs"].get_topic_name(), job_id.encode(), orjson.dumps(record))
            doc = job_doc(req, job_id, started)
            view.add_pending(doc, PENDING_TTL_MS)
            return self.json(job_body(doc, {}, partitions), status=201)

    @app.page("/v1/classifications/{job_id}")
    class Classification(View):
        async def get(self, request: Request, job_id: str) -> Response:
            body = view.body(job_id)
            if body is None and not view.caught_up and await view.wait_caught_up(CATCH_UP_WAIT):
                body = view.body(job_id)  # a worker just started: its view of the jobs was still loading
            return not_found(self) if body is None else self.json(body)

    async def stored_object(v: View, request: Request, class_name: str | None, object_id: str) -> Response:
        key = object_id.encode()
        if ROUTED not in request.headers:
            try:
                dest = app.router.key_store(STORED_OBJECTS, key)
            except KeyError:  # no assignment yet
                return error(v, 503, "the service is not ready: partitions are being assigned")
            here = app.conf.canonical_url
            if (dest.host, dest.port) != (here.host, here.port):
                headers = {**request.headers, ROUTED: "1"}
                url = request.url.with_host(dest.host or "127.0.0.1").with_port(dest.port)
                async with app.http_client.get(url, headers=headers) as r:
                    return v.bytes(await r.read(), content_type=r.content_type, status=r.status)
        value = rt.tables.by_name[STORED_OBJECTS].data.get(key)
        if value is None:
            return not_found(v)
        doc = orjson.loads(value)
        if class_name is not None and (doc.get("object") or {}).get("class") != class_name:
            return not_found(v)
        doc.setdefault("at", stamp(value))
        decl = rt.state.snapshot().classes.get(doc["object"].get("class", ""))
        targets = {p.name: p.dataType[0] for p in decl.properties} if decl else {}
        include = {s.strip() for s in request.query.get("include", "").split(",") if s.strip()}
        return v.json(object_body(doc, targets, include))

    @app.page("/v1/objects/{class_name}/{object_id}")
    class ObjectOfClass(View):
        async def get(self, request: Request, class_name: str, object_id: str) -> Response:
            return await stored_object(self, request, class_name, object_id)

    @app.page("/v1/objects/{object_id}")
    class Object(View):
        async def get(self, request: Request, object_id: str) -> Response:
            return await stored_object(self, request, None, object_id)
