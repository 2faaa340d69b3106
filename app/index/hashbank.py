"""Hash banks: lists of known content (PDQ hashes), matched by Hamming distance, updated live.

**Search: exact multi-index hashing** (Norouzi, Punjani, Fleet, "Fast search in Hamming space
with multi-index hashing", 2012). The 256 bits are cut into ``m = 16`` chunks of 16 bits. Two
hashes within ``t`` bits differ in at most ``t // 16`` bits of at least one chunk (pigeonhole),
so the candidates are the rows whose chunk ``j`` lies within ``t // 16`` bits of the query's
chunk ``j`` for some ``j``: 16 x 17 keys for PDQ's threshold 31, looked up with one
``searchsorted`` over one sorted array holding every row's 16 ``(j, chunk)`` keys. Candidates
are then checked exactly (popcount), so nothing within ``t`` is ever missed: recall is 1 by
construction (``bench/hashbank.py`` measures it against brute force, and Annoy's ``hamming``
metric beside it: see bench/RESULTS.md).

**Live updates** like the kNN index: the sorted arrays are built once; entries upserted since
go to an overlay, and an entry's rows carry its generation, so a deleted or replaced entry's
old rows are skipped at once. When the overlay outgrows a quarter of the built rows the whole
index is rebuilt (geometric growth: bulk loading stays ``O(n log n)`` overall). The overlay is
searched through a multi-index of its own, except its newest rows (at most :data:`OVERLAY_TAIL`),
which are compared by brute force; a lookup that finds a longer tail indexes the overlay again
first. :meth:`HashBanks.compact` (at the training replica's catch-up) folds the overlay into the
built index. (Brute force over the whole overlay, up to a fifth of the hashes, cost 81 lookups/s
at 1M hashes loaded the way the replica loads them: bench/RESULTS.md, "Raw media on one worker".)

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> banks = HashBanks()
>>> banks.set_bank(BankSpec("known", threshold=31))
>>> h = rng.integers(0, 256, (3, 32), dtype=np.uint8)
>>> for i in range(3): banks.upsert_entry(Entry(f"e{i}", "known", h[i:i + 1], label="bad"))
>>> q = h[1].copy(); q[0] ^= 0b111  # 3 bits flipped
>>> [(m.entry_id, m.distance) for m in banks.match(q[None], {"known"})[0]]
[('e1', 3)]
>>> banks.delete_entry("e1"); banks.match(q[None], {"known"})[0]
[]
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np

from app.core.pdq import BYTES, as_words

__all__ = ["BankSpec", "Entry", "Match", "MihIndex", "HashBanks", "chunk_masks"]

CHUNKS, CHUNK_BITS = 16, 16
OVERLAY_TAIL = 2048  # overlay rows compared by brute force; beyond that the next lookup indexes the overlay
QUERY_BLOCK = 64  # queries per brute-force block over the tail (bounds its (queries, rows, 4) temporary)
PREFIX_WORDS = 2  # 64-bit words of each hash kept in chunk order (the prefilter)
#: chunk j's bucket table starts at j * (2**16 + 1) in MihIndex.flat_starts, shaped to add to (q, 16, masks)
_BUCKET_BASE = (np.arange(CHUNKS, dtype=np.int64) * ((1 << CHUNK_BITS) + 1))[None, :, None]


@lru_cache(maxsize=8)
def chunk_masks(radius: int, bits: int = CHUNK_BITS) -> np.ndarray:
    """Every ``bits``-bit mask with at most ``radius`` bits set (read-only: cached per radius).

    >>> len(chunk_masks(0)), len(chunk_masks(1)), len(chunk_masks(2))
    (1, 17, 137)
    """
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in c) for c in combinations(range(bits), r)]
    arr = np.array(out, dtype=np.uint32)
    arr.flags.writeable = False
    return arr


def _chunks(hashes: np.ndarray) -> np.ndarray:
    """``(n, 32)`` uint8 -> ``(n, 16)`` uint16 chunk values (big-endian byte pairs)."""
    return np.ascontiguousarray(hashes, dtype=np.uint8).reshape(-1, BYTES).view(">u2").astype(np.uint16)


class MihIndex:
    """A static exact Hamming index over ``(n, 32)`` uint8 hashes: per chunk, the rows ordered by
    chunk value (a stable radix sort of 16-bit keys) and each value's start (a bucket table), so a
    probe is two array reads, no binary search."""

    def __init__(self, hashes: np.ndarray):
        self.hashes = np.ascontiguousarray(hashes, dtype=np.uint8).reshape(-1, BYTES)
        self.n = n = len(self.hashes)
        self.words = as_words(self.hashes)
        chunks = _chunks(self.hashes)
        self.order = np.empty((CHUNKS, n), np.int32)
        self.starts = np.zeros((CHUNKS, (1 << CHUNK_BITS) + 1), np.int64)
        for j in range(CHUNKS):
            self.order[j] = np.argsort(chunks[:, j], kind="stable")
            np.cumsum(np.bincount(chunks[:, j], minlength=1 << CHUNK_BITS), out=self.starts[j, 1:])
        self.starts += (np.arange(CHUNKS, dtype=np.int64) * n)[:, None]  # offsets into order.ravel()
        self.flat_starts = self.starts.ravel()  # chunk j's value v starts at flat_starts[j * (2**16 + 1) + v]
        self.flat_order = self.order.ravel()
        # The first 128 bits of every hash again, in each chunk's order: a probe's bucket is then one
        # contiguous read, and a candidate whose first 128 bits already differ in more than the
        # threshold (almost every non-match: random halves differ in ~64) is dropped without the
        # random read of its full hash. 16 x 16 bytes per hash: the memory is what buys the speed.
        # stored as one 16-byte item per row (complex128 is only the carrier): numpy gathers 1-D arrays
        # of 16-byte items ~10x faster than rows of a 2-D uint64 array
        self.prefix = np.ascontiguousarray(self.words[self.flat_order, :PREFIX_WORDS]).view(np.complex128).ravel()

    def search(self, queries: np.ndarray, threshold: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, ``(rows, distances)`` of every hash within ``threshold`` bits (rows ascending)."""
        queries = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, BYTES)
        if self.n == 0 or len(queries) == 0:
            return [(np.empty(0, np.int32), np.empty(0, np.int32)) for _ in range(len(queries))]
        # (q, 16 x masks) bucket numbers into flat_starts: each chunk's value and its near neighbours
        probe = ((_chunks(queries)[:, :, None] ^ chunk_masks(threshold // CHUNKS)[None, None, :])
                 + _BUCKET_BASE).reshape(len(queries), -1)
        lo = self.flat_starts[probe]
        hi = self.flat_starts[probe + 1]
        lengths = (hi - lo).ravel()
        total = int(lengths.sum())
        # every query's candidates in one pass (no per-query Python work): positions into the
        # ordered rows, the query each belongs to, exact distances, then the few kept are grouped
        firsts = np.repeat(lo.ravel() - np.cumsum(lengths) + lengths, lengths)
        pos = firsts + np.arange(total)
        per_query = (hi - lo).sum(axis=1)
        qid = np.repeat(np.arange(len(queries)), per_query)
        qw = as_words(queries)
        bits = np.bitwise_count(self.prefix[pos].view(np.uint64).reshape(-1, PREFIX_WORDS)
                                ^ np.repeat(qw[:, :PREFIX_WORDS], per_query, axis=0))
        near = (bits[:, 0] + bits[:, 1]) <= threshold  # (column sums: far faster than .sum(axis=1))
        pos, qid = pos[near], qid[near]
        cand = self.flat_order[pos]
        d = np.bitwise_count(self.words[cand] ^ qw[qid]).sum(axis=1, dtype=np.int32)
        keep = d <= threshold
        if not keep.any():
            return [(np.empty(0, np.int32), np.empty(0, np.int32)) for _ in range(len(queries))]
        # a near row is found once per chunk it is close in: dedupe the few kept
        pairs, first = np.unique(qid[keep].astype(np.int64) * self.n + cand[keep], return_index=True)
        dk = d[keep][first]
        bounds = np.searchsorted(pairs // self.n, np.arange(len(queries) + 1))
        rows = (pairs % self.n).astype(np.int32)
        return [(rows[bounds[i]:bounds[i + 1]], dk[bounds[i]:bounds[i + 1]]) for i in range(len(queries))]


@dataclass(frozen=True)
class BankSpec:
    name: str
    signal_type: str = "pdq"
    threshold: int = 31
    labels: dict[str, str] = field(default_factory=dict)
    action: str = "block"
    index_id: str | None = None
    version: int = 1

    def applies_to(self, index_id: str) -> bool:
        return self.index_id is None or self.index_id == index_id


@dataclass(frozen=True)
class Entry:
    """One known item: an image (one hash) or a video (its frame hashes, a vPDQ target)."""

    id: str
    bank: str
    hashes: np.ndarray  # (k, 32) uint8
    label: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    entry_id: str
    bank: str
    hash_index: int  # which of the entry's hashes
    distance: int


class HashBanks:
    """Every bank and entry of a worker; one lock for writes (from the replica), lookups search outside it."""

    def __init__(self, rebuild_min: int = 2048):
        self.rebuild_min = rebuild_min
        self.banks: dict[str, BankSpec] = {}
        self.entries: dict[str, tuple[Entry, int]] = {}  # id -> (entry, generation)
        self._gen = 0
        self._lock = threading.RLock()
        self._index = MihIndex(np.empty((0, BYTES), np.uint8))
        self._meta: list[tuple[str, int, int]] = []  # built row -> (entry id, generation, hash index)
        self._overlay: list[tuple[np.ndarray, str, int, int]] = []
        self._ov_index = MihIndex(np.empty((0, BYTES), np.uint8))  # over _overlay[:_ov_index.n]
        self._tail_words: np.ndarray | None = None  # words of _overlay[_ov_index.n:], None: stale
        self.builds = 0

    # -- writers (the training replica) ---------------------------------------------
    def set_bank(self, spec: BankSpec) -> None:
        with self._lock:
            self.banks[spec.name] = spec

    def delete_bank(self, name: str) -> None:
        """The bank goes; its entries stay stored but match nothing until the bank is declared again."""
        with self._lock:
            self.banks.pop(name, None)

    def upsert_entry(self, e: Entry) -> None:
        with self._lock:
            self._gen += 1
            self.entries[e.id] = (e, self._gen)
            for k, h in enumerate(np.asarray(e.hashes, np.uint8).reshape(-1, BYTES)):
                self._overlay.append((h, e.id, self._gen, k))
            self._tail_words = None
            if len(self._overlay) > max(self.rebuild_min, self._index.n // 4):
                self.rebuild()

    def delete_entry(self, entry_id: str) -> None:
        with self._lock:
            self.entries.pop(entry_id, None)  # its rows' generation no longer matches: skipped

    def compact(self) -> None:
        """Everything into the built index when the overlay holds more than its brute-force tail (the
        training replica calls this once it has caught up, so a worker starts with one index to search)."""
        with self._lock:
            if len(self._overlay) > OVERLAY_TAIL:
                self.rebuild()

    def rebuild(self) -> None:
        with self._lock:
            hashes: list[np.ndarray] = []
            meta: list[tuple[str, int, int]] = []
            for eid, (e, gen) in self.entries.items():
                hs = np.asarray(e.hashes, np.uint8).reshape(-1, BYTES)
                hashes.append(hs)
                meta.extend((eid, gen, k) for k in range(len(hs)))
            self._index = MihIndex(np.concatenate(hashes) if hashes else np.empty((0, BYTES), np.uint8))
            self._meta, self._overlay, self._tail_words = meta, [], None
            self._ov_index = MihIndex(np.empty((0, BYTES), np.uint8))
            self.builds += 1

    # -- readers ------------------------------------------------------------------
    def applicable(self, index_id: str) -> list[BankSpec]:
        with self._lock:
            return sorted((b for b in self.banks.values() if b.applies_to(index_id)), key=lambda b: b.name)

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, queries: np.ndarray, banks: set[str] | None = None) -> list[list[Match]]:
        """Per query hash, every live entry hash within its bank's threshold (nearest first).

        Searches outside the lock, so the classify pool's threads look up at once: the lock is held
        only to take the current indexes (and to index the overlay again when its tail is too long).
        The built arrays are never changed in place, only replaced; a lookup concurrent with a write
        sees the entry as it was before or after it."""
        queries = np.asarray(queries, np.uint8).reshape(-1, BYTES)
        out: list[list[Match]] = [[] for _ in range(len(queries))]
        with self._lock:
            specs = {n: b for n, b in self.banks.items() if banks is None or n in banks}
            if not specs:
                return out
            index, meta = self._index, self._meta
            overlay, ov_index, tail = self._overlay_view()
        radius = max(b.threshold for b in specs.values())
        for qi, (rows, dists) in enumerate(index.search(queries, radius)):
            for r, d in zip(rows.tolist(), dists.tolist()):
                eid, gen, k = meta[r]
                self._keep(out[qi], eid, gen, k, d, specs)
        for qi, (rows, dists) in enumerate(ov_index.search(queries, radius)):
            for r, d in zip(rows.tolist(), dists.tolist()):
                _, eid, gen, k = overlay[r]
                self._keep(out[qi], eid, gen, k, d, specs)
        if len(tail):  # the overlay's newest rows, overlay[ov_index.n:][:len(tail)], by brute force
            qw = as_words(queries)
            for q0 in range(0, len(qw), QUERY_BLOCK):
                d = np.bitwise_count(qw[q0:q0 + QUERY_BLOCK, None, :] ^ tail[None]).sum(axis=2, dtype=np.int32)
                for qi, r in zip(*(a.tolist() for a in np.nonzero(d <= radius))):
                    _, eid, gen, k = overlay[ov_index.n + r]
                    self._keep(out[q0 + qi], eid, gen, k, int(d[qi, r]), specs)
        for ms in out:
            ms.sort(key=lambda m: (m.distance, m.bank, m.entry_id, m.hash_index))
        return out

    def _overlay_view(self) -> tuple[list[tuple[np.ndarray, str, int, int]], MihIndex, np.ndarray]:
        """(Under the lock.) The overlay rows, the index over its first rows and the words of the rest:
        the overlay is indexed again first when more than ``OVERLAY_TAIL`` rows are not."""
        if len(self._overlay) - self._ov_index.n > OVERLAY_TAIL:
            self._ov_index = MihIndex(np.stack([o[0] for o in self._overlay]))
            self._tail_words = None
        if self._tail_words is None:
            rest = self._overlay[self._ov_index.n:]
            self._tail_words = as_words(np.stack([o[0] for o in rest])) if rest else np.empty((0, 4), np.uint64)
        return self._overlay, self._ov_index, self._tail_words

    def _keep(self, into: list[Match], eid: str, gen: int, k: int, d: int, specs: dict[str, BankSpec]) -> None:
        live = self.entries.get(eid)
        if live is None or live[1] != gen:
            return
        spec = specs.get(live[0].bank)
        if spec is not None and d <= spec.threshold:
            into.append(Match(eid, spec.name, k, d))
