"""Dead letters: every input that cannot be classified leaves as one of these.

``reason`` is a machine-readable code (see ``REASONS``); ``detail`` says what was wrong
and ``path`` where (a field path such as ``segments.3.vector``). The original bytes ride
along in base64 so nothing is lost and a record can be replayed after a fix; a value too big
for the dead-letter topic travels as a prefix with its size and sha256 (``value_truncated``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

REASONS = {
    "invalid_json": "the value is not JSON (or not a JSON object)",
    "schema_violation": "the value does not match the topic's schema",
    "payload_too_large": "the value exceeds max_payload_bytes",
    "empty_value": "a record without a value on a topic that needs one",
    "vector_dimension_mismatch": "the vector's dimension differs from the index or taxonomy",
    "vector_not_finite": "the vector holds NaN or infinity",
    "vector_too_large": "the vector exceeds max_vector_dim",
    "too_many_segments": "a media event exceeds max_segments",
    "unknown_class": "no classifier applies to the object's class",
    "unknown_classifier": "the event names a classifier that does not exist",
    "unknown_taxonomy": "a zero-shot classifier names a taxonomy that has not been published",
    "no_media_classifier": "no media classifier applies to the media event's index",
    "media_key_mismatch": "a chunked media event is not keyed by its media_id",
    "chunks_inconsistent": "the chunks of a media item contradict each other (seq after final, total, kind)",
    "media_too_large": "the chunks of one media item exceed the assembly limit",
    "media_incomplete": "a chunked media item did not complete within media_incomplete_ttl of its last chunk: its "
                        "chunks were dropped (detail names the chunks and their offsets)",
    "result_too_large": "the result would exceed the results topic's message size",
    "invalid_filter": "a where-filter is malformed",
    "filter_too_complex": "a where-filter exceeds a limit (nesting depth, operands, nodes, Like pattern length)",
    "invalid_classifier": "a classifier definition is invalid",
    "invalid_taxonomy": "a taxonomy is invalid",
    "invalid_job": "a classification job breaks one of Weaviate's rules (detail: Weaviate's message)",
    "vectorizer_error": "text could not be vectorized",
    "text_too_long": "a text to vectorize exceeds the vectorizer's max_text_chars",
    "content_undecodable": "a media event's content is not a decodable image or video (truncated, corrupt, not media)",
    "content_too_large": "a media event's decoded content exceeds max_media_bytes",
    "unsupported_codec": "the content's container has no video stream, or no decoder for its codec",
    "image_too_large": "the image (or video frame) has more pixels than max_media_pixels (decompression bomb)",
    "media_too_long": "the video lasts longer than max_media_duration, or samples more than max_media_frames",
    "model_unavailable": "a model classifier applies but its built-in model is not installed on the worker (the "
                         "nudity model is an optional extra)",
    "feedback_key_mismatch": "a feedback record is not keyed by its item_id",
    "internal_error": "an unexpected error while classifying (a bug: please report)",
}


class Source(BaseModel):
    topic: str
    partition: int
    offset: int
    timestamp: int | None = Field(None, description="record timestamp, ms since epoch")


class DeadLetter(BaseModel):
    reason: str = Field(description="machine-readable code: " + ", ".join(REASONS))
    detail: str
    path: str | None = None
    source: Source
    key: str | None = Field(None, description="record key as UTF-8 text when it is valid UTF-8")
    key_b64: str | None = None
    value_b64: str | None = Field(None, description="the original value bytes, base64 (a prefix when value_truncated)")
    value_size: int | None = Field(None, description="size of the original value in bytes")
    value_truncated: bool = Field(False, description="value_b64 holds only a prefix: the original would not fit "
                                  "the dead-letter topic's message size")
    value_sha256: str | None = Field(None, description="sha256 (hex) of the whole original value, when truncated")
    key_truncated: bool = Field(False, description="key_b64 holds only a prefix of an oversized key")
