"""Media in, results out: the glue between assembled media items and the pure media core.

``prepare`` packs one media item's segments (``app.core.segments``), picks its media
classifiers and computes a cache key per classifier; ``classify`` runs the Twelve Labs
semantics (``app.core.media``) and the Hive per-frame heads (``app.core.frames``) for the
keys the cache did not answer: one ``Result`` per classifier, or a ``Rejected`` raised
that becomes the item's one dead letter. ``encode_chunk`` / ``assemble`` are the chunk
table's value format. All of it runs in a worker thread: no asyncio, no Kafka; the agent
does the table reads and writes in between.

Choices, and why:

* **Classifiers.** An event naming ``classifier`` gets exactly that one (it must exist and be
  of type ``media``: else ``unknown_classifier``), whatever its ``index_id``; otherwise every
  media classifier whose ``media.index_id`` is unset or equals the event's index applies
  (none: ``no_media_classifier``).
* **Classes** are the leaves of the classifier's one taxonomy, prompts and prompt vectors
  straight from the compiled prompt matrix ``P``; per-class Twelve Labs ``options`` /
  ``conversation_option`` come from ``media.classes[name]``. Parents are not Twelve Labs
  classes (its taxonomy is flat per request); heads become Hive heads.
* **Segments with text but no vector** are matched by ``exact_match`` only (conversation
  segments, when the classifier asks for it) and are otherwise unscored. Embedding their
  text with the taxonomy's text vectorizer would put them in a different vector space than
  the media embeddings the prompt vectors are compared with, and a cosine across two spaces
  means nothing. A producer that wants semantic text matching sends the text's embedding.
* **Labels**: ``{"class": top Twelve Labs class or None}``, confidence = its score / 100,
  whatever ``output`` says; ``detail`` holds ``twelvelabs`` ``{video_id, classes}`` and/or
  ``hive`` (the task envelope around the per-frame output).
* **Cache key** = blake2b of (content hash of the assembled segments, duration, image or
  not, taxonomy name + version + fingerprint, the classifier's media settings minus
  ``index_id``): everything the output is a function of, and nothing else, so the same
  content under another media_id is a hit too. The cached body remembers the record that
  computed it: a redelivery of that very record reports ``from_cache: false`` again, so it
  reproduces the same result byte for byte; any other record gets ``from_cache: true``.
* **Determinism**: the Hive task ``id`` is a UUID5 of media_id, classifier and cache key;
  ``created_on`` is the completing input record's timestamp. Wall-clock time travels in the
  ``classified_at`` header only (``app.service.sink``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import orjson

from app.classify.codec import Rejected, dumps
from app.classify.expiry import now_ms, stamped
from app.core.frames import frame_scores, hive_envelope, hive_media
from app.core.media import MediaClass, classify_media
from app.core.taxonomy import CompiledTaxonomy
from app.core.segments import SegmentArrays, content_hash, merge_chunks
from app.schemas.deadletter import Source
from app.schemas.media import MediaEvent
from app.schemas.results import Result, TaxonomyRef
from app.schemas.training import MediaSettings
from app.schemas.vectors import encode_vector, parse_vector
from app.classify.state import Classifier, ModelState, Snapshot

#: A result must fit the results topic (16 MB, ``app.service.faust_app.MAX_MESSAGE_BYTES``) with headroom for headers.
RESULT_LIMIT = 15 * 1024 * 1024
HIVE_MODEL_TYPE = "CATEGORIZATION"


@dataclass(frozen=True)
class Media:
    """One complete media item: metadata of the completing record plus canonical segments
    (``merge_chunks`` order; ``vector`` a float32 array or None)."""

    media_id: str
    index_id: str
    kind: str
    segments: list[dict[str, Any]]
    source: Source
    duration: float = 0.0
    mimetype: str | None = None
    width: int | None = None
    height: int | None = None
    classifier: str | None = None

    @property
    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "mimetype": self.mimetype, "duration": self.duration,
                "width": self.width, "height": self.height}


def segment_dicts(ev: MediaEvent) -> list[dict[str, Any]]:
    """The event's segments as the plain dicts ``app.core.segments`` works on."""
    return [{"start": s.start, "end": s.end, "option": s.option, "vector": s.vector, "text": s.text,
             "thumbnail_url": s.thumbnail_url} for s in ev.segments]


