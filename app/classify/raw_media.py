"""Raw media content -> hash-bank matches and built-in model results (runs in the classify pool).

A media item carrying ``content`` is decoded into frames (``app/core/decode_media.py``: limits
from the settings, a failure is the item's dead letter with its reason), each frame at its time.
Then, for every hash bank that applies to the item's index, and every ``model`` classifier:

* **hashmatch** (one result per bank, ``classifier: "bank:<name>"``): frames are PDQ-hashed;
  frames under ``pdq_min_quality`` are skipped (PDQ's advice: flat frames match each other) and
  counted. Each frame's matches come from the live bank index (``app/index/hashbank.py``). An
  image matches an entry when its frame is within the bank's threshold. A video matches by
  vPDQ's rule: the share of the video's hashed frames that match the entry (query share) and
  the share of the entry's hashes matched by some frame (target share; a banked image has one)
  must reach ``vpdq_query_share`` and ``vpdq_target_share``. ``labels.match`` is the label of the
  nearest matching entry (else None), ``confidence.match`` ``1 - distance / 256``; ``detail.hashmatch``
  lists every matching entry with its distance, frames and times. A match in a bank whose
  ``action`` is ``block`` or ``review`` is a moderation hit.
* **model** (one result per model classifier): the built-in model (``app/core/nudity.py``) per
  frame, as Hive per-frame output (heads summing to 1), Yandex ``models`` (every class with a
  probability), the detected parts with scores and boxes, and the classifier's ``policies`` over
  the item's scores (each class's maximum over the frames). Model name and version on every result.

Every result is a pure function of the content, the banks/entries and the settings, so a
redelivered record reproduces it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import numpy as np
import orjson

from app.classify import media as engine
from app.classify.assembly import Read
from app.classify.banks import media_limits
from app.classify.codec import Rejected
from app.classify.media import Media
from app.classify.outcome import Outcome, TableWrite
from app.classify.state import Classifier, ModelState
from app.core.decode_media import DecodedMedia, DecodeError, decode_media
from app.core.frames import hive_envelope, hive_media
from app.core.pdq import BITS, hash_hex, pdq_hash
from app.core.policies import evaluate
from app.index.hashbank import BankSpec, Match
from app.schemas.deadletter import Source
from app.schemas.results import ModerationHit, Result, TaxonomyRef
from app.schemas.training import ClassifierDef

BANK_CLASSIFIER = "bank:"
MODEL_CLASSES = {"nudity": ("explicit", "suggestive", "none")}
MODEL_BATCH = 8  # frames per detector call
CACHE = "media-cache"  # the media step's result cache table (app/classify/media_step.py)


def check_model_classifier(spec: ClassifierDef) -> None:
    """A model classifier's policies name classes of its model (else a rule could never fire). Raises ``Rejected``."""
    classes = MODEL_CLASSES.get(spec.model or "", ())
    for i, rule in enumerate(spec.policies):
        if unknown := sorted(set(rule.classes) - set(classes)):
            raise Rejected("invalid_classifier", f"policy {i} names classes {unknown} that model {spec.model!r} "
                           f"does not have ({', '.join(classes)})", f"policies.{i}.classes")


def decode(content: bytes, kind: str, state: ModelState) -> DecodedMedia:
    try:
        return decode_media(content, kind, media_limits(state.settings))
    except DecodeError as e:
        raise Rejected(e.reason, e.detail, "content") from None


def model_classifiers(state: ModelState, index_id: str, name: str | None = None) -> list[Classifier]:
    every = [c for cs in state.snapshot().classifiers_by_class.values() for c in cs if c.spec.type == "model"]
    if name is not None:
        return [c for c in every if c.name == name]
    return sorted((c for c in every if c.spec.media is None or c.spec.media.index_id in (None, index_id)),
                  key=lambda c: c.name)


def banks_for(state: ModelState, index_id: str, name: str | None = None) -> list[BankSpec]:
    """The banks that apply to the index, or the one named ``bank:<name>`` (whatever its index)."""
    if name is None:
        return state.banks.applicable(index_id)
    spec = state.banks.banks.get(name[len(BANK_CLASSIFIER):])
    return [spec] if spec is not None else []


