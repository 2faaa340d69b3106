"""Index build time, peak RSS and recall@10 of the worker's own kNN index at 100k and 1M x 384-d.

Uses the production path: ``KnnIndexes(Settings())`` (so the Annoy knobs are the worker's:
``IndexSettings`` defaults n_trees 32, search_k 10,000, fetch_factor 10, build_jobs 1, unless
``LABELSTREAM_ANNOY_*`` say otherwise), examples upserted one by one as the training replica
does, then ONE build through ``Builder.build_now`` (capture → Annoy ``add_item`` + ``build`` →
versioned snapshot file → mmap → swap), the same code the background scheduler runs. Automatic
builds are off while loading so the figure is one build of N vectors, not a series of
growing ones. Then it serves: ``search(k=10)`` on held-out queries, compared with exact cosine
search over the same vectors (recall@10), and queries/s.

Each size runs in its own child process so peak RSS (``ru_maxrss``) belongs to that size.
Data: the knn-large workload's distribution (50 centres, N(0, 1.5²) noise per dimension).

    .venv/bin/python bench/index_build.py --sizes 100000 1000000 --write
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import measure  # noqa: E402  (bench/measure.py)

SECTION = "## Index build at scale"
DIM, LABELS = 384, 50


def timed(name: str, fn, record):
    """``fn`` wrapped to call ``record(name, start, end)`` (perf_counter s) after each call: a
    phase timer around the index's own functions (also used by ``bench/build_lag.py``)."""
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            record(name, t0, time.perf_counter())
    return wrapper

