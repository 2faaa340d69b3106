"""The built-in nudity model: NudeNet's ONNX detector (shipped inside the ``nudenet`` wheel), run by
onnxruntime, with its pre- and post-processing in numpy (so OpenCV, nudenet's own dependency, is
not needed: ``pip install --no-deps nudenet==3.4.2``; nothing is downloaded at run time).

Per frame the detector finds body parts (18 labels such as ``FEMALE_BREAST_EXPOSED`` or
``FACE_MALE``) with scores and boxes. They are mapped to one Hive-style head of three classes that
sum to 1 (a mapping of detections, not a calibrated probability):

* ``explicit`` = the highest score of an exposed sexual part (:data:`EXPLICIT`);
* ``suggestive`` = ``(1 - explicit)`` x the highest score of a covered sexual part or other exposed
  skin (:data:`SUGGESTIVE`);
* ``none`` = the rest.

**An optional install, under its own licence.** The detector's weights are AGPL-3.0 (a YOLOv8n
trained with Ultralytics; the ONNX file's own metadata says so, and so do the licence files in
nudenet's wheel, whatever its metadata claims): see the README's "Licences". Labelstream runs
without it; a worker that lacks it raises :class:`ModelUnavailable` here, which the media step
turns into a ``model_unavailable`` dead letter (and the Yandex endpoint into a per-feature error).

>>> heads([{"class": "FEMALE_BREAST_EXPOSED", "score": 0.8}, {"class": "BELLY_EXPOSED", "score": 0.5}])
{'explicit': 0.8, 'suggestive': 0.1, 'none': 0.1}
>>> heads([{"class": "FACE_FEMALE", "score": 0.9}])
{'explicit': 0.0, 'suggestive': 0.0, 'none': 1.0}
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["LABELS", "EXPLICIT", "SUGGESTIVE", "CLASSES", "MODEL_NAME", "NudityModel", "ModelUnavailable",
           "INSTALL", "heads", "nms", "model_version", "get_model"]

#: the detector's output classes, in its order (nudenet 3.4.2, 320n.onnx)
LABELS = ("FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
          "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
          "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
          "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED")
EXPLICIT = frozenset({"FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_EXPOSED", "FEMALE_BREAST_EXPOSED",
                      "BUTTOCKS_EXPOSED"})
SUGGESTIVE = frozenset({"FEMALE_GENITALIA_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED", "ANUS_COVERED",
                        "BELLY_EXPOSED", "MALE_BREAST_EXPOSED", "ARMPITS_EXPOSED"})
CLASSES = ("explicit", "suggestive", "none")
MODEL_NAME = "nudity"
INPUT = 320
MIN_SCORE, NMS_SCORE, NMS_IOU = 0.2, 0.25, 0.45  # NudeNet's own thresholds
#: how to install the model (onnxruntime via the extra; the wheel --no-deps: its opencv is not needed)
INSTALL = "pip install 'labelstream[nudity]' && pip install --no-deps nudenet==3.4.2"


class ModelUnavailable(RuntimeError):
    """The nudity model is not installed on this worker (an optional, AGPL-3.0 licensed extra).

    >>> str(ModelUnavailable("onnxruntime is not installed"))[:60]
    "the built-in model 'nudity' is not installed on this worker "
    """

    def __init__(self, why: str):
        super().__init__(f"the built-in model 'nudity' is not installed on this worker ({why}); it is an optional "
                         f"extra under AGPL-3.0 (README: Licences): {INSTALL}")


def heads(detections: list[dict[str, Any]]) -> dict[str, float]:
    """The three classes for one frame's detections (see the module docstring)."""
    e = max((d["score"] for d in detections if d["class"] in EXPLICIT), default=0.0)
    s = max((d["score"] for d in detections if d["class"] in SUGGESTIVE), default=0.0)
    explicit = round(float(e), 6)
    suggestive = round((1.0 - explicit) * float(s), 6)
    return {"explicit": explicit, "suggestive": suggestive, "none": round(1.0 - explicit - suggestive, 6)}


