"""Raw media bytes -> sampled RGB frames, with limits: pure (no Kafka, no asyncio).

Images are decoded by Pillow, video containers by PyAV (FFmpeg inside its wheel). Every limit
is checked *before* the expensive step it guards, from the header: the byte size before any
parsing, the pixel count before a single pixel is decoded (a 60,000 x 60,000 PNG of a few KB
is a decompression bomb), the declared duration before decoding the stream (and again on every
frame, since a container may lie or not declare it), the number of sampled frames while sampling.

A video is sampled at ``fps`` (default 1): the first frame at or after each ``k / fps`` seconds,
its ``time`` the frame's own presentation time. Frames are scaled down to ``max_side`` pixels on
their longer side: PDQ and the nudity detector both work on small images (PDQ downsamples to
64 x 64 internally, NudeNet to 320 x 320), and a bounded frame bounds the memory per item.

Every failure is a :class:`DecodeError` whose ``reason`` is a dead-letter reason:
``content_too_large``, ``content_undecodable``, ``unsupported_codec``, ``image_too_large``
(dimensions) and ``media_too_long`` (duration or frames).

>>> import io
>>> from PIL import Image
>>> buf = io.BytesIO(); Image.new("RGB", (640, 480), (200, 10, 10)).save(buf, "PNG")
>>> m = decode_media(buf.getvalue(), "image", MediaLimits())
>>> m.kind, m.width, m.height, len(m.frames), m.frames[0].rgb.shape
('image', 640, 480, 1, (384, 512, 3))
>>> try: decode_media(b"not an image at all", "image", MediaLimits())
... except DecodeError as e: print(e.reason)
content_undecodable
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["MediaLimits", "Frame", "DecodedMedia", "DecodeError", "decode_media", "decode_image", "decode_video"]


#: decoded (not sampled) frames per second of max_duration: bounds the decoding work of a stream
#: whose frames carry no times or come at absurd rates (real video: 24-120 fps)
MAX_DECODED_FPS = 240


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 40_000_000  # per frame (width x height); Pillow's own bomb warning is at 89 M
    max_duration: float = 600.0  # seconds of video
    max_frames: int = 600  # sampled frames per item
    fps: float = 1.0  # sampling rate of video frames
    max_side: int = 512  # frames are scaled down to this longer side


@dataclass(frozen=True)
class Frame:
    time: float  # seconds from the start (0 for an image)
    rgb: np.ndarray  # (h, w, 3) uint8


@dataclass(frozen=True)
class DecodedMedia:
    kind: str  # "image" | "video"
    width: int
    height: int
    duration: float
    codec: str
    frames: list[Frame] = field(default_factory=list)


class DecodeError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def decode_media(data: bytes, kind: str, limits: MediaLimits) -> DecodedMedia:
    """Decode ``data`` as ``kind`` ("image" or "video"). An image sent as ``video`` (or a one-frame
    video sent as ``image``) is still decoded: the container, not the label, decides."""
    if len(data) > limits.max_bytes:
        raise DecodeError("content_too_large", f"content is {len(data)} bytes, the limit is {limits.max_bytes}")
    if not data:
        raise DecodeError("content_undecodable", "content is empty")
    if kind == "video":
        try:
            return decode_video(data, limits)
        except DecodeError as e:
            if e.reason != "content_undecodable" or not _looks_like_image(data):
                raise
            return decode_image(data, limits)
    try:
        return decode_image(data, limits)
    except DecodeError as e:
        if e.reason != "content_undecodable" or _looks_like_image(data):
            raise
        return decode_video(data, limits)


def _looks_like_image(data: bytes) -> bool:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data))
        return True
    except Exception:  # noqa: BLE001 - anything Pillow cannot identify is not an image to it
        return False


def _scaled(rgb: np.ndarray, max_side: int) -> np.ndarray:
    from PIL import Image

    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return np.ascontiguousarray(rgb)
    im = Image.fromarray(rgb)
    im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return np.asarray(im)


def decode_image(data: bytes, limits: MediaLimits) -> DecodedMedia:
    """One frame at time 0 (the first frame of an animated image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x its own limit refuses) on large images: we check our limit ourselves
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as e:
        raise DecodeError("image_too_large", str(e)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DecodeError("content_undecodable", f"not a decodable image: {e}") from None
    w, h = im.size
    if w * h > limits.max_pixels:
        raise DecodeError("image_too_large", f"image is {w} x {h} = {w * h} pixels, the limit is {limits.max_pixels}")
    if w == 0 or h == 0:
        raise DecodeError("content_undecodable", f"image has no pixels ({w} x {h})")
    try:
        im.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode at a reduced scale, much faster
        rgb = np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise DecodeError("image_too_large", str(e)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated or corrupt data
        raise DecodeError("content_undecodable", f"{im.format or 'image'} data cannot be decoded: {e}") from None
    return DecodedMedia("image", w, h, 0.0, (im.format or "").lower(), [Frame(0.0, _scaled(rgb, limits.max_side))])


def decode_video(data: bytes, limits: MediaLimits) -> DecodedMedia:
    """Frames sampled at ``limits.fps``."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as e:
        raise DecodeError("content_undecodable", f"not a decodable media container: {e}") from None
    with container:
        if not container.streams.video:
            raise DecodeError("unsupported_codec", f"the {container.format.name} container has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        codec = getattr(ctx, "name", None) or ""
        if ctx is None or not codec:
            raise DecodeError("unsupported_codec", "the video stream's codec has no decoder here")
        w, h = int(ctx.width or 0), int(ctx.height or 0)
        if w * h > limits.max_pixels:
            raise DecodeError("image_too_large", f"video frames are {w} x {h} = {w * h} pixels, "
                              f"the limit is {limits.max_pixels}")
        declared = _declared_duration(container, stream)
        if declared is not None and declared > limits.max_duration:
            raise DecodeError("media_too_long", f"video lasts {declared:.1f} s, the limit is {limits.max_duration} s")
        frames: list[Frame] = []
        step = 1.0 / limits.fps
        next_t, last_t = 0.0, 0.0
        decoded, max_decoded = 0, int(limits.max_duration * MAX_DECODED_FPS) + 1
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded > max_decoded:  # frames without times, or at absurd rates: bounded work anyway
                    raise DecodeError("media_too_long", f"more than {max_decoded} frames to decode "
                                      f"({MAX_DECODED_FPS} fps x max_duration)")
                t = float(frame.time) if frame.time is not None else last_t
                last_t = max(last_t, t)
                if t > limits.max_duration:
                    raise DecodeError("media_too_long", f"video runs past {limits.max_duration} s")
                if frame.width * frame.height > limits.max_pixels:
                    raise DecodeError("image_too_large", f"a frame is {frame.width} x {frame.height} pixels")
                if t + 1e-6 < next_t:
                    continue
                if len(frames) >= limits.max_frames:
                    raise DecodeError("media_too_long", f"more than {limits.max_frames} frames at {limits.fps} fps "
                                      "(max_frames)")
                frames.append(Frame(round(t, 3), _scaled(frame.to_ndarray(format="rgb24"), limits.max_side)))
                next_t = (int(t / step + 1e-6) + 1) * step
        except av.error.FFmpegError as e:
            if not frames:
                raise DecodeError("content_undecodable", f"the {codec} stream cannot be decoded: {e}") from None
            # a damaged tail: keep what decoded (players do the same); the duration says how far it got
        if not frames:
            raise DecodeError("content_undecodable", f"the {codec} stream holds no decodable frame")
        duration = declared if declared is not None else last_t
        return DecodedMedia("video", w, h, round(max(duration, last_t), 3), codec, frames)


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base: microseconds
    return None
