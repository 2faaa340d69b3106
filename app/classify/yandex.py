"""Yandex Vision ``batchAnalyze`` image classification on raw images: the pure part of
``POST /vision/v1/batchAnalyze`` (``app/service/web_yandex.py``), run in the classify pool.

Request (``shared/reference/yandex-vision-image-classification.md``)::

    {"folderId"?, "analyze_specs": [{"content": <base64>, "features": [{"type": "CLASSIFICATION",
      "classificationConfig": {"model": "nudity"}}]}]}

Response: one result per spec, in it one result per feature, each with *every* property of the
model and its ``probability``, zeros included::

    {"results": [{"results": [{"classification": {"properties": [{"name": "explicit", "probability": 0.0}, ...]}}]}]}

Models: the built-in ``nudity`` (properties ``explicit``, ``suggestive``, ``none``: the heads of the
frame the model finds most explicit, summing to 1) and any hash bank by name (``match``: ``1 - d/256``
for the nearest entry within the bank's threshold, else 0; ``no_match``: the rest). A taxonomy
scores embeddings, which a raw image does not have here (no image embedder is shipped): naming one
is a per-feature error, as is an unknown model; content that cannot be decoded is a per-spec
error. Errors inside a result follow Yandex's ``{"code", "message"}`` with gRPC codes (3: invalid
argument, 5: not found, 9: failed precondition -- the nudity model is not installed on this worker,
an optional extra --, 12: unimplemented). A malformed request as a whole raises :class:`BadRequest`
(the view answers 400 in Yandex's error shape).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from app.classify.banks import media_limits
from app.classify.codec import Rejected
from app.classify.raw_media import MODEL_CLASSES, frame_hashes, nudity_frames
from app.classify.state import ModelState
from app.core.decode_media import DecodedMedia, DecodeError, decode_media
from app.core.pdq import BITS

MAX_SPECS = 8  # Yandex Vision's own limit of images per batchAnalyze request
MAX_FEATURES = 16
INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, UNIMPLEMENTED = 3, 5, 9, 12


class BadRequest(ValueError):
    pass


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def parse(body: Any) -> list[tuple[str, list[str]]]:
    """``[(base64 content, [model, ...])]`` or ``BadRequest``.

    >>> parse({"analyze_specs": [{"content": "AAAA", "features": [{"type": "CLASSIFICATION",
    ...        "classificationConfig": {"model": "nudity"}}]}]})
    [('AAAA', ['nudity'])]
    >>> parse({"analyze_specs": []})
    Traceback (most recent call last):
    ...
    app.classify.yandex.BadRequest: analyze_specs: between 1 and 8 specs are needed, got 0
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    specs = body.get("analyze_specs", body.get("analyzeSpecs"))
    if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_SPECS:
        n = len(specs) if isinstance(specs, list) else "none"
        raise BadRequest(f"analyze_specs: between 1 and {MAX_SPECS} specs are needed, got {n}")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("content"), str) or not spec["content"]:
            raise BadRequest(f"analyze_specs[{i}].content: base64 image content is required")
        features = spec.get("features")
        if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
            raise BadRequest(f"analyze_specs[{i}].features: between 1 and {MAX_FEATURES} features are needed")
        models = []
        for j, f in enumerate(features):
            where = f"analyze_specs[{i}].features[{j}]"
            if not isinstance(f, dict) or f.get("type") != "CLASSIFICATION":
                got = f.get("type") if isinstance(f, dict) else f
                raise BadRequest(f"{where}.type: only CLASSIFICATION is supported here, got {got!r}")
            cfg = f.get("classificationConfig", f.get("classification_config"))
            if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), str) or not cfg["model"]:
                raise BadRequest(f"{where}.classificationConfig.model: a model name is required")
            models.append(cfg["model"])
        out.append((spec["content"], models))
    return out


def batch_analyze(state: ModelState, body: Any) -> dict[str, Any]:
    """The response document (see the module docstring). Raises ``BadRequest``."""
    results = []
    for content, models in parse(body):
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            results.append(_error(INVALID_ARGUMENT, "content is not valid base64"))
            continue
        try:
            media = decode_media(data, "image", media_limits(state.settings))
        except DecodeError as e:
            results.append(_error(INVALID_ARGUMENT, f"{e.reason}: {e.detail}"))
            continue
        results.append({"results": [feature(state, media, m) for m in models]})
    return {"results": results}


def feature(state: ModelState, media: DecodedMedia, model: str) -> dict[str, Any]:
    if model in MODEL_CLASSES:
        try:
            _, _, per_frame, worst = nudity_frames(media)
        except Rejected as r:  # model_unavailable: the optional model is not installed here
            return _error(FAILED_PRECONDITION, r.detail)
        props = [{"name": c, "probability": per_frame[worst][c]} for c in MODEL_CLASSES[model]]
        return {"classification": {"properties": props}}
    bank = state.banks.banks.get(model)
    if bank is not None:
        _, hashes = frame_hashes(media, state.settings.pdq_min_quality)
        matches = [m for ms in state.banks.match(hashes, {bank.name}) for m in ms]
        p = round(1.0 - min(m.distance for m in matches) / BITS, 6) if matches else 0.0
        return {"classification": {"properties": [{"name": "match", "probability": p},
                                                  {"name": "no_match", "probability": round(1.0 - p, 6)}]}}
    if model in state.snapshot().taxonomies:
        return _error(UNIMPLEMENTED, f"taxonomy {model!r} scores embeddings and an image has none here (no image "
                      "embedder is shipped): send the image's embedding as a segment on the media topic")
    return _error(NOT_FOUND, f"unknown model {model!r}: the built-in models are {sorted(MODEL_CLASSES)}, "
                  "or name a hash bank")
