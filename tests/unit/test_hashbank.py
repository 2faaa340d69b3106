"""The live hash-bank index against brute force: through rebuilds, overlay, replaced and deleted entries."""

from __future__ import annotations

import numpy as np

from app.core.pdq import hamming
from app.index.hashbank import BankSpec, Entry, HashBanks, MihIndex


def flipped(rng, h: np.ndarray, bits: int) -> np.ndarray:
    b = np.unpackbits(h)
    b[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(b)


def test_mih_is_exact_at_several_thresholds():
    rng = np.random.default_rng(3)
    bank = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    q = np.stack([flipped(rng, bank[i], int(rng.integers(0, 48))) for i in rng.integers(0, len(bank), 200)])
    idx = MihIndex(bank)
    dist = [hamming(bank, x) for x in q]
    for t in (0, 15, 31, 47):
        for qi, (rows, d) in enumerate(idx.search(q, t)):
            truth = np.flatnonzero(dist[qi] <= t)
            assert rows.tolist() == truth.tolist() and d.tolist() == dist[qi][truth].tolist()


def test_live_banks_match_brute_force_through_rebuilds_replacements_and_deletes():
    rng = np.random.default_rng(5)
    banks = HashBanks(rebuild_min=256)
    banks.set_bank(BankSpec("a", threshold=31))
    banks.set_bank(BankSpec("b", threshold=10))
    live: dict[str, tuple[str, np.ndarray]] = {}
    for i in range(3000):
        h = rng.integers(0, 256, (1, 32), dtype=np.uint8)
        bank = "a" if i % 3 else "b"
        banks.upsert_entry(Entry(f"e{i}", bank, h))
        live[f"e{i}"] = (bank, h)
    assert banks.builds >= 3  # geometric rebuilds happened, and entries since then sit in the overlay
    for i in range(0, 3000, 7):  # replace some hashes, delete others
        if i % 2:
            h = rng.integers(0, 256, (1, 32), dtype=np.uint8)
            banks.upsert_entry(Entry(f"e{i}", live[f"e{i}"][0], h))
            live[f"e{i}"] = (live[f"e{i}"][0], h)
        else:
            banks.delete_entry(f"e{i}")
            live.pop(f"e{i}")
    ids = sorted(live)
    queries = np.stack([flipped(rng, live[ids[j]][1][0], int(rng.integers(0, 40))) for j in rng.integers(0, len(ids), 300)])
    all_hashes = np.concatenate([live[i][1] for i in ids])
    for qi, got in enumerate(banks.match(queries)):
        d = hamming(all_hashes, queries[qi])
        want = {(ids[r], int(d[r])) for r in range(len(ids)) if d[r] <= (31 if live[ids[r]][0] == "a" else 10)}
        assert {(m.entry_id, m.distance) for m in got} == want
    banks.delete_bank("a")
    assert all(m.bank == "b" for ms in banks.match(queries) for m in ms)
