"""The CLI's publishing commands against the real broker and a real worker.

``taxonomy push`` and ``examples push`` publish under the training table's keys and the
worker accepts every record (none dead-lettered); ``produce`` sends objects keyed by their id
and they are classified with the pushed taxonomy.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.devtools import samples

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]


def cli(stack, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, **stack.env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


async def test_push_and_produce_reach_the_worker(stack, tmp_path):
    w = stack.worker()
    tax = tmp_path / "tax.json"
    tax.write_text(json.dumps(samples.COMMENT_TAXONOMY))
    examples = [v for k, v in samples.training_records(per_label=3) if not k.startswith("classifier:")]
    ex = tmp_path / "ex.jsonl"
    ex.write_text("".join(json.dumps(e) + "\n" for e in examples))
    comments = samples.comments(run="cli")
    objs = tmp_path / "comments.jsonl"
    objs.write_text("".join(json.dumps(v) + "\n" for _, v, _ in comments))

    prefix = stack.settings.topic_prefix
    assert await asyncio.to_thread(cli, stack, "taxonomy", "push", str(tax)) == (
        f"published 1 taxonomies to {prefix}training")
    assert await asyncio.to_thread(cli, stack, "examples", "push", str(ex)) == (
        f"published {len(examples)} examples to {prefix}training")
    await stack.produce("training", [("classifier:comment-tone", samples.COMMENT_CLASSIFIER)])

    total = len(examples) + 2
    health = await stack.wait_ready(w, min_training=total)
    assert health["taxonomies"] == ["comment-tone"] and health["tables"]["training"] == total
    keys = {k.decode() for k, _ in await stack.collect("training", total, timeout=30)}
    assert keys == {"taxonomy:comment-tone", "classifier:comment-tone"} | {e["id"] for e in examples}

    assert await asyncio.to_thread(cli, stack, "produce", str(objs), "--topic", "objects") == (
        f"published {len(comments)} records to {prefix}objects")
    got = await stack.collect("results", len(comments), timeout=60)
    assert {k.decode(): v["item_id"] for k, v in got} == {c[0]: c[0] for c in comments}  # keyed by id
    assert {v["item_id"]: v["labels"]["tone"] for _, v in got} == {k: want for k, _, want in comments}
    assert not await stack.collect("deadletter", 1, timeout=1)
