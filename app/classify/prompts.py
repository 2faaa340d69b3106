"""Prompts of a request in the vector space of the segments they are compared with.

A media index (``index:<id>`` record, ``app.schemas.training.IndexRecord``) says per option how
prompt text becomes a vector: a shipped vectorizer (``minilm``, ``hashing``) or ``precomputed``
(``prompt_vector`` records published by the producer, in the space of its media embeddings).
Segments that carry ``text`` and no vector are embedded with their option's vectorizer, so
conversation and text_in_video work from transcripts alone. A prompt with no way to a vector
in a space it is needed in is refused (:class:`PromptSpaceError`, naming prompt, index and
option): never scored in another space.

**One matrix product over several spaces.** Options may live in different spaces (visual in a
512-d precomputed space, conversation in MiniLM's 384-d one). Each distinct space gets a block of
a joint space (spaces are shared by options with the same vectorizer and width; every
precomputed option is its own space). A segment's vector sits in its option's block, zeros
elsewhere; a class gets one prompt row per (prompt, space it needs), its vector in that block.
A dot product across blocks is 0, so ``max(0, max cos)`` over a class's rows is exactly the
best cosine within the segment's own space, and ``app.core.media.classify_media`` runs
unchanged. With one space (the common case) the joint space *is* that space: the arrays are
the ones the pure core gets for a single-space request, bit for bit.

>>> from app.schemas.training import IndexRecord
>>> idx = IndexRecord(id="i", options={"visual": {"vectorizer": "precomputed"}, "conversation": {"vectorizer": "hashing", "dim": 8}})
>>> pv = {("visual", "dog"): np.array([0.0, 1.0], np.float32)}
>>> c = compile_classes([{"name": "Dog", "prompts": ["dog"]}], idx, ["visual", "conversation"], "semantic",
...                     lambda o, p: pv.get((o, p)), Embedder())
>>> c.blocks, c.dim, c.classes[0].prompts
({'precomputed:visual': (0, 2), 'hashing:8': (2, 8)}, 10, ['dog', 'dog'])
>>> arr = c.segments([{"start": 0, "end": 1, "option": "visual", "vector": [0, 3], "text": None},
...                   {"start": 1, "end": 2, "option": "conversation", "vector": None, "text": "a dog"}])
>>> arr.dim, arr.has_vector.tolist(), arr.vectors[0, :2].tolist()
(10, [True, True], [0.0, 1.0])
>>> compile_classes([{"name": "Cat", "prompts": ["cat"]}], idx, ["visual"], "semantic", lambda o, p: None, Embedder())
Traceback (most recent call last):
...
app.classify.prompts.PromptSpaceError: prompt 'cat' (class 'Cat') has no vector in the visual space of index 'i': the index's visual prompts are precomputed and no prompt_vector record was published for it
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.media import MediaClass
from app.core.segments import OPTIONS, SegmentArrays
from app.core.vectorizers import Vectorizer, get_vectorizer
from app.schemas.training import IndexRecord

__all__ = ["PromptSpaceError", "SegmentSpaceError", "Embedder", "Compiled", "compile_classes", "space_key"]

PromptLookup = Callable[[str, str], "np.ndarray | None"]  # (option, prompt) -> precomputed vector


class PromptSpaceError(ValueError):
    """A prompt that cannot be put in the space it must be compared in (a 400 for the request)."""


class SegmentSpaceError(ValueError):
    """A stored segment whose vector does not fit its option's space."""


def space_key(option: str, vectorizer: str, dim: int | None) -> str:
    """
    >>> space_key("conversation", "minilm", None), space_key("visual", "hashing", None), space_key("visual", "precomputed", 5)
    ('minilm', 'hashing:384', 'precomputed:visual')
    """
    if vectorizer == "precomputed":
        return f"precomputed:{option}"
    if vectorizer == "hashing":
        return f"hashing:{dim or 384}"
    return vectorizer


