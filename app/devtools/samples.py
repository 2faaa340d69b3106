"""Sample events for the demo and the tests: articles whose topic a kNN classifier learns.

Three topics, each a cluster in a 16-d space; training examples and objects are drawn
around the same centres with a fixed seed, so the demo prints the same results each run.

    >>> keys = [k for k, _ in training_records(per_label=2)]
    >>> keys[:2], keys[-1]
    (['ex-sport-0', 'ex-sport-1'], 'classifier:article-topic')
"""

from __future__ import annotations

import numpy as np

from app.schemas.vectors import encode_vector

LABELS = ("sport", "politics", "science")
DIM = 16
CLASS = "Article"
CLASSIFIER = "article-topic"


def centres(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(len(LABELS), DIM)).astype(np.float32)


def classifier(k: int = 5, name: str = CLASSIFIER, **extra) -> dict:
    return {"record": "classifier", "name": name, "type": "knn", "class": CLASS,
            "classifyProperties": ["topic"], "basedOnProperties": ["body"], "settings": {"k": k}, **extra}


def example(ex_id: str, vector, label: str, **props) -> dict:
    return {"record": "example", "id": ex_id, "class": CLASS, "vector": encode_vector(vector),
            "properties": props, "labels": {"topic": label}}


def training_records(per_label: int = 20, seed: int = 7, noise: float = 0.35) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(seed + 1)
    c = centres(seed)
    out = []
    for li, label in enumerate(LABELS):
        for j in range(per_label):
            out.append((f"ex-{label}-{j}", example(f"ex-{label}-{j}", c[li] + noise * rng.normal(size=DIM), label)))
    out.append((f"classifier:{CLASSIFIER}", classifier()))
    return out


def objects(n: int, run: str = "demo", seed: int = 7, noise: float = 0.35) -> list[tuple[str, dict, str]]:
    """``(key, event, expected label)`` for n objects."""
    rng = np.random.default_rng(seed + 2)
    c = centres(seed)
    out = []
    for i in range(n):
        li = i % len(LABELS)
        oid = f"{run}-obj-{i}"
        vec = c[li] + noise * rng.normal(size=DIM)
        out.append((oid, {"id": oid, "class": CLASS, "properties": {"title": f"article {i}"},
                          "vector": encode_vector(vec)}, LABELS[li]))
    return out


# -- zero-shot: comments moderated against a prompt taxonomy (built-in hashing vectorizer) --
COMMENT_TAXONOMY = {
    "record": "taxonomy", "name": "comment-tone", "version": 1, "vectorizer": "hashing",
    "classes": [
        {"name": "friendly", "prompts": ["thank you so much", "great work, well done", "have a nice day"]},
        {"name": "toxic", "prompts": ["you are an idiot", "I hate you", "shut up, loser"]},
        {"name": "spam", "prompts": ["buy cheap pills online", "click this link to win money"]},
    ],
    "policies": [{"action": "block", "classes": ["toxic"], "min_score": 0.8},
                 {"action": "review", "classes": ["toxic", "spam"], "min_score": 0.5}],
}
COMMENT_CLASSIFIER = {"record": "classifier", "name": "comment-tone", "type": "zeroshot", "class": "Comment",
                      "classifyProperties": ["tone"], "taxonomies": ["comment-tone"]}
COMMENTS = [
    ("Thank you so much, great work on this!", "friendly"),
    ("Shut up, you are an idiot", "toxic"),
    ("Click this link to win free money", "spam"),
    ("Have a nice day, well done everyone", "friendly"),
]


def comment_records() -> list[tuple[str, dict]]:
    return [("taxonomy:comment-tone", COMMENT_TAXONOMY), ("classifier:comment-tone", COMMENT_CLASSIFIER)]


def comments(run: str = "demo") -> list[tuple[str, dict, str]]:
    return [(f"{run}-comment-{i}", {"id": f"{run}-comment-{i}", "class": "Comment", "text": text}, want)
            for i, (text, want) in enumerate(COMMENTS)]


# -- media core: a two-hour video (bench/media_core.py measures it, tests/unit/test_media.py checks it) --
def long_video(n_t: int = 7200, d: int = 256):
    """``(segments, classes)``: ``n_t`` one-second segments x 3 options, ``d``-d vectors, text on every
    segment; 10 classes x 3 prompts, the first with an ``exact_match`` conversation option."""
    from app.core.media import MediaClass
    from app.core.segments import SegmentArrays

    rng = np.random.default_rng(7)
    opts = np.repeat(np.array(["visual", "conversation", "text_in_video"])[None], n_t, 0).ravel()
    vecs = rng.standard_normal((3 * n_t, d)).astype(np.float32)
    segs = SegmentArrays.from_segments([
        {"start": float(i // 3), "end": float(i // 3 + 1), "option": str(opts[i]), "vector": vecs[i],
         "text": "a cooking tutorial", "thumbnail_url": f"https://t/{i // 3}.jpg"} for i in range(3 * n_t)])
    q = rng.standard_normal((30, d))
    classes = [MediaClass(f"c{k}", [f"p{k}a", f"p{k}b", "cooking tutorial"], q[3 * k: 3 * k + 3],
                          conversation_option="exact_match" if k == 0 else None) for k in range(10)]
    return segs, classes
