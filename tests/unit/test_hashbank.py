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


def test_a_large_overlay_is_searched_through_its_own_index_and_compacted(monkeypatch):
    """Entries upserted since the last build: an indexed overlay plus a brute-force tail, interleaved
    with lookups (each may index the overlay again), then compact() folds everything into one build."""
    from app.index import hashbank

    monkeypatch.setattr(hashbank, "OVERLAY_TAIL", 64)
    rng = np.random.default_rng(11)
    banks = HashBanks(rebuild_min=10**9)  # never rebuilt by upserts: everything stays in the overlay
    banks.set_bank(BankSpec("a", threshold=31))
    hashes = rng.integers(0, 256, (1500, 32), dtype=np.uint8)

    def check(upto: int) -> None:
        picks = rng.integers(0, upto, 40)
        q = np.concatenate([np.stack([flipped(rng, hashes[i], int(rng.integers(0, 36))) for i in picks]),
                            rng.integers(0, 256, (5, 32), dtype=np.uint8)])
        live = [i for i in range(upto) if i % 10 != 3]  # every tenth entry (from 3) deleted
        for qi, got in enumerate(banks.match(q, {"a"})):
            d = hamming(hashes[live], q[qi])
            assert sorted((m.entry_id, m.distance) for m in got) == sorted(
                (f"e{live[r]}", int(d[r])) for r in np.flatnonzero(d <= 31))

    for i in range(len(hashes)):
        banks.upsert_entry(Entry(f"e{i}", "a", hashes[i:i + 1]))
        if i % 10 == 3:
            banks.delete_entry(f"e{i}")
        if i in (50, 400, 401, 999):  # tail only; then indexed overlay + tail, several times
            check(i + 1)
    check(len(hashes))
    assert banks.builds == 0 and banks._ov_index.n > 0
    banks.compact()
    assert banks.builds == 1 and banks._overlay == [] and banks._index.n == len(hashes) - 150
    check(len(hashes))


def test_lookups_from_several_threads_while_the_replica_writes_and_rebuilds():
    """Lookups run outside the lock: entries present before they start are always found, whatever
    rebuilds, overlay re-indexing and upserts happen meanwhile in the writer thread."""
    import threading

    rng = np.random.default_rng(13)
    banks = HashBanks(rebuild_min=64)
    banks.set_bank(BankSpec("a", threshold=31))
    stable = rng.integers(0, 256, (200, 32), dtype=np.uint8)
    for i in range(len(stable)):
        banks.upsert_entry(Entry(f"s{i}", "a", stable[i:i + 1]))
    q = np.stack([flipped(rng, stable[i], 20) for i in range(len(stable))])
    errors: list[BaseException] = []
    done = threading.Event()

    def look() -> None:
        try:
            while not done.is_set():
                got = banks.match(q[:16], {"a"})
                assert [sorted(m.entry_id for m in ms if m.entry_id.startswith("s")) for ms in got] == [
                    [f"s{i}"] for i in range(16)]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=look) for _ in range(2)]
    for t in threads:
        t.start()
    fresh = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    for i in range(len(fresh)):
        banks.upsert_entry(Entry(f"f{i}", "a", fresh[i:i + 1]))
    done.set()
    for t in threads:
        t.join()
    assert errors == [] and banks.builds >= 3
    assert [[m.entry_id for m in ms] for ms in banks.match(q, {"a"})] == [[f"s{i}"] for i in range(len(stable))]