def nms(boxes: np.ndarray, scores: np.ndarray, score_min: float, iou_max: float) -> list[int]:
    """Greedy non-maximum suppression over ``(n, 4)`` ``[x, y, w, h]`` boxes, class-agnostic like
    OpenCV's ``NMSBoxes`` that NudeNet uses. Indices kept, best first.

    >>> nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 5, 5]], float), np.array([0.9, 0.8, 0.3]), 0.25, 0.45)
    [0, 2]
    """
    idx = [i for i in np.argsort(-scores, kind="stable").tolist() if scores[i] >= score_min]
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    area = boxes[:, 2] * boxes[:, 3]
    keep: list[int] = []
    while idx:
        i = idx.pop(0)
        keep.append(i)
        if not idx:
            break
        rest = np.array(idx)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        idx = [j for j, o in zip(idx, iou.tolist()) if o <= iou_max]
    return keep


def model_version() -> str:
    from importlib.metadata import version

    return f"nudenet-{version('nudenet')}/320n"


class NudityModel:
    """NudeNet's detector. ``detect`` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: str | None = None, threads: int = 1):
        """Raises :class:`ModelUnavailable` without onnxruntime or the nudenet wheel's model file."""
        try:
            import onnxruntime
        except ImportError:
            raise ModelUnavailable("onnxruntime is not installed") from None
        if path is None:
            import importlib.util

            spec = importlib.util.find_spec("nudenet")
            if spec is None or spec.origin is None:
                raise ModelUnavailable("the nudenet wheel is not installed")
            path = os.path.join(os.path.dirname(spec.origin), "320n.onnx")
        if not os.path.isfile(path):
            raise ModelUnavailable(f"no model file at {path}")
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads  # the classify pool runs frames in parallel: one thread each
        opts.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.version = model_version()

    @staticmethod
    def preprocess(rgb: np.ndarray) -> tuple[np.ndarray, int]:
        """Pad to a square (bottom/right, black), resize to 320, scale to [0, 1], CHW: NudeNet's own
        preprocessing. Returns the blob and the padded side (to map boxes back)."""
        from PIL import Image

        h, w = rgb.shape[:2]
        side = max(h, w)
        sq = np.zeros((side, side, 3), np.uint8)
        sq[:h, :w] = rgb
        small = np.asarray(Image.fromarray(sq).resize((INPUT, INPUT), Image.Resampling.BILINEAR), np.float32)
        return (small / 255.0).transpose(2, 0, 1)[None], side

    def detect(self, frames: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        """Detections per frame: ``{"class", "score", "box": [x, y, w, h]}`` in the frame's pixels."""
        if not frames:
            return []
        blobs, sides = zip(*(self.preprocess(f) for f in frames))
        out = self.session.run(None, {self.input: np.concatenate(blobs)})[0]  # (n, 22, 2100)
        return [self._post(out[i].T, sides[i], frames[i].shape[1], frames[i].shape[0]) for i in range(len(frames))]

    @staticmethod
    def _post(rows: np.ndarray, side: int, width: int, height: int) -> list[dict[str, Any]]:
        scores_all = rows[:, 4:]
        cls = scores_all.argmax(axis=1)
        score = scores_all.max(axis=1)
        sel = np.flatnonzero(score >= MIN_SCORE)
        if len(sel) == 0:
            return []
        cx, cy, bw, bh = (rows[sel, k] * side / INPUT for k in range(4))
        x = np.clip(cx - bw / 2, 0, width)
        y = np.clip(cy - bh / 2, 0, height)
        w = np.minimum(bw, width - x)
        h = np.minimum(bh, height - y)
        boxes = np.stack([x, y, w, h], axis=1)
        out = []
        for i in nms(boxes, score[sel], NMS_SCORE, NMS_IOU):
            out.append({"class": LABELS[int(cls[sel[i]])], "score": round(float(score[sel[i]]), 4),
                        "box": [int(v) for v in boxes[i]]})
        return out


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _model() -> NudityModel:
    return NudityModel()


def get_model() -> NudityModel:
    """The worker's one model, loaded on first use (about 0.2 s). Raises :class:`ModelUnavailable`
    when it is not installed (not cached: installing it does not need more than a restart anyway)."""
    with _lock:
        return _model()
