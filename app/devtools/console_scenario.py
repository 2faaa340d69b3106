"""Records for the console's browser test and its README screenshots: comments scored against a
``tone`` taxonomy whose policy sends borderline ones to review, and a kNN classifier on the same
class that learns from reviewers' verdicts (``feedback.learn``, one verdict of ``lead`` suffices).

    >>> round(toxic_probability(review_vector(0)), 2)
    0.57
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.schemas.vectors import encode_vector

E = np.eye(4)
TEMPERATURE = 0.05
TAXONOMY = {"record": "taxonomy", "name": "tone", "version": 1, "vectorizer": "none", "temperature": TEMPERATURE,
            "classes": [{"name": "calm", "prompts": ["a calm remark"], "prompt_vectors": [E[0].tolist()]},
                        {"name": "toxic", "prompts": ["an insult"], "prompt_vectors": [E[1].tolist()]}],
            "policies": [{"action": "block", "classes": ["toxic"], "min_score": 0.9},
                         {"action": "review", "classes": ["toxic"], "min_score": 0.5}]}
ZEROSHOT = {"record": "classifier", "name": "tone", "type": "zeroshot", "class": "Comment",
            "classifyProperties": ["tone"], "taxonomies": ["tone"]}
KNN = {"record": "classifier", "name": "tone-knn", "type": "knn", "class": "Comment", "classifyProperties": ["tone"],
       "settings": {"k": 1}, "feedback": {"learn": True, "min_agreeing": 2, "trusted_reviewers": ["lead"]}}
MEDIA = {"record": "classifier", "name": "clip-tone", "type": "media", "taxonomies": ["tone"],
         "media": {"include_clips": True, "output": "both"}}
# Weaviate's schema declaration of the class, for the jobs page (a kNN job classifies a cross-reference)
CLASS = {"record": "class", "class": "Comment", "properties": [{"name": "text", "dataType": ["text"]},
                                                               {"name": "tone", "dataType": ["Tone"]}]}
SEED = {"record": "example", "id": "seed-calm", "class": "Comment", "vector": E[0].tolist(), "labels": {"tone": "calm"}}


def training() -> list[tuple[str, dict[str, Any]]]:
    return [("taxonomy:tone", TAXONOMY), ("classifier:tone", ZEROSHOT), ("classifier:tone-knn", KNN),
            ("classifier:clip-tone", MEDIA), ("class:Comment", CLASS), ("seed-calm", SEED)]


def video(media_id: str) -> tuple[str, dict[str, Any]]:
    """20 s: calm for 8 s, toxic for 8 s, calm again: one toxic clip in the middle."""
    segs = [{"start": t, "end": t + 2, "option": "visual",
             "vector": (E[1] if 8 <= t < 16 else E[0]).tolist()} for t in range(0, 20, 2)]
    return media_id, {"media_id": media_id, "kind": "video", "duration": 20, "segments": segs}


def review_vector(i: int) -> np.ndarray:
    """Slightly more toxic than calm (a review, not a block); each item a little apart."""
    return E[0] + 1.02 * E[1] + 0.02 * ((i % 7) - 3) * E[2] + 0.001 * i * E[3]


def calm_vector(i: int) -> np.ndarray:
    return E[0] + 0.1 * E[1] + 0.001 * i * E[3]


def comment(item_id: str, v: np.ndarray) -> tuple[str, dict[str, Any]]:
    return item_id, {"id": item_id, "class": "Comment", "properties": {"text": f"comment {item_id}"},
                     "vector": encode_vector(np.asarray(v, dtype=np.float32))}


def toxic_probability(v: np.ndarray) -> float:
    """The taxonomy's softmax at its temperature over the cosine similarities to the two prompts."""
    cos = np.array([v @ E[0], v @ E[1]]) / np.linalg.norm(v)
    p = np.exp(cos / TEMPERATURE - (cos / TEMPERATURE).max())
    return float(p[1] / p.sum())


def window_fill(results: int, review_every: int = 5, dead: int = 20, video_at: float = 0.4) -> list[tuple[str, str, Any]]:
    """``(topic, key, value)`` records whose results fill a console window of ``results``: comments
    (2 results each: zero-shot ``tone`` and kNN ``tone-knn``; every ``review_every``-th a review item)
    10 % beyond the window, so the oldest fall out; ``dead`` records that are not JSON (dead letters);
    one video (``fill-video``) after ``video_at`` of the comments, older than the newest thousand results.

    >>> recs = window_fill(1000, dead=2)
    >>> len(recs), sum(1 for t, _, _ in recs if t == "media"), recs[-1][1]
    (553, 1, 'fill-549')
    """
    n = results * 11 // 20
    out: list[tuple[str, str, Any]] = []
    for i in range(n):
        if i == int(n * video_at):
            out.append(("media", *video("fill-video")))
        v = review_vector(i) if i % review_every == 0 else calm_vector(i)
        out.append(("objects", *comment(f"fill-{i}", v)))
    out += [("objects", f"fill-bad-{i}", b'{"id": "fill-bad", "class": "Comment"') for i in range(dead)]
    out.append(out.pop(-dead - 1))  # the newest record is a comment
    return out
