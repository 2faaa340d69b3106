"""recall@k of a worker's kNN results against exact cosine search over the same training vectors.

    >>> import numpy as np, orjson
    >>> train = np.eye(4, dtype=np.float32)
    >>> res = {b"q-0": orjson.dumps({"detail": {"knn": {"topic": {"neighbours": [{"id": "ex-0"}, {"id": "ex-3"}]}}}})}
    >>> check(res, {"train": train, "queries": {"q-0": np.array([1, 0.1, 0, 0.2], np.float32)}, "k": 2})
    'recall@2 vs exact 1.0000 over 1 results'
"""

from __future__ import annotations

import numpy as np
import orjson


def neighbour_ids(value: bytes) -> list[str]:
    knn = orjson.loads(value).get("detail", {}).get("knn", {})
    return [n["id"] for prop in knn.values() for n in prop.get("neighbours", [])]


def check(values: dict[bytes, bytes], extra: dict, sample: int = 1000) -> str:
    train, queries, k = extra["train"], extra["queries"], extra["k"]
    keys = [key for key in values if key.decode() in queries][:sample]
    if not keys:
        return "recall: no results to check"
    unit = train / np.linalg.norm(train, axis=1, keepdims=True)
    q = np.stack([queries[key.decode()] for key in keys])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact = np.argsort(-(q @ unit.T), axis=1)[:, :k]
    hits = sum(len({f"ex-{j}" for j in row} & set(neighbour_ids(values[key]))) for key, row in zip(keys, exact))
    return f"recall@{k} vs exact {hits / (k * len(keys)):.4f} over {len(keys):,} results"