class Embedder:
    """Text -> unit vectors per space, cached per (space, text) -- the same as per (index, option, prompt),
    since an index's option names its space: prompt vectors of vectorizer spaces are computed once per worker (the cache is bounded, least recently used out), and so are the transcripts
    of stored segments. Thread-safe: requests run in the classify pool."""

    def __init__(self, size: int = 100_000, max_chars: int | None = None):
        self.size, self.max_chars = size, max_chars
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._vectorizers: dict[str, Vectorizer] = {}

    def vectorizer(self, key: str) -> Vectorizer:
        if key not in self._vectorizers:
            name, _, dim = key.partition(":")
            self._vectorizers[key] = get_vectorizer(name, int(dim) if dim else None, max_chars=self.max_chars)
        return self._vectorizers[key]

    def encode(self, key: str, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if (key, t) not in self._cache))
        if missing:
            # one text at a time: MiniLM pads a batch to its longest text, which moves the last bits of
            # the others; a vector must depend on its text alone, so a result depends on its inputs alone
            vec = self.vectorizer(key)
            X = [vec.encode([t])[0] for t in missing]
            with self._lock:
                for t, v in zip(missing, X):
                    self._cache[(key, t)] = v
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = []
            for t in texts:
                v = self._cache.get((key, t))
                if v is None:  # evicted between the two locks by another request: compute again
                    v = self.vectorizer(key).encode([t])[0]
                rows.append(v)
        dim = self.vectorizer(key).dim or 0
        return np.asarray(rows, np.float32).reshape(len(texts), -1) if rows else np.zeros((0, dim), np.float32)


@dataclass(frozen=True)
class Compiled:
    """A request's classes in a joint space: ``blocks`` space -> (offset, width), ``option_space``
    option -> space for the options some class needs a vector in."""

    classes: list[MediaClass]
    blocks: dict[str, tuple[int, int]]
    option_space: dict[str, str]
    embedder: Embedder
    index_id: str

    @property
    def dim(self) -> int:
        return sum(w for _, w in self.blocks.values())

    def segments(self, segments: Sequence[Mapping[str, Any]], video_id: str = "") -> SegmentArrays:
        """A stored item's segments in the joint space (text embedded where the option's space has a
        vectorizer). Raises :class:`SegmentSpaceError` for a vector of the wrong size."""
        rows: list[dict[str, Any]] = []
        to_embed: dict[str, list[int]] = {}
        for i, s in enumerate(segments):
            key = self.option_space.get(s["option"])
            row = {**s, "vector": None}
            if key is not None:
                off, width = self.blocks[key]
                if s.get("vector") is not None:
                    v = np.asarray(s["vector"], np.float32).reshape(-1)
                    if v.size != width:
                        raise SegmentSpaceError(
                            f"video {video_id!r}: a {s['option']} segment has a {v.size}-d vector, the {s['option']} "
                            f"space of index {self.index_id!r} ({key}) has {width} dimensions")
                    row["vector"] = self._placed(v, off)
                elif s.get("text") and not key.startswith("precomputed:"):
                    to_embed.setdefault(key, []).append(i)
            rows.append(row)
        for key, idx in to_embed.items():
            X = self.embedder.encode(key, [segments[i]["text"] for i in idx])
            for i, v in zip(idx, X):
                rows[i]["vector"] = self._placed(v, self.blocks[key][0])
        return SegmentArrays.from_segments(rows, dim=self.dim)

    def _placed(self, v: np.ndarray, offset: int) -> np.ndarray:
        if len(self.blocks) == 1:
            return v
        out = np.zeros(self.dim, np.float32)
        out[offset:offset + v.size] = v
        return out


def _needed(cls: Mapping[str, Any], options: Sequence[str], conversation_option: str) -> list[str]:
    """The options a class needs prompt vectors in: exact_match conversation needs none."""
    conv = cls.get("conversation_option") or conversation_option
    return [o for o in OPTIONS if o in (cls.get("options") or options)
            and not (o == "conversation" and conv == "exact_match")]


