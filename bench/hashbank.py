"""Hash-bank lookups at scale: exact multi-index hashing (app/index/hashbank.py) vs Annoy's ``hamming``
metric, recall against brute force at PDQ's threshold (frames/s and the service's lookups/s per worker:
bench/raw_media.py, part of ``make bench``).

    .venv/bin/python bench/hashbank.py [--n 1000000] [--queries 2000] [--write]   (--write: its section of RESULTS.md)

Bank: ``n`` uniformly random 256-bit hashes. Queries: 80 % are bank hashes with 0-31 random bits
flipped (each has at least its source within the threshold), 20 % random hashes (almost surely
nothing within 31 bits). Truth: brute-force popcount over the whole bank. Recall = found
(query, row) pairs within the threshold / true pairs. Lookups/s: one thread, batches of 16 (a video's
frames per call), wall time and CPU time (the machine is shared: CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from app.core.pdq import hamming
from app.index.hashbank import MihIndex

T = 31
SECTION = "## Hash banks (known-content matching) and the nudity model"
NOTES = """
- **Exact multi-index hashing** (`app/index/hashbank.py`, what the service uses) finds every hash within 31 bits
  by construction (pigeonhole over 16 chunks of 16 bits; recall against brute force above), takes upserts and
  deletes live, and builds in seconds per million hashes. Per lookup it reads the 16 x 17 buckets of the
  query's chunks and their one-bit neighbours (~4,200 candidates per query at 1M), drops almost all of them on
  a 128-bit prefix kept contiguously in each chunk's order, and checks the rest in full. Memory: ~350 bytes
  per hash (32 hash + 16 x 4 row ids + 16 x 16 prefix), ~350 MB per million.
- **Annoy `hamming`** needs `search_k` ~1000 for the recall the issue asks (>= 0.99), far slower; at a small
  `search_k` it is fast but misses matches; its build costs several times the CPU and it cannot take an entry
  after `build()` (a rebuild per change). Not used by the service.
- **CPU vs wall**: on a shared machine (the load average is in the command line above) wall-clock rates are a
  fraction of an idle core's; the CPU-time rates are the steadier figure: one worker thread, one core.
- PDQ hashing and NudeNet frames/s, and lookups/s of the service's `HashBanks` as a worker loads them:
  bench/raw_media.py (`make bench`), its own section.
- Bank: uniformly random 256-bit hashes. Real PDQ hashes are less uniform (some buckets fuller): that costs
  the multi-index search candidates, never recall.
"""


def queries(bank: np.ndarray, q: int, rng) -> np.ndarray:
    planted = bank[rng.integers(0, len(bank), int(q * 0.8))].copy()
    bits = np.unpackbits(planted, axis=1)
    for i in range(len(bits)):
        bits[i, rng.choice(256, rng.integers(0, T + 1), replace=False)] ^= 1
    return np.concatenate([np.packbits(bits, axis=1), rng.integers(0, 256, (q - len(planted), 32), dtype=np.uint8)])


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    total = sum(len(t) for t in truth)
    return sum(len(f & t) for f, t in zip(found, truth)) / max(total, 1)


def bench_annoy(bank: np.ndarray, Q: np.ndarray, truth, trees: int, search_ks: list[int], k: int = 10):
    from annoy import AnnoyIndex

    idx = AnnoyIndex(256, "hamming")
    bits = np.unpackbits(bank, axis=1)

    def build():
        for i in range(len(bits)):
            idx.add_item(i, bits[i].tolist())
        idx.build(trees, n_jobs=1)

    _, bw, bc = timed(build)
    rows = []
    qbits = np.unpackbits(Q, axis=1)
    for sk in search_ks:
        def run():
            out = []
            for qb, q in zip(qbits, Q):
                nn = idx.get_nns_by_vector(qb.tolist(), k, search_k=sk)
                d = hamming(bank[nn], q) if nn else np.empty(0)
                out.append({r for r, dd in zip(nn, d.tolist()) if dd <= T})
            return out
        found, w, c = timed(run)
        rows.append((f"Annoy hamming, {trees} trees, search_k {sk}, k {k}", recall(found, truth), len(Q) / w,
                     len(Q) / c, bw, bc))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--annoy-trees", type=int, default=16)
    ap.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    bank = rng.integers(0, 256, (a.n, 32), dtype=np.uint8)
    Q = queries(bank, a.queries, rng)
    load = os.getloadavg()[0]
    truth_q = min(len(Q), 400)
    truth, bw, _ = timed(lambda: [set(np.flatnonzero(hamming(bank, q) <= T).tolist()) for q in Q[:truth_q]])
    brute_qps = truth_q / bw
    mih, mw, mc = timed(lambda: MihIndex(bank))
    found, w, c = timed(lambda: [set(r.tolist()) for i in range(0, len(Q), 16) for r, _ in mih.search(Q[i:i + 16], T)])
    rows = [("brute force (numpy popcount)", 1.0, brute_qps, None, 0.0, 0.0),
            ("exact multi-index hashing, 16 x 16-bit chunks", recall(found[:truth_q], truth), len(Q) / w, len(Q) / c,
             mw, mc)]
    annoy_q = Q[:truth_q]
    rows += bench_annoy(bank, annoy_q, truth, a.annoy_trees, [100, 1000, 10000])
    lines = [f"`.venv/bin/python bench/hashbank.py --n {a.n} --write` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
             f"load average {load:.1f} at start, Python {platform.python_version()}, numpy {np.__version__}; "
             f"{len(Q)} queries, recall against brute force on the first {truth_q}, threshold {T} bits)",
             "", f"{a.n:,} random PDQ hashes in the bank:", "",
             "| method | recall @ <= 31 bits | lookups/s (wall) | lookups/s (CPU) | build s (wall / CPU) |",
             "|---|---:|---:|---:|---:|"]
    for name, rc, qw, qc, b1, b2 in rows:
        lines.append(f"| {name} | {rc:.4f} | {qw:,.0f} | {'-' if qc is None else f'{qc:,.0f}'} | {b1:.1f} / {b2:.1f} |")
    text = "\n".join(lines)
    print(text)
    if a.write:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from results import write_section  # bench/results.py: replaces only this section

        write_section(SECTION, text + "\n" + NOTES)


if __name__ == "__main__":
    main()