def whole(ev: MediaEvent, source: Source) -> Media:
    """A media event that is not chunked: the item itself."""
    return media_of([(ev, segment_dicts(ev))], source)


def media_of(events: list[tuple[MediaEvent | dict, list[dict[str, Any]]]], source: Source) -> Media:
    """Assemble ``(event or its metadata, segments)`` pairs of one media item (one pair for
    a whole event, one per chunk). Metadata comes from the final chunk, the duration is the
    largest declared; chunks disagreeing on kind, index or classifier are inconsistent.
    A video or audio without a duration lasts until its last segment ends."""
    metas = [e.model_dump(exclude={"segments"}) if isinstance(e, MediaEvent) else e for e, _ in events]
    for k in ("media_id", "kind", "index_id", "classifier"):
        if len({m.get(k) for m in metas}) > 1:
            seen = sorted({str(m.get(k)) for m in metas})
            raise Rejected("chunks_inconsistent", f"chunks disagree on {k}: {seen}", k)
    final = next((m for m in metas if (m.get("chunk") or {"final": True}).get("final")), metas[-1])
    segments = merge_chunks({"segments": segs} for _, segs in events)
    duration = max(float(m.get("duration") or 0.0) for m in metas)
    if not duration and final["kind"] != "image":
        duration = max((float(s["end"]) for s in segments), default=0.0)
    return Media(final["media_id"], final["index_id"], final["kind"], segments, source, duration,
                 final.get("mimetype"), final.get("width"), final.get("height"), final.get("classifier"))


# -- the chunk table's value format: compact JSON, vectors as base64 float32 ------------------

def encode_chunk(ev: MediaEvent, earlier: bytes | None = None) -> bytes:
    """A chunk event as stored while its media item waits for the rest. ``earlier``, a stored
    copy of the same ``seq``, is merged in (``merge_chunks``' deterministic preference), so
    two conflicting copies give the same entry in either arrival order."""
    meta = ev.model_dump(mode="json", exclude={"segments"})
    segs = segment_dicts(ev)
    if earlier is not None:
        old_meta, old_segs = decode_chunk(earlier)
        segs = merge_chunks([{"segments": old_segs}, {"segments": segs}])
        meta["chunk"]["final"] = bool(meta["chunk"]["final"] or old_meta["chunk"]["final"])
        totals = [t for t in (meta["chunk"]["total"], old_meta["chunk"]["total"]) if t]
        meta["chunk"]["total"] = max(totals, default=None)
    rows = [{**s, "vector": None if s["vector"] is None else encode_vector(s["vector"])} for s in segs]
    return orjson.dumps({"meta": meta, "segments": rows})


def decode_chunk(value: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc = orjson.loads(value)
    for s in doc["segments"]:
        if s["vector"] is not None:
            s["vector"] = parse_vector(s["vector"])
    return doc["meta"], doc["segments"]


def assemble(values: list[bytes], source: Source) -> Media:
    """The complete media item from its stored chunks (see :func:`media_of`)."""
    return media_of([decode_chunk(v) for v in values], source)


@dataclass
class Run:
    classifier: Classifier
    taxonomy: CompiledTaxonomy
    classes: list[MediaClass]
    key: bytes


@dataclass
class Job:
    media: Media
    arrays: SegmentArrays
    content: str
    runs: list[Run]

    @property
    def cache_keys(self) -> list[bytes]:
        return [r.key for r in self.runs]


@dataclass
class Computed:
    """The results of one media item and what to write to the result cache."""

    results: list[Result] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)  # ``dumps`` of each result: serialized once
    cache_writes: dict[bytes, bytes] = field(default_factory=dict)


