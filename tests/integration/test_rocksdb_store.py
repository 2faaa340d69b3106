"""The RocksDB table store (``LABELSTREAM_STORE=rocksdb://``) with a real worker and broker:
tables are written to disk, and a restarted worker on the same data directory has them back:
the stored objects and the chunks of a media item that was waiting, which it then completes.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.devtools import samples
from app.schemas.vectors import encode_vector
from tests.integration.test_bounded_state import tables_until
from tests.integration.test_media import CLASSIFIER, prompt_vectors, taxonomy

pytestmark = pytest.mark.kafka

N = 300
ROCKSDB = {"LABELSTREAM_STORE": "rocksdb://"}


async def test_rocksdb_tables_survive_a_worker_restart(stack):
    w = stack.worker("w", **ROCKSDB)
    pv = prompt_vectors(np.random.default_rng(5))
    training = [*samples.training_records(), ("taxonomy:genres", taxonomy(pv)), ("classifier:genre", CLASSIFIER)]
    await stack.produce("training", training)
    await stack.wait_ready(w, min_training=len(training))

    objs = samples.objects(N, run="rocks")
    await stack.produce("objects", [(k, v) for k, v, _ in objs])
    got = await stack.collect("results", N, timeout=60)
    assert len(got) == N, w.tail()
    expected = {k: label for k, _, label in objs}
    assert sum(v["labels"] == {"topic": expected[v["item_id"]]} for _, v in got) > 0.9 * N, "classified"

    segs = [{"start": s, "end": s + 1, "option": "visual", "vector": encode_vector(pv[s % 3, 0])} for s in range(3)]

    def chunk(seq: int) -> tuple[str, dict]:
        return ("vid", {"media_id": "vid", "index_id": "idx", "kind": "video", "duration": 3,
                        "chunk": {"seq": seq, "final": seq == 2}, "segments": [segs[seq]]})
    await stack.produce("media", [chunk(0), chunk(1)])  # waits for chunk 2
    await tables_until(w, lambda t: t["stored-objects"] == N and t["media-assembly"] == 3, timeout=30)
    assert list((stack.root / "w").rglob("stored-objects-*.db")), "the tables are on disk (RocksDB)"
    assert w.stop() == 0, w.tail()

    w2 = stack.worker("w", **ROCKSDB)  # same data directory
    health = await stack.wait_ready(w2, min_training=len(training))
    tables = health["tables"]
    assert tables["stored-objects"] == N and tables["media-assembly"] == 3, tables
    assert tables["training"] == len(training), tables

    await stack.produce("media", [chunk(2)])  # completes the item from the two recovered chunks
    [(_, r)] = await stack.collect("results", 1, timeout=30, where=lambda k, v: v["item_id"] == "vid")
    assert r["detail"]["segments"] == 3 and r["detail"]["duration"] == 3, r
    await tables_until(w2, lambda t: t["media-assembly"] == 1, timeout=30)  # the done marker
    assert w2.health()["agent_restarts"] == 0, w2.tail()
