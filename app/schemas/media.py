"""Media events: images, video and audio as time-coded segments (keyed by media_id).

An image is one ``visual`` segment at time 0. A long video may arrive as several chunk
events (``chunk.seq`` 0, 1, ...) closed by one with ``chunk.final``; the service
assembles them and classifies the media once complete.

    >>> MediaEvent.model_validate({"media_id": "m1", "index_id": "i", "kind": "image",
    ...     "segments": [{"start": 0, "end": 0, "option": "visual", "vector": [1, 0]}]}).kind
    'image'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.schemas.vectors import Vector

Option = Literal["visual", "conversation", "text_in_video"]
#: Bounds on times (seconds) and counts: results write whole numbers as JSON integers, which
#: are 64-bit, so an unbounded 1e308 s duration or a 1e21 px width would pass validation and
#: then fail to serialize. A century of media and 2^31 pixels or chunks are beyond any real item.
MAX_SECONDS = 100 * 365 * 24 * 3600.0
MAX_COUNT = 2**31 - 1
#: Twelve Labs ``threshold`` keys a media classifier may set: one per option, plus the clip/video/ratio floors.
THRESHOLD_KEYS = frozenset(("visual", "conversation", "text_in_video", "min_clip_score", "min_video_score",
                            "min_duration_ratio"))


class Segment(BaseModel):
    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    start: float = Field(ge=0, le=MAX_SECONDS)
    end: float = Field(ge=0, le=MAX_SECONDS)
    option: Option = "visual"
    vector: Vector | None = None
    text: str | None = None
    thumbnail_url: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "Segment":
        if self.end < self.start:
            raise PydanticCustomError("segment_time", "segment ends ({end}) before it starts ({start})",
                                      {"start": self.start, "end": self.end})
        if self.vector is None and not self.text:
            raise PydanticCustomError("vector_missing", "segment has neither a vector nor text")
        return self


class Chunk(BaseModel):
    seq: int = Field(ge=0, le=MAX_COUNT)
    final: bool = False
    total: int | None = Field(None, ge=1, le=MAX_COUNT)


class MediaEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    media_id: str = Field(min_length=1, max_length=512)
    index_id: str = Field("default", min_length=1, max_length=256)
    kind: Literal["image", "video", "audio"]
    mimetype: str | None = None
    duration: float = Field(0.0, ge=0, le=MAX_SECONDS)
    width: int | None = Field(None, ge=0, le=MAX_COUNT)
    height: int | None = Field(None, ge=0, le=MAX_COUNT)
    segments: list[Segment] = Field(default_factory=list, description="at least one, unless content is sent")
    content: str | None = Field(None, description="raw image or video bytes, base64 (a chunk carries a piece)")
    chunk: Chunk | None = None
    classifier: str | None = Field(None, description="media classifier to apply; default: all for the index")

    @model_validator(mode="after")
    def _has_media(self) -> "MediaEvent":
        if not self.segments and self.content is None:
            raise PydanticCustomError("too_short", "a media event needs segments or content")
        return self
