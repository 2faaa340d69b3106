"""Counting and CRC-32 hashing of the hashing vectorizer's features, batched in numpy.

The hashing vectorizer defines its features one string at a time (``zlib.crc32`` of
``"c:" + ngram`` in UTF-8, counted in first-occurrence order; likewise ``"w:" + word`` and
``"b:" + word + " " + word``). A MiB of text has ~3 million n-grams, so doing that per feature
in Python costs seconds. Here the same numbers come from whole-array operations:

* every feature is a span of the space-joined text (``" w1 w2 ... "``), which becomes an array
  of dense character ids; a distinct feature is a distinct packed key (n-grams: the ids of
  their characters; bigrams: a pair of word ids), counted by one sort;
* CRC-32 runs for all distinct features at once, one table lookup per UTF-8 byte position
  (zlib's reflected table, so the values are zlib's). Spans longer than ``_VECTOR_SPAN``
  characters are few (they cover the text at most a couple of times) and go to zlib directly.

>>> import zlib
>>> t = Text(" ééée ")
>>> crc, tf = t.char_ngrams(3, 4)
>>> [int(x) for x in tf]
[1, 1, 1, 1, 1, 1, 1]
>>> int(crc[1]) == zlib.crc32("c:ééé".encode())
True
"""
from __future__ import annotations

import zlib

import numpy as np

__all__ = ["Text"]

_U32 = np.uint32(0xFFFFFFFF)
_VECTOR_SPAN = 32  # longer spans: one zlib call each (a step per character would cost more)


