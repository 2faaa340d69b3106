"""What the end-to-end benchmark sends: training records and events of each workload, pre-encoded.

Every workload is deterministic (fixed seeds) and its events are JSON bytes ready to produce,
so the producer spends no time encoding while it is measured or paced.

- ``knn-small``: the sample kNN classifier (60 examples, 16-d, k=5) and sample articles;
- ``zeroshot``: a taxonomy of 100 classes x 5 prompts with 384-d prompt vectors (vectorizer
  ``none``), objects carrying 384-d base64 float32 vectors;
- ``media``: the same taxonomy behind a media classifier, videos of 60 one-second segments
  (20 s x the 3 options), 384-d base64 vectors;
- ``knn-large``: ``examples`` 384-d training vectors around 50 labelled centres, objects near them.

    >>> w = WORKLOADS["knn-small"]()
    >>> len(w.training), w.topic, w.events(2, "run")[0][0]
    (61, 'objects', b'run-0')
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.devtools import samples  # noqa: E402
from app.schemas.vectors import encode_vector  # noqa: E402

DIM = 384
Pair = tuple[bytes, bytes]


@dataclass
class Workload:
    name: str
    topic: str  # the input topic (catalog name)
    training: list[tuple[str, dict]]
    make: Callable[[int, str], list[Pair]]  # (n, run) -> (key, value) pairs, keys f"{run}-{i}"
    about: str
    extra: dict = field(default_factory=dict)  # what a workload keeps for its own checks (knn-large: vectors)

    def events(self, n: int, run: str) -> list[Pair]:
        return self.make(n, run)


def _seed(run: str) -> int:
    return zlib.crc32(run.encode())  # not hash(): that one changes with every process


def _pairs(items: list[tuple[str, dict]]) -> list[Pair]:
    return [(k.encode(), orjson.dumps(v)) for k, v in items]


def knn_small() -> Workload:
    def make(n: int, run: str) -> list[Pair]:
        return _pairs([(f"{run}-{i}", {**v, "id": f"{run}-{i}"}) for i, (_, v, _) in enumerate(samples.objects(n, run=run))])
    return Workload("knn-small", "objects", samples.training_records(), make,
                    "kNN k=5 over 60 examples, 16-d (the sample classifier)")


def _prompt_vectors(classes: int = 100, prompts: int = 5, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(classes, prompts, DIM)).astype(np.float32)


def _taxonomy(pv: np.ndarray, name: str = "bench-tax") -> dict:
    return {"record": "taxonomy", "name": name, "version": 1, "vectorizer": "none",
            "classes": [{"name": f"class{i}", "prompts": [f"class {i} prompt {j}" for j in range(pv.shape[1])],
                         "prompt_vectors": pv[i].tolist()} for i in range(pv.shape[0])]}


def _near(pv: np.ndarray, rng: np.random.Generator, n: int, noise: float = 0.8) -> np.ndarray:
    """n vectors, each a random prompt's vector plus noise (so the nearest class is not arbitrary)."""
    flat = pv.reshape(-1, pv.shape[-1])
    return (flat[rng.integers(0, len(flat), n)] + noise * rng.normal(size=(n, pv.shape[-1]))).astype(np.float32)


def zeroshot() -> Workload:
    pv = _prompt_vectors()
    clf = {"record": "classifier", "name": "bench-zs", "type": "zeroshot", "class": "Comment",
           "classifyProperties": ["topic"], "taxonomies": ["bench-tax"]}

    def make(n: int, run: str) -> list[Pair]:
        vecs = _near(pv, np.random.default_rng(_seed(run)), n)
        return _pairs([(f"{run}-{i}", {"id": f"{run}-{i}", "class": "Comment", "vector": encode_vector(v)})
                       for i, v in enumerate(vecs)])
    return Workload("zeroshot", "objects", [("taxonomy:bench-tax", _taxonomy(pv)), ("classifier:bench-zs", clf)],
                    make, "zero-shot, 100 classes x 5 prompts, 384-d vectors in the events (base64 float32)")


SECONDS, OPTIONS = 20, ("visual", "conversation", "text_in_video")


def media() -> Workload:
    pv = _prompt_vectors()
    clf = {"record": "classifier", "name": "bench-media", "type": "media", "taxonomies": ["bench-tax"],
           "media": {"options": list(OPTIONS), "output": "both"}}

    def make(n: int, run: str) -> list[Pair]:
        rng = np.random.default_rng(_seed(run))
        out = []
        for i in range(n):
            vecs = _near(pv, rng, SECONDS * len(OPTIONS))
            segs = [{"start": float(s), "end": float(s + 1), "option": o,
                     "vector": encode_vector(vecs[j * SECONDS + s])}
                    for j, o in enumerate(OPTIONS) for s in range(SECONDS)]
            mid = f"{run}-{i}"
            out.append((mid, {"media_id": mid, "index_id": "bench", "kind": "video", "mimetype": "video/mp4",
                              "duration": float(SECONDS), "segments": segs}))
        return _pairs(out)
    return Workload("media", "media", [("taxonomy:bench-tax", _taxonomy(pv)), ("classifier:bench-media", clf)],
                    make, f"videos of {SECONDS * len(OPTIONS)} segments ({SECONDS} s x 3 options), 384-d, "
                    "the 100 x 5 taxonomy, Twelve Labs + Hive output")


def knn_large(examples: int = 100_000, k: int = 5, labels: int = 50) -> Workload:
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(labels, DIM)).astype(np.float32)
    lab = rng.integers(0, labels, examples)
    train = (centres[lab] + 1.5 * rng.normal(size=(examples, DIM))).astype(np.float32)
    training: list[tuple[str, dict]] = [
        (f"ex-{i}", {"record": "example", "id": f"ex-{i}", "class": "Doc", "vector": encode_vector(train[i]),
                     "properties": {}, "labels": {"topic": f"t{lab[i]}"}}) for i in range(examples)]
    training.append(("classifier:bench-large", {"record": "classifier", "name": "bench-large", "type": "knn",
                                                "class": "Doc", "classifyProperties": ["topic"],
                                                "basedOnProperties": ["body"], "settings": {"k": k}}))
    queries: dict[str, np.ndarray] = {}

    def make(n: int, run: str) -> list[Pair]:
        r = np.random.default_rng(_seed(run))
        vecs = (centres[r.integers(0, labels, n)] + 1.5 * r.normal(size=(n, DIM))).astype(np.float32)
        items = []
        for i, v in enumerate(vecs):
            queries[f"{run}-{i}"] = v
            items.append((f"{run}-{i}", {"id": f"{run}-{i}", "class": "Doc", "vector": encode_vector(v)}))
        return _pairs(items)
    return Workload("knn-large", "objects", training, make,
                    f"kNN k={k} over {examples:,} examples, 384-d (Annoy + exact overlay)",
                    extra={"train": train, "queries": queries, "k": k})


WORKLOADS: dict[str, Callable[[], Workload]] = {"knn-small": knn_small, "zeroshot": zeroshot, "media": media,
                                                "knn-large": knn_large}
