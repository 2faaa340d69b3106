"""Weaviate ``Like`` matching without backtracking: ``*`` = any run, ``?`` = exactly one character.

The pattern is split on ``*`` into segments. Every segment matches exactly ``len(segment)``
characters (``?`` is one character, every other character is a literal), so a whole-value match
is: the first segment at the start, the last segment at the end, and the middle segments in
order, each at its leftmost position after the previous one. Leftmost is always safe because a
segment's length is fixed: an earlier match ends earlier and leaves more room for the rest.

Each segment is searched with a quantifier-free regex (literals and ``.`` only), which cannot
backtrack across the value: one segment costs at most ``len(value) * len(segment)`` steps and the
whole pattern at most ``len(value) * len(pattern)``, linear in the value for a bounded pattern.
The regex also keeps the case-insensitive comparison exactly as Python's ``re.IGNORECASE``
(what the matcher did before), including characters such as the Kelvin sign.

>>> m = compile_like("*breaking*news*")
>>> m("BREAKING: big news today"), m("news, then breaking")
(True, False)
>>> compile_like("k?fka")("Kafka"), compile_like("k?fka")("Kafkaa")
(True, False)
"""
from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["compile_like"]

_FLAGS = re.IGNORECASE | re.DOTALL


def _segment(seg: str) -> re.Pattern[str]:
    return re.compile("".join("." if c == "?" else re.escape(c) for c in seg), _FLAGS)


def compile_like(pattern: str) -> Callable[[str], bool]:
    """A ``fn(value) -> bool`` that matches the WHOLE value against ``pattern``.

    >>> compile_like("*")(""), compile_like("a**b")("ab"), compile_like("a*b")("a")
    (True, True, False)
    >>> compile_like("a.b+(c)*")("A.B+(C)x")
    True
    """
    parts = pattern.split("*")
    if len(parts) == 1:  # no '*': the value has exactly the pattern's length
        whole, size = _segment(pattern), len(pattern)
        return lambda v: len(v) == size and whole.match(v) is not None
    head, tail = parts[0], parts[-1]
    head_re, tail_re = _segment(head), _segment(tail)
    middle = tuple(_segment(p) for p in parts[1:-1] if p)
    fixed = len(head) + len(tail) + sum(len(p) for p in parts[1:-1])

    def match(value: str) -> bool:
        n = len(value)
        if n < fixed:  # cheap reject; also makes the tail's start below never negative
            return False
        if head and head_re.match(value) is None:
            return False
        end = n - len(tail)  # the tail must start exactly here
        if tail and tail_re.match(value, end) is None:
            return False
        pos = len(head)
        for seg in middle:
            # endpos=end: a middle segment may not overlap the anchored tail.
            found = seg.search(value, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True
    return match