def _crc_table() -> np.ndarray:
    table = np.empty(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _crc_table()


def _first_and_counts(keys: np.ndarray, key_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """First index and count of each distinct ``uint64`` key, in order of first occurrence.

    >>> first, counts = _first_and_counts(np.array([7, 3, 7, 7, 5], dtype=np.uint64), 3)
    >>> first.tolist(), counts.tolist()
    ([0, 1, 4], [3, 1, 1])
    """
    n = keys.size
    pos_bits = max(1, (n - 1).bit_length())
    if key_bits + pos_bits <= 64:
        # key and position in one word: a plain sort (much faster than argsort) groups equal
        # keys and puts each key's first position first.
        packed = np.sort((keys << np.uint64(pos_bits)) | np.arange(n, dtype=np.uint64))
        sorted_keys = packed >> np.uint64(pos_bits)
        pos = (packed & np.uint64((1 << pos_bits) - 1)).astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        first = pos[starts]
    else:
        order = np.argsort(keys)  # not stable: the first position is taken as a minimum
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
        first = np.minimum.reduceat(order, starts)
    counts = np.diff(np.append(starts, n))
    by_first = np.argsort(first)
    return first[by_first], counts[by_first].astype(np.int64)


class Text:
    """A text as dense character ids, ready to count and hash spans of it."""

    def __init__(self, text: str) -> None:
        self.text = text
        # utf-32: one code point per 4 bytes. The vectorizer's text is \\w+ matches and spaces,
        # so it never holds the lone surrogates that utf-32 (and zlib's UTF-8 input) refuse.
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        chars = np.unique(cps)  # few distinct characters: a lookup beats return_inverse's argsort
        self.ids = np.searchsorted(chars, cps).astype(np.uint64)
        self.bits = max(1, (len(chars) - 1).bit_length())
        encoded = [chr(c).encode("utf-8") for c in chars.tolist()]
        self.utf8_len = np.array([len(e) for e in encoded], dtype=np.uint8)
        self.max_utf8 = int(self.utf8_len.max()) if encoded else 1
        # byte b of every character's UTF-8 (zero padded), one row per b: a 1-D take per step.
        self.utf8 = np.zeros((4, len(encoded)), dtype=np.uint32)
        for i, e in enumerate(encoded):
            self.utf8[: len(e), i] = list(e)

    def crc32(self, prefix: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``zlib.crc32(prefix + text[s:s + n])`` for each span, as ``uint32``.

        >>> t = Text("aé b")
        >>> got = t.crc32(b"w:", np.array([0, 3, 1]), np.array([2, 1, 0]))
        >>> [int(x) for x in got] == [zlib.crc32(s.encode()) for s in ("w:aé", "w:b", "w:")]
        True
        """
        out = np.empty(starts.size, dtype=np.uint32)
        long = lengths > _VECTOR_SPAN
        for i in np.flatnonzero(long).tolist():
            s = int(starts[i])
            out[i] = zlib.crc32(self.text[s : s + int(lengths[i])].encode("utf-8"), zlib.crc32(prefix))
        short = np.flatnonzero(~long)
        # longest first: the spans still running at step t are then a prefix of the arrays.
        short = short[np.argsort(-lengths[short], kind="stable")]
        st, ln = starts[short].astype(np.int64), lengths[short]
        # zlib keeps the register inverted: undo the final xor to continue after the prefix.
        crc = np.full(short.size, zlib.crc32(prefix) ^ 0xFFFFFFFF, dtype=np.uint32)
        running = short.size
        for t in range(int(ln[0]) if short.size else 0):
            while running and ln[running - 1] <= t:
                running -= 1
            ch = self.ids[st[:running] + t].astype(np.intp)
            c = crc[:running]
            c = _TABLE[(c ^ self.utf8[0].take(ch)) & 0xFF] ^ (c >> 8)
            if self.max_utf8 > 1:  # continuation bytes, only where the character has them
                n_bytes = self.utf8_len.take(ch)
                for b in range(1, self.max_utf8):
                    step = _TABLE[(c ^ self.utf8[b].take(ch)) & 0xFF] ^ (c >> 8)
                    c = np.where(n_bytes > b, step, c)
            crc[:running] = c
        out[short] = crc ^ _U32
        return out

    def char_ngrams(self, lo: int, hi: int, prefix: bytes = b"c:") -> tuple[np.ndarray, np.ndarray]:
        """CRC-32 of ``prefix + ngram`` and count per distinct n-gram (``lo <= n <= hi``).

        Order: the n-grams of length ``lo`` by first occurrence, then ``lo + 1``... (the order
        of a ``Counter`` over ``for n in range(lo, hi + 1) for i in ...``).

        >>> crc, tf = Text("aaaa").char_ngrams(3, 5)
        >>> [int(x) for x in crc] == [zlib.crc32(b"c:aaa"), zlib.crc32(b"c:aaaa")], tf.tolist()
        (True, [2, 1])
        """
        crcs, tfs = [], []
        size = self.ids.size
        for k in range(lo, hi + 1):
            n = size - k + 1
            if n <= 0:
                continue
            if k * self.bits <= 64:
                key = self.ids[:n].copy()
                for t in range(1, k):
                    key = (key << np.uint64(self.bits)) | self.ids[t : t + n]
                first, counts = _first_and_counts(key, k * self.bits)
            else:  # > 4096 distinct characters: the raw k*4-byte windows are the keys
                cps = np.frombuffer(self.text.encode("utf-32-le"), dtype=np.uint32)
                win = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(cps, k))
                _, first, counts = np.unique(win.view(np.dtype((np.void, 4 * k))).reshape(-1),
                                             return_index=True, return_counts=True)
                order = np.argsort(first)
                first, counts = first[order], counts[order].astype(np.int64)
            crcs.append(self.crc32(prefix, first, np.full(first.size, k)))
            tfs.append(counts)
        if not crcs:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
        return np.concatenate(crcs), np.concatenate(tfs)

    @staticmethod
    def of_words(words: list[str]) -> tuple[Text, np.ndarray, np.ndarray]:
        """``Text(" w1 w2 ... ")`` (``""`` without words), word ids by first occurrence, lengths.

        >>> t, wid, wlen = Text.of_words(["go", "go", "now"])
        >>> t.text, wid.tolist(), wlen.tolist()
        (' go go now ', [0, 0, 1], [2, 3])
        """
        ids: dict[str, int] = dict.fromkeys(words)  # distinct words, first occurrence first
        for i, w in enumerate(ids):
            ids[w] = i
        wid = np.fromiter(map(ids.__getitem__, words), dtype=np.int64, count=len(words))
        wlen = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        return Text(f" {' '.join(words)} " if words else ""), wid, wlen

    def word_features(self, wid: np.ndarray, wlen: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """``((crc, tf) of "w:" + word, (crc, tf) of "b:" + bigram)``, each by first occurrence.

        ``self`` must be the joined text of the words (see :meth:`of_words`).

        >>> t, wid, wlen = Text.of_words(["go", "go", "go", "now"])
        >>> (wc, wt), (bc, bt) = t.word_features(wid, wlen)
        >>> wt.tolist(), bt.tolist(), int(bc[1]) == zlib.crc32(b"b:go now")
        ([3, 1], [2, 1], True)
        """
        n = wid.size
        empty = (np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64))
        if n == 0:
            return empty, empty
        lens = wlen[wid]
        offs = np.cumsum(lens + 1) - lens  # word i starts after the leading space and i words
        # ids are handed out in first-occurrence order: a first occurrence raises the running max.
        firsts = np.flatnonzero(np.diff(np.maximum.accumulate(wid), prepend=-1) > 0)
        words = (self.crc32(b"w:", offs[firsts], lens[firsts]),
                 np.bincount(wid, minlength=wlen.size).astype(np.int64))
        if n == 1:
            return words, empty
        # words hold no spaces, so a bigram's text is determined by its pair of word ids.
        nw = int(wlen.size)
        key = (wid[:-1] * nw + wid[1:]).astype(np.uint64)
        first, counts = _first_and_counts(key, max(1, (nw * nw - 1).bit_length()))
        span = lens[first] + 1 + lens[first + 1]
        return words, (self.crc32(b"b:", offs[first], span), counts)