def frame_hashes(media: DecodedMedia, min_quality: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Per frame ``{time, quality, hash, used}`` and the ``(k, 32)`` hashes of the frames used."""
    rows, used = [], []
    for f in media.frames:
        h, q = pdq_hash(f.rgb)
        ok = q >= min_quality
        rows.append({"time": f.time, "quality": q, "hash": hash_hex(h), "used": ok})
        if ok:
            used.append(h)
    return rows, (np.stack(used) if used else np.empty((0, 32), np.uint8))


def bank_results(state: ModelState, banks: list[BankSpec], frames: list[dict[str, Any]], hashes: np.ndarray,
                 matches: list[list[Match]], base: dict[str, Any], video: bool) -> list[tuple[Result, list[ModerationHit]]]:
    s = state.settings
    used_times = [fr["time"] for fr in frames if fr["used"]]
    out = []
    for bank in banks:
        per_entry: dict[str, list[tuple[int, Match]]] = {}
        for qi, ms in enumerate(matches):
            for m in ms:
                if m.bank == bank.name:
                    per_entry.setdefault(m.entry_id, []).append((qi, m))
        found: list[dict[str, Any]] = []
        for eid, hits in per_entry.items():
            entry = state.banks.entries.get(eid)
            if entry is None:
                continue
            e = entry[0]
            qframes = sorted({qi for qi, _ in hits})
            qshare = len(qframes) / max(len(used_times), 1)
            tshare = len({m.hash_index for _, m in hits}) / len(e.hashes)
            if video and (qshare < s.vpdq_query_share or tshare < s.vpdq_target_share):
                continue
            best = {qi: min(m.distance for q2, m in hits if q2 == qi) for qi in qframes}
            found.append({"id": eid, "label": e.label, "distance": min(best.values()),
                          "query_share": round(qshare, 4), "target_share": round(tshare, 4),
                          "frames": [{"time": used_times[qi], "distance": best[qi]} for qi in qframes],
                          "provenance": e.provenance})
        found.sort(key=lambda f: (f["distance"], f["id"]))
        top = found[0] if found else None
        decision = {"action": bank.action if top else "allow", "bank": bank.name, "labels": bank.labels}
        detail = {"hashmatch": {"bank": bank.name, "signal_type": bank.signal_type, "threshold": bank.threshold,
                                "labels": bank.labels, "matches": found, "frames": len(frames),
                                "hashed_frames": len(used_times),
                                "low_quality_frames": [fr["time"] for fr in frames if not fr["used"]]},
                  "frame_hashes": [{"time": fr["time"], "pdq": fr["hash"], "quality": fr["quality"]} for fr in frames],
                  "policy": decision}
        conf = round(1.0 - top["distance"] / BITS, 6) if top else 0.0
        res = Result(**base, result_id=f"{base['item_id']}/{BANK_CLASSIFIER}{bank.name}",
                     classifier=BANK_CLASSIFIER + bank.name, method="hashmatch",
                     labels={"match": top["label"] or top["id"]} if top else {"match": None},
                     confidence={"match": conf}, taxonomies=[TaxonomyRef(name=bank.name, version=bank.version)],
                     detail=detail)
        bank_hits = []
        if top and bank.action != "allow":
            bank_hits.append(ModerationHit(item_id=base["item_id"], item_kind="media", action=bank.action,
                                      rule=f"bank:{bank.name}", taxonomy=TaxonomyRef(name=bank.name, version=bank.version),
                                      class_name=top["label"] or top["id"], score=conf, scores={"match": conf},
                                      source=base["source"]))
        out.append((res, bank_hits))
    return out


def nudity_frames(media: DecodedMedia) -> tuple[Any, list[list[dict[str, Any]]], list[dict[str, float]], int]:
    """The model, per frame its detections and heads, and the worst frame (most explicit, then suggestive).
    Raises ``Rejected`` (``model_unavailable``) when the model is not installed on this worker."""
    from app.core.nudity import ModelUnavailable, get_model, heads

    try:
        model = get_model()
    except ModelUnavailable as e:
        raise Rejected("model_unavailable", str(e), "classifier") from None
    detections: list[list[dict[str, Any]]] = []
    for i in range(0, len(media.frames), MODEL_BATCH):
        detections += model.detect([f.rgb for f in media.frames[i:i + MODEL_BATCH]])
    per_frame = [heads(d) for d in detections]
    worst = max(range(len(per_frame)), key=lambda i: (per_frame[i]["explicit"], per_frame[i]["suggestive"]))
    return model, detections, per_frame, worst


def model_results(classifiers: list[Classifier], media: DecodedMedia, base: dict[str, Any], meta: dict[str, Any],
                  created_on: str) -> list[tuple[Result, list[ModerationHit]]]:
    if not classifiers:
        return []
    frames = media.frames
    model, detections, per_frame, worst = nudity_frames(media)
    classes = MODEL_CLASSES["nudity"]
    item = {c: max(h[c] for h in per_frame) for c in classes if c != "none"}
    item["none"] = per_frame[worst]["none"]
    output = [{"time": _num(f.time), "classes": [{"class": c, "score": h[c]} for c in classes]}
              for f, h in zip(frames, per_frame)]
    parts = [{"time": _num(f.time), "parts": d} for f, d in zip(frames, detections) if d]
    label = max(classes, key=lambda c: per_frame[worst][c])
    digest = hashlib.blake2b(orjson.dumps(output), digest_size=12).hexdigest()  # the task id: same output, same id
    out = []
    for c in classifiers:
        decision = evaluate(c.spec.policies, item)
        detail = {"model": {"name": "nudity", "version": model.version},
                  "models": [{"model": "nudity", "version": model.version,
                              "properties": [{"name": k, "probability": item[k]} for k in classes]}],
                  "heads": {"nudity": [{"class": k, "score": per_frame[worst][k]} for k in classes]},
                  "parts": parts, "frames": len(frames), "policy": {"nudity": decision.to_dict()}}
        m = c.spec.media
        if m is None or m.output in ("hive", "both"):
            task = str(uuid.uuid5(uuid.NAMESPACE_URL, f"labelstream:model/{base['item_id']}/{c.name}/{digest}"))
            detail["hive"] = hive_envelope(task_id=task, output=output, model="nudity",
                                           model_version=model.version, model_type="CATEGORIZATION",
                                           created_on=created_on, media=hive_media(meta), from_cache=False)
        res = Result(**base, result_id=f"{base['item_id']}/{c.name}", classifier=c.name, method="model",
                     labels={"nudity": label}, confidence={"nudity": per_frame[worst][label]}, detail=detail)
        hits = []
        if decision.hit:
            hits.append(ModerationHit(item_id=base["item_id"], item_kind="media", action=decision.action,
                                      rule=decision.rule_name or f"{c.name}#{decision.rule}",
                                      taxonomy=TaxonomyRef(name="nudity", version=1),
                                      class_name=decision.class_name or "", score=float(decision.score or 0.0),
                                      scores=item, source=base["source"]))
        out.append((res, hits))
    return out


def classify_raw(state: ModelState, *, media_id: str, index_id: str, kind: str, content: bytes, source: Source,
                 classifier: str | None, created_on: str, mimetype: str | None = None,
                 ) -> tuple[list[Result], list[ModerationHit], DecodedMedia]:
    """Every bank and model classifier that applies (or the one named ``classifier``). Raises ``Rejected``:
    the content cannot be decoded within the limits, or nothing applies (``no_media_classifier``)."""
    if classifier is None:
        banks, models = banks_for(state, index_id), model_classifiers(state, index_id)
    elif classifier.startswith(BANK_CLASSIFIER):
        banks, models = banks_for(state, index_id, classifier), []
    else:
        banks, models = [], model_classifiers(state, index_id, classifier)
    if not banks and not models:
        if classifier is not None:
            raise Rejected("unknown_classifier", f"no bank or model classifier named {classifier!r}", "classifier")
        raise Rejected("no_media_classifier", f"no hash bank or model classifier applies to index {index_id!r}",
                       "index_id")
    media = decode(content, kind, state)
    base = {"item_id": media_id, "item_kind": "media", "class_": media.kind, "event_time": source.timestamp,
            "source": source}
    meta = {"kind": media.kind, "mimetype": mimetype, "duration": media.duration, "width": media.width,
            "height": media.height}
    pairs: list[tuple[Result, list[ModerationHit]]] = []
    if banks:
        frames, hashes = frame_hashes(media, state.settings.pdq_min_quality)
        matches = state.banks.match(hashes, {b.name for b in banks})
        pairs += bank_results(state, banks, frames, hashes, matches, base, video=media.kind == "video")
    pairs += model_results(models, media, base, meta, created_on)
    return [r for r, _ in pairs], [h for _, hs in pairs for h in hs], media


def outcome(state: ModelState, item: Media, read_cache: Read, now: int) -> Outcome:
    """The media step for an item with ``content``: its raw results, plus the taxonomy media
    classifiers' results when it also carries segments. Raises ``Rejected``."""
    raw = seg = None
    errors: list[Rejected] = []
    try:
        raw = classify_raw(state, media_id=item.media_id, index_id=item.index_id, kind=item.kind,
                           content=item.content or b"", source=item.source, classifier=item.classifier,
                           created_on=engine._iso(item.source.timestamp), mimetype=item.mimetype)
    except Rejected as r:
        if r.reason not in ("no_media_classifier", "unknown_classifier") or not item.segments:
            raise
        errors.append(r)
    if item.segments:
        try:
            job = engine.prepare(state, item)
            seg = engine.classify(job, {k: read_cache(k) for k in job.cache_keys}, now)
        except Rejected as r:
            if r.reason not in ("no_media_classifier", "unknown_classifier") or raw is None:
                raise
    if raw is None and seg is None:
        raise errors[0]
    out = Outcome(results=list(raw[0]) if raw else [], hits=list(raw[1]) if raw else [])
    if seg is not None:
        out.results += seg.results
        out.writes += [TableWrite(CACHE, k, v) for k, v in seg.cache_writes.items()]
    return out.encode()


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)