def compile_classes(classes: Sequence[Mapping[str, Any]], index: IndexRecord | None, options: Sequence[str],
                    conversation_option: str, precomputed: PromptLookup, embedder: Embedder,
                    index_id: str | None = None) -> Compiled:
    """The request's ``classes`` (``{name, prompts, options?, conversation_option?}``) as
    :class:`MediaClass` es in the joint space of ``index``. Raises :class:`PromptSpaceError`."""
    index_id = index.id if index is not None else (index_id or "")
    spaces = dict(index.options) if index is not None else {}
    option_space: dict[str, str] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}  # (space, prompt) -> vector
    for cls in classes:
        for option in _needed(cls, options, conversation_option):
            space = spaces.get(option)  # type: ignore[call-overload]
            if space is None:
                p = cls["prompts"][0]
                why = ("no index record was published for it" if index is None
                       else f"the index record gives no space for {option}")
                raise PromptSpaceError(f"prompt {p!r} (class {cls['name']!r}) has no vector in the {option} space of "
                                       f"index {index_id!r}: {why} (publish index:{index_id} on the training topic "
                                       f"with options.{option}.vectorizer minilm, hashing or precomputed)")
            key = space_key(option, space.vectorizer, space.dim)
            option_space[option] = key
            for p in cls["prompts"]:
                if (key, p) in vectors:
                    continue
                if space.vectorizer == "precomputed":
                    v = precomputed(option, p)
                    if v is None:
                        raise PromptSpaceError(
                            f"prompt {p!r} (class {cls['name']!r}) has no vector in the {option} space of index "
                            f"{index_id!r}: the index's {option} prompts are precomputed and no prompt_vector "
                            "record was published for it")
                    if space.dim and v.size != space.dim:
                        raise PromptSpaceError(f"prompt {p!r}: its {option} vector has {v.size} dimensions, index "
                                               f"{index_id!r} declares {space.dim}")
                    vectors[(key, p)] = np.asarray(v, np.float32).reshape(-1)
    for key in sorted(set(option_space.values())):  # vectorizer spaces: every prompt they need, one batch
        if key.startswith("precomputed:"):
            continue
        texts = sorted({p for cls in classes for o in _needed(cls, options, conversation_option)
                        if option_space[o] == key for p in cls["prompts"]})
        for p, v in zip(texts, embedder.encode(key, texts)):
            vectors[(key, p)] = v
    widths: dict[str, int] = {}
    for (key, p), v in vectors.items():
        if widths.setdefault(key, v.size) != v.size:
            raise PromptSpaceError(f"prompt {p!r}: the precomputed vectors of {key} in index {index_id!r} have "
                                   f"different sizes ({widths[key]} and {v.size})")
    blocks, offset = {}, 0
    for key in dict.fromkeys(option_space[o] for o in OPTIONS if o in option_space):
        blocks[key] = (offset, widths.get(key, 0))
        offset += widths.get(key, 0)
    compiled = Compiled([], blocks, option_space, embedder, index_id)
    for cls in classes:
        # one row per (prompt, space the class needs); a class needing none (exact_match only) gets zero rows
        keys: list[str | None] = list(dict.fromkeys(option_space[o] for o in _needed(cls, options, conversation_option)))
        pairs = [(p, k) for p in cls["prompts"] for k in (keys or [None])]
        prompts = [p for p, _ in pairs]
        pv = np.zeros((len(prompts), max(compiled.dim, 1)), np.float32)
        for i, (p, block) in enumerate(pairs):
            if block is not None:
                off, width = blocks[block]
                pv[i, off:off + width] = vectors[(block, p)]
        opts = cls.get("options")
        compiled.classes.append(MediaClass(cls["name"], prompts, pv, options=tuple(opts) if opts else None,
                                           conversation_option=cls.get("conversation_option")))
    return compiled
