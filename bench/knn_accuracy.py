"""kNN accuracy of the streaming LiveIndex vs exact brute force, recall@k, queries/s.

The data set is made here (fixed seed, no downloads): ``--classes`` classes, each a
mixture of 3 gaussian sub-clusters in ``--dim`` dimensions, overlapping enough that
exact kNN lands around 80-95 % accuracy. Training examples are upserted one by one into
a LiveIndex at DEFAULT settings (background builds every 1000 changes / 2 s of quiet,
files in a temp dir); the test set is classified right after the stream ends, while the
newest examples still sit in the exact overlay, and once more after the builds settle
(pure Annoy path, overlay empty). Exact kNN uses the same k, metric and vote.

    .venv/bin/python bench/knn_accuracy.py            # writes "## kNN accuracy" in bench/RESULTS.md
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402  (bench/results.py)

import numpy as np

from app.core.knn import classify_batch, exact_search, vote
from app.index.live import IndexSettings, LiveIndex

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## kNN accuracy"


def make_data(n_train: int, n_test: int, dim: int, classes: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    subs = centres[:, None, :] + 0.6 * rng.normal(size=(classes, 3, dim))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, classes, n)
        s = rng.integers(0, 3, n)
        x = subs[y, s] + spread * rng.normal(size=(n, dim))
        return x.astype(np.float32), y

    (xtr, ytr), (xte, yte) = draw(n_train), draw(n_test)
    return xtr, [f"class{c}" for c in ytr], xte, [f"class{c}" for c in yte]


def batches(n: int, size: int):
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def classify_live(ix: LiveIndex, xte: np.ndarray, k: int, batch: int):
    labels, ids, t0 = [], [], time.perf_counter()
    for sl in batches(len(xte), batch):
        for o in classify_batch(xte[sl], ix, k):
            labels.append(o.label)
            ids.append({n["id"] for n in o.neighbours})
    return labels, ids, len(xte) / (time.perf_counter() - t0)


def classify_exact(xtr, ytr, xte, k, metric, batch):
    labels, ids, t0 = [], [], time.perf_counter()
    for sl in batches(len(xte), batch):
        idx, dist = exact_search(xte[sl], xtr, k, metric)
        for r, d in zip(idx, dist):
            labels.append(vote([ytr[j] for j in r], d.tolist()).label)
            ids.append({f"ex{j}" for j in r})
    return labels, ids, len(xte) / (time.perf_counter() - t0)


def accuracy(pred, truth) -> float:
    return float(np.mean([p == t for p, t in zip(pred, truth)]))


def recall(got, want, k) -> float:
    return float(np.mean([len(g & w) / min(k, len(w)) for g, w in zip(got, want)]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--spread", type=float, default=2.6, help="within-cluster std")
    ap.add_argument("--rate", type=float, default=10000,
                    help="training upserts per second (paced, so builds overlap the stream)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100, help="queries per classify call")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args(argv)

    settings = IndexSettings()  # the defaults are what we measure
    xtr, ytr, xte, yte = make_data(args.train, args.test, args.dim, args.classes,
                                   args.spread, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ix = LiveIndex.from_settings(args.dim, settings, tmp, "Bench.label")
        t0 = time.perf_counter()
        for i, (v, lab) in enumerate(zip(xtr, ytr)):
            ix.upsert(f"ex{i}", v, lab, {"i": i})
            if args.rate > 0 and i % 100 == 99:  # pace like a topic, in 100-event polls
                time.sleep(max(0.0, t0 + (i + 1) / args.rate - time.perf_counter()))
        upsert_s = time.perf_counter() - t0
        stream_state = (ix.version, ix.overlay_size)
        s_lab, s_ids, s_qps = classify_live(ix, xte, args.k, args.batch)
        stream_paths = dict(ix.counters)
        t1 = time.perf_counter()
        ix.wait_idle(600)
        settle_s = time.perf_counter() - t1
        ix.counters.update(exact=0, annoy=0, fallback=0)
        a_lab, a_ids, a_qps = classify_live(ix, xte, args.k, args.batch)
        settled_state, settled_paths = (ix.version, ix.overlay_size), dict(ix.counters)
        ix.close()
    e_lab, e_ids, e_qps = classify_exact(xtr, ytr, xte, args.k, settings.metric, args.batch)

    acc_e, acc_s, acc_a = accuracy(e_lab, yte), accuracy(s_lab, yte), accuracy(a_lab, yte)
    rec_s, rec_a = recall(s_ids, e_ids, args.k), recall(a_ids, e_ids, args.k)
    cmd = ".venv/bin/python bench/knn_accuracy.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--no-write")
    rows = [
        ("exact brute force (numpy)", acc_e, "", 1.0, e_qps, "-"),
        ("LiveIndex, right after the stream", acc_s, 100 * (acc_s - acc_e), rec_s, s_qps,
         f"v{stream_state[0]}, overlay {stream_state[1]}, paths {stream_paths}"),
        ("LiveIndex, builds settled", acc_a, 100 * (acc_a - acc_e), rec_a, a_qps,
         f"v{settled_state[0]}, overlay {settled_state[1]}, paths {settled_paths}"),
    ]
    lines = [
        f"Data: {args.train} training / {args.test} test vectors, {args.dim}-d, "
        f"{args.classes} classes x 3 gaussian sub-clusters (spread {args.spread}), "
        f"seed {args.seed}; k={args.k}, metric {settings.metric}, default IndexSettings "
        f"(exact_threshold {settings.exact_threshold}, n_trees {settings.n_trees}, "
        f"fetch_factor {settings.fetch_factor}, search_k {settings.search_k}); "
        f"{args.batch} queries per call. Streaming {args.train} upserts (paced at "
        f"{args.rate:,.0f}/s) took {upsert_s:.2f} s; "
        f"builds settled {settle_s:.2f} s later.",
        "",
        "| path | accuracy | vs exact (pp) | recall@k vs exact | queries/s | index state |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {a:.2%} | {d if d == '' else f'{d:+.2f}'} | {r:.4f} | {q:,.0f} | {s} |"
          for n, a, d, r, q, s in rows),
        "",
        f"Command: `{cmd.strip()}`",
    ]
    if a_qps < e_qps:  # say it plainly when Annoy does not pay for itself here
        lines[-2:-2] = ["", f"Note: on this data exact search is {e_qps / a_qps:.1f}x faster than "
                        f"the settled Annoy path at {args.train} examples (Annoy needs a large "
                        "search_k for recall on high-intrinsic-dimension clusters); raise "
                        "exact_threshold for such data. Annoy pays off for much larger sets, "
                        "low-intrinsic-dimension embeddings, and memory (mmap, shared pages)."]
    print("\n".join(lines))
    ok = abs(acc_s - acc_e) <= 0.005 and abs(acc_a - acc_e) <= 0.005 and min(rec_s, rec_a) >= 0.95
    print(f"\ntargets (|acc diff| <= 0.5 pp, recall@k >= 0.95): {'met' if ok else 'NOT met'}")
    if not args.no_write:
        write_section("\n".join(lines))
    return 0 if ok else 1


def write_section(body: str) -> None:
    results.write_section(SECTION, body)


if __name__ == "__main__":
    sys.exit(main())