def prepare(state: ModelState, media: Media, packed: tuple[SegmentArrays, str] | None = None) -> Job:
    """Pack segments (unless ``packed``, from :func:`pack`), choose classifiers, build their classes
    and cache keys. Raises ``Rejected``."""
    arrays, content = packed or pack(state, media)
    snap = state.snapshot()
    runs = []
    for c in classifiers_for(snap, media):
        name = c.spec.taxonomies[0]
        tax = snap.taxonomies.get(name)
        if tax is None:
            raise Rejected("unknown_taxonomy", f"classifier {c.name!r} needs taxonomy {name!r}, which is not loaded",
                           "classifier")
        if arrays.has_vector.any() and tax.dim != arrays.dim:
            raise Rejected("vector_dimension_mismatch",
                           f"taxonomy {name!r} has dimension {tax.dim}, the segment vectors {arrays.dim}", "segments")
        runs.append(Run(c, tax, media_classes(c, tax), cache_key(content, media, c, tax)))
    return Job(media, arrays, content, runs)


def pack(state: ModelState, media: Media) -> tuple[SegmentArrays, str]:
    """The item's segments as arrays and their content hash; ``Rejected`` when the item itself is bad."""
    limit = state.settings.max_vector_dim
    for i, s in enumerate(media.segments):
        if s.get("vector") is not None and len(s["vector"]) > limit:
            raise Rejected("vector_too_large", f"segment vector has {len(s['vector'])} dimensions, "
                           f"the limit is {limit}", f"segments.{i}.vector")
    try:
        arrays = SegmentArrays.from_segments(media.segments)
    except ValueError as e:
        raise Rejected("vector_dimension_mismatch", str(e), "segments") from None
    return arrays, content_hash(arrays)


def media_settings(c: Classifier) -> MediaSettings:
    """A media classifier's settings (the schema fills defaults in for ``type: media``)."""
    assert c.spec.media is not None, f"classifier {c.name!r} is not a media classifier"
    return c.spec.media


def classifiers_for(snap: Snapshot, media: Media) -> list[Classifier]:
    every = [c for cs in snap.classifiers_by_class.values() for c in cs if c.spec.type == "media"]
    if media.classifier is not None:
        chosen = [c for c in every if c.name == media.classifier]
        if not chosen:
            raise Rejected("unknown_classifier", f"no media classifier named {media.classifier!r}", "classifier")
        return chosen
    chosen = [c for c in every if media_settings(c).index_id in (None, media.index_id)]
    if not chosen:
        raise Rejected("no_media_classifier", f"no media classifier applies to index {media.index_id!r}", "index_id")
    return sorted(chosen, key=lambda c: c.name)


def media_classes(c: Classifier, tax: CompiledTaxonomy) -> list[MediaClass]:
    """The taxonomy's leaves as Twelve Labs classes (prompt rows of ``P``), Hive heads kept."""
    per_class = media_settings(c).classes
    if unknown := sorted(set(per_class) - set(tax.class_names)):
        raise Rejected("invalid_classifier", f"classifier {c.name!r} sets options for classes {unknown} "
                       f"that taxonomy {tax.name!r} v{tax.version} does not have", "media.classes")
    ends = list(tax.prompt_starts[1:]) + [len(tax.prompts)]
    out = []
    for leaf, ci in enumerate(tax.leaf_classes.tolist()):
        lo, hi = int(tax.prompt_starts[leaf]), int(ends[leaf])
        name = tax.class_names[ci]
        o = per_class.get(name)
        out.append(MediaClass(name, tax.prompts[lo:hi], tax.P[lo:hi],
                              options=tuple(o.options) if o and o.options else None,
                              conversation_option=o.conversation_option if o else None,
                              head=int(tax.head_of_class[ci])))
    return out


