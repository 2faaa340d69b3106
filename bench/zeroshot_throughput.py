"""Throughput of the pure zero-shot scoring core: one matrix product per batch vs per event.

1,000 random events against 100 classes x 5 prompts (d = 384), flat and hierarchical
(10 categories x 10 subcategories); best of ``--repeat`` runs; prints a markdown table and,
with ``--write``, replaces the ``## Zero-shot scoring throughput`` section of bench/RESULTS.md
(other sections are left as they are).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/zeroshot_throughput.py --write
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402  (bench/results.py)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.taxonomy import compile_taxonomy  # noqa: E402
from app.core.zeroshot import nearest, score  # noqa: E402
from app.schemas.taxonomy import Taxonomy  # noqa: E402

SECTION = "## Zero-shot scoring throughput"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def make_taxonomy(rng: np.random.Generator, classes: int, prompts: int, dim: int, tree: bool) -> Taxonomy:
    cats = 10
    out = []
    if tree:
        out += [{"name": f"cat{j}", "prompts": []} for j in range(cats)]
    for i in range(classes):
        out.append({
            "name": f"class{i}",
            "prompts": [f"class {i} prompt {k}" for k in range(prompts)],
            "prompt_vectors": rng.normal(size=(prompts, dim)).tolist(),
            "parent": f"cat{i % cats}" if tree else None,
        })
    return Taxonomy(name="bench", version=1, vectorizer="none", classes=out)


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(events: int, classes: int, prompts: int, dim: int, repeat: int) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(events, dim)).astype(np.float32)
    rows = []
    for label, tree in (("flat", False), ("hierarchical 10x10", True)):
        ct = compile_taxonomy(make_taxonomy(rng, classes, prompts, dim, tree), max_prompts=classes * prompts)
        score(X[:10], ct)  # warm-up

        def batched(ct=ct):
            nearest(score(X, ct))

        def single(ct=ct):
            for i in range(events):
                nearest(score(X[i : i + 1], ct))

        b, s = best_of(batched, repeat), best_of(single, repeat)
        rows.append((label, events / b, events / s))
    return rows


def table(rows, events: int, classes: int, prompts: int, dim: int) -> str:
    lines = [
        f"{events:,} events x {classes} classes x {prompts} prompts, d = {dim}; `score()` + `nearest()` "
        "(all class similarities, probabilities, matched prompts, winner).",
        "",
        "| taxonomy | batched (events/s) | one at a time (events/s) | batched / single |",
        "|---|---:|---:|---:|",
    ]
    for label, b, s in rows:
        lines.append(f"| {label} | {b:,.0f} | {s:,.0f} | {b / s:.1f}x |")
    return "\n".join(lines)


def write_section(body: str) -> None:
    results.write_section(SECTION, body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--prompts", type=int, default=5)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    a = ap.parse_args()
    rows = run(a.events, a.classes, a.prompts, a.dim, a.repeat)
    body = table(rows, a.events, a.classes, a.prompts, a.dim)
    env = (f"Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
           f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, best of {a.repeat} runs, "
           f"load average {os.getloadavg()[0]:.1f} while measuring (shared machine: figures are a floor).")
    cmd = "Command: `OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/zeroshot_throughput.py --write`"
    body = f"{body}\n\n{env}\n{cmd}"
    print(body)
    if a.write:
        write_section(body)


if __name__ == "__main__":
    main()