def data(n: int, seed: int = 5, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 vectors around 50 centres (chunked: no float64 copy of the whole set).

    >>> x, lab = data(5, chunk=2); x.shape, x.dtype.name, lab.shape
    ((5, 384), 'float32', (5,))
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(LABELS, DIM)).astype(np.float32)
    lab = rng.integers(0, LABELS, n)
    x = np.empty((n, DIM), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x[s:e] = centres[lab[s:e]] + 1.5 * rng.standard_normal((e - s, DIM), dtype=np.float32)
    return x, lab


def exact_topk(q: np.ndarray, x: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """Row indices of the ``k`` most cosine-similar rows of ``x`` per query, best first.

    >>> x = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    >>> exact_topk(np.array([[1, 0.1]], np.float32), x, 2, chunk=2).tolist()
    [[0, 2]]
    """
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    best_s = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for s in range(0, len(x), chunk):
        xc = x[s: s + chunk]
        sims = qn @ (xc / np.linalg.norm(xc, axis=1, keepdims=True)).T
        top = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(sims, top, 1)], axis=1)
        best_i = np.concatenate([best_i, top + s], axis=1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i


def recall(found: list[list[str]], exact: np.ndarray) -> float:
    """Share of the exact top-k ids found, over all queries.

    >>> recall([["ex-0", "ex-2"], ["ex-5", "ex-1"]], np.array([[0, 1], [1, 5]]))
    0.75
    """
    hits = sum(len({f"ex-{j}" for j in row} & set(f)) for f, row in zip(found, exact.tolist()))
    return hits / exact.size


def one(n: int, queries: int, k: int, search_ks: list[int]) -> dict:
    """Load, build once, serve; the figures of one size (run in a child process)."""
    from app.index import files
    from app.index.knn import KnnIndexes
    from app.index.manager import Example
    from app.settings import Settings

    t = time.perf_counter()
    x, lab = data(n + queries)
    q, x, lab = x[n:], x[:n], lab[:n]
    gen_s = time.perf_counter() - t
    out: dict = {"n": n, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        idx = KnnIndexes(Settings(data_dir=Path(tmp)))
        m = idx.manager
        m.settings = replace(m.settings, auto_build=False)  # one build of N, timed below
        out["settings"] = {k: getattr(m.settings, k) for k in ("kind", "n_trees", "search_k", "fetch_factor",
                                                               "build_jobs", "exact_threshold")}
        t = time.perf_counter()
        for i in range(n):
            idx.upsert(Example(f"ex-{i}", "Doc", x[i], {}, {"topic": f"t{lab[i]}"}))
        out["upsert_s"] = time.perf_counter() - t
        ix = m.get("Doc", "topic")
        assert ix is not None
        phases: dict[str, float] = {}

        def add(name: str, t0: float, t1: float) -> None:
            phases[name] = phases.get(name, 0.0) + t1 - t0

        ix.make_forest = timed("forest (add_item + build)", ix.make_forest, add)  # type: ignore[method-assign]
        write, load = files.write_snapshot, files.load_annoy
        files.write_snapshot = timed("write snapshot", write, add)
        files.load_annoy = timed("mmap load", load, add)
        cpu0, t = time.process_time(), time.perf_counter()
        version = ix.build_now()
        out["build_s"], out["build_cpu_s"] = time.perf_counter() - t, time.process_time() - cpu0
        files.write_snapshot, files.load_annoy = write, load
        out["phases"] = phases
        out["version"] = version
        out["ann_mib"] = sum(p.stat().st_size for p in Path(tmp).rglob("*.ann")) / 2**20
        out["rss_after_build_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        exact = exact_topk(q, x, k)
        t = time.perf_counter()
        res = ix.search(q, k)
        out["qps"] = queries / (time.perf_counter() - t)
        out["paths"] = {p: c for p, c in ix.counters.items() if c}
        if ix.kind == "ivf":  # the cells it scans, as calibrated by the build
            out["paths"]["nprobe"] = ix._built.forest.nprobe  # type: ignore[union-attr]  # noqa: SLF001
        out["recall"] = recall(res.ids, exact)
        out["sweep"] = []  # (search_k, recall@k, queries/s): what the production default leaves
        for sk in search_ks:
            ix.search_k = sk
            t = time.perf_counter()
            res = ix.search(q, k)
            out["sweep"].append((sk, recall(res.ids, exact), queries / (time.perf_counter() - t)))
        idx.close()
    out["gen_s"] = gen_s
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_after"] = os.getloadavg()[0]
    return out


def row(r: dict) -> str:
    ph = r["phases"]
    return (f"| {r['n']:,} | {r['upsert_s']:.1f} | {r['build_s']:.1f} | {r['build_cpu_s']:.1f} "
            f"| {ph.get('forest (add_item + build)', 0):.1f} | {ph.get('write snapshot', 0):.1f} "
            f"| {r['ann_mib']:,.0f} | {r['peak_rss_mib']:,.0f} | {r['recall']:.4f} | {r['qps']:,.0f} "
            f"| {r['paths']} | {r['load_before']:.1f} / {r['load_after']:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--search-k", type=int, nargs="*", default=[],
                    help="after the build, also measure recall and queries/s at these Annoy search_k values")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true", help="write the section of bench/RESULTS.md")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(one(a.child, a.queries, a.k, a.search_k)))
        return 0
    rows = []
    for n in a.sizes:
        p = subprocess.run([sys.executable, __file__, "--child", str(n), "--queries", str(a.queries),
                            "--k", str(a.k), "--search-k", *map(str, a.search_k)], capture_output=True, text=True, cwd=ROOT)
        if p.returncode:
            print(p.stderr, file=sys.stderr)
            return 1
        r = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(json.dumps(r), flush=True)
    lines = ["| examples | upsert s | build s (wall) | build CPU s | forest s | write s | .ann MiB "
             "| peak RSS MiB | recall@10 vs exact | queries/s | query paths | load avg before / after |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|", *map(row, rows), "",
             f"384-d float32, {a.queries} held-out queries, k={a.k}, cosine; settings {rows[0]['settings']} "
             "(the worker's defaults). upsert = the examples one by one into KnnIndexes (what the training "
             "replica does); build = one `build_now` (capture, Annoy add_item + build on one thread "
             "into the snapshot file, sidecar written, fsynced, renamed, mmapped, swapped in); peak RSS = the child process's ru_maxrss (vectors "
             "generated in it, the store, Annoy's build heap). 2 CPUs shared with other benchmarks.",
             *[f"- {r['n']:,}: at search_k {sk:,}: recall@{a.k} {rc:.4f}, {qps:,.0f} queries/s"
               for r in rows for sk, rc, qps in r["sweep"]],
             "", f"Command: `{measure.env_prefix()}.venv/bin/python bench/index_build.py --sizes {' '.join(map(str, a.sizes))}"
             + (f" --search-k {' '.join(map(str, a.search_k))}" if a.search_k else "") + (" --write" if a.write else "") + "`"]
    body = "\n".join(lines)
    print(body)
    if a.write:
        import results
        results.write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
