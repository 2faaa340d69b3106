"""Real images and videos for tests, made on the spot: scikit-image's sample photographs, encoded
with Pillow (JPEG, PNG) and PyAV (H.264 in MP4). Nothing is read from disk but the samples."""

from __future__ import annotations

import io
import zlib
import struct

import numpy as np
from PIL import Image


def sample(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A scikit-image sample as ``(h, w, 3)`` uint8 RGB, optionally resized to ``size`` (w, h)."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = np.ascontiguousarray(img[..., :3])
    if size is not None:
        img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))
    return img


def encode(rgb: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


def resized(rgb: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((int(w * factor), int(h * factor)), Image.Resampling.LANCZOS))


def cropped(rgb: np.ndarray, share: float) -> np.ndarray:
    """``share`` of each side cut off (0.03: 3 % from every border)."""
    h, w = rgb.shape[:2]
    dy, dx = int(h * share), int(w * share)
    return np.ascontiguousarray(rgb[dy:h - dy, dx:w - dx])


def video(segments: list[tuple[np.ndarray, float]], fps: int = 4, size: tuple[int, int] = (256, 256)) -> bytes:
    """An H.264 MP4: each ``(image, seconds)`` shown for that long, in order."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for img, seconds in segments:
            frame = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))
            for _ in range(int(round(seconds * fps))):
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def huge_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width x height`` 1-bit pixels, with a tiny (deflated) body:
    a decompression bomb that a decoder must refuse before allocating."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