def cache_key(content: str, media: Media, c: Classifier, tax: CompiledTaxonomy) -> bytes:
    settings = media_settings(c).model_dump(mode="json", exclude={"index_id"})
    doc = {"v": 1, "content": content, "duration": media.duration, "image": media.kind == "image",
           "taxonomy": [tax.name, tax.version, tax.fingerprint], "settings": settings}
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=20).hexdigest().encode()


def classify(job: Job, cached: Mapping[bytes, bytes | None], now: int | None = None) -> Computed:
    """One result per run: from the cache when the key is there, computed (and to be cached,
    stamped ``now`` ms for the cache TTL) otherwise. Raises ``Rejected``: one dead letter instead
    of any result."""
    out = Computed()
    now = now_ms() if now is None else now
    origin = _origin(job.media.source)
    for run in job.runs:
        hit = cached.get(run.key)
        if hit is not None:
            body = orjson.loads(hit)
            from_cache = body.get("origin") != origin
        else:
            body = compute(job, run)
            body["origin"] = origin
            out.cache_writes[run.key] = stamped(now, body)
            from_cache = False
        r = to_result(job, run, body, from_cache)
        encoded = dumps(r)  # checked here, before anything is cached; the sink sends these bytes
        if (size := len(encoded)) > RESULT_LIMIT:
            raise Rejected("result_too_large", f"the result of classifier {run.classifier.name!r} is {size} bytes, "
                           f"the limit is {RESULT_LIMIT}: ask for less output (output, include_clips)")
        out.results.append(r)
        out.encoded.append(encoded)
    return out


def compute(job: Job, run: Run) -> dict[str, Any]:
    """The media_id-independent part of a result: what the cache stores."""
    m = media_settings(run.classifier)
    try:
        tl = classify_media(job.arrays, job.media.duration, run.classes, options=m.options,
                            conversation_option=m.conversation_option, include_clips=m.include_clips,
                            show_detailed_score=m.show_detailed_score, threshold=m.threshold)
    except ValueError as e:
        raise Rejected("invalid_classifier", f"classifier {run.classifier.name!r}: {e}") from None
    frames = None
    if m.output in ("hive", "both"):
        frames = frame_scores(job.arrays, run.classes, temperature=run.taxonomy.temperature,
                              image=job.media.kind == "image", options=m.options)
    top = tl["classes"][0] if tl["classes"] else None
    return {"classes": tl["classes"], "frames": frames,
            "labels": {"class": top["name"] if top else None},
            "confidence": {"class": top["score"] / 100.0} if top else {}}


def to_result(job: Job, run: Run, body: dict[str, Any], from_cache: bool) -> Result:
    media, c, tax = job.media, run.classifier, run.taxonomy
    detail: dict[str, Any] = {"content_hash": job.content, "segments": job.arrays.n, "duration": media.duration}
    if media_settings(c).output in ("twelvelabs", "both"):
        detail["twelvelabs"] = {"video_id": media.media_id, "classes": body["classes"]}
    if media_settings(c).output in ("hive", "both"):
        created = _iso(media.source.timestamp)
        task = str(uuid.uuid5(uuid.NAMESPACE_URL, f"labelstream:media/{media.media_id}/{c.name}/{run.key.decode()}"))
        detail["hive"] = hive_envelope(task_id=task, output=body["frames"] or [], model=tax.name,
                                       model_version=tax.version, model_type=HIVE_MODEL_TYPE, created_on=created,
                                       media=hive_media(media.meta), from_cache=from_cache)
    return Result(result_id=f"{media.media_id}/{c.name}", item_id=media.media_id, item_kind="media",
                  class_=media.kind, classifier=c.name, method="media", labels=body["labels"],
                  confidence=body["confidence"], taxonomies=[TaxonomyRef(name=tax.name, version=tax.version)],
                  detail=detail, from_cache=from_cache, event_time=media.source.timestamp, source=media.source)


def _origin(source: Source) -> list:
    return [source.topic, source.partition, source.offset]


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

