"""Segment arrays, chunk assembly, completeness and the content hash."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import app.core.segments as segments_mod
from app.core.segments import (
    SegmentArrays,
    chunk_info,
    chunk_status,
    content_hash,
    is_complete,
    merge_chunks,
)


def test_doctests() -> None:
    assert doctest.testmod(segments_mod).failed == 0


def _chunks() -> list[dict]:
    return [
        {"media_id": "m", "chunk": {"seq": 0, "final": False}, "segments": [
            {"start": 0.0, "end": 2.0, "option": "visual", "vector": [3.0, 4.0, 0.0], "thumbnail_url": "t0"},
            {"start": 0.0, "end": 2.0, "option": "conversation", "text": "hello there"},
        ]},
        {"media_id": "m", "chunk": {"seq": 1, "final": False}, "segments": [
            {"start": 2.0, "end": 4.0, "option": "visual", "vector": [0.0, 0.0, 2.0]},
            {"start": 2.0, "end": 3.0, "option": "text_in_video", "vector": [1.0, 1.0, 0.0], "text": "SALE"},
        ]},
        {"media_id": "m", "chunk": {"seq": 2, "final": True, "total": 3}, "segments": [
            {"start": 4.0, "end": 6.0, "option": "visual", "vector": [0.0, 1.0, 0.0]},
        ]},
    ]


# ---- SegmentArrays ---------------------------------------------------------------------------

def test_arrays_normalise_and_mask_missing_vectors() -> None:
    segs = merge_chunks(_chunks())
    a = SegmentArrays.from_segments(segs)
    assert a.n == 5 and a.dim == 3
    assert [float(x) for x in a.starts] == [0.0, 0.0, 2.0, 2.0, 4.0]
    assert a.options.tolist() == [0, 1, 0, 2, 0]  # canonical order: start, then option code
    assert a.has_vector.tolist() == [True, False, True, True, True]
    assert a.vectors.dtype == np.float32
    np.testing.assert_allclose(a.vectors[0], [0.6, 0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose(a.vectors[1], [0.0, 0.0, 0.0])  # missing -> zero row
    np.testing.assert_allclose(np.linalg.norm(a.vectors[a.has_vector], axis=1), 1.0, rtol=1e-6)
    assert a.texts == ("", "hello there", "", "SALE", "")
    assert a.thumbnails == ("t0", None, None, None, None)
    np.testing.assert_allclose(a.durations, [2, 2, 2, 1, 2])


def test_zero_vector_counts_as_missing() -> None:
    a = SegmentArrays.from_segments([{"start": 0, "end": 1, "option": "visual", "vector": [0.0, 0.0]}])
    assert a.has_vector.tolist() == [False] and a.dim == 2


def test_empty_and_vectorless() -> None:
    assert SegmentArrays.from_segments([]).n == 0
    a = SegmentArrays.from_segments([{"start": 0, "end": 1, "option": "conversation", "text": "x"}], dim=8)
    assert a.vectors.shape == (1, 8) and not a.has_vector.any()


@pytest.mark.parametrize("bad", [
    [{"start": 0, "end": 1, "option": "audio"}],
    [{"start": 2, "end": 1, "option": "visual"}],
    [{"start": 0, "option": "visual"}],
    [{"start": float("nan"), "end": 1, "option": "visual"}],
    [{"start": 0, "end": 1, "option": "visual", "vector": [1.0, float("inf")]}],
    [{"start": 0, "end": 1, "option": "visual", "vector": [1.0, 0.0]},
     {"start": 1, "end": 2, "option": "visual", "vector": [1.0, 0.0, 0.0]}],
])
def test_bad_segments_raise_value_error(bad: list[dict]) -> None:
    with pytest.raises(ValueError):
        SegmentArrays.from_segments(bad)


def test_dim_is_enforced() -> None:
    with pytest.raises(ValueError):
        SegmentArrays.from_segments([{"start": 0, "end": 1, "option": "visual", "vector": [1.0, 0.0]}], dim=3)


# ---- merge_chunks / content_hash -------------------------------------------------------------

def test_out_of_order_and_duplicated_chunks_assemble_identically() -> None:
    chunks = _chunks()
    reference = merge_chunks(chunks)
    ref_hash = content_hash(reference)
    for perm in itertools.permutations(chunks):
        for extra in ([], [perm[0]], list(perm)):
            got = merge_chunks(list(perm) + extra)
            assert got == reference
            assert content_hash(got) == ref_hash
    assert [(s["start"], s["option"]) for s in reference] == [
        (0.0, "visual"), (0.0, "conversation"), (2.0, "visual"), (2.0, "text_in_video"), (4.0, "visual")]


def test_duplicate_seq_with_copied_dicts_is_idempotent() -> None:
    chunks = _chunks()
    copies = [{**c, "segments": [dict(s) for s in c["segments"]]} for c in chunks]
    assert content_hash(merge_chunks(chunks + copies)) == content_hash(merge_chunks(chunks))
    assert len(merge_chunks(chunks + copies)) == 5


def test_conflicting_duplicate_is_resolved_independently_of_order() -> None:
    bare = {"chunk": {"seq": 0, "final": True}, "segments": [{"start": 0, "end": 1, "option": "visual"}]}
    full = {"chunk": {"seq": 0, "final": True},
            "segments": [{"start": 0, "end": 1, "option": "visual", "vector": [1.0, 0.0]}]}
    assert merge_chunks([bare, full]) == merge_chunks([full, bare]) == full["segments"]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(3)), st.lists(st.integers(0, 2), max_size=4))
def test_hash_is_order_and_redelivery_invariant(perm: list[int], dups: list[int]) -> None:
    chunks = _chunks()
    stream = [chunks[i] for i in perm] + [chunks[i] for i in dups]
    assert content_hash(merge_chunks(stream)) == content_hash(merge_chunks(chunks))


def test_hash_of_dicts_equals_hash_of_arrays_in_any_row_order() -> None:
    segs = merge_chunks(_chunks())
    assert content_hash(segs) == content_hash(SegmentArrays.from_segments(segs))
    assert content_hash(segs[::-1]) == content_hash(segs)


@pytest.mark.parametrize("change", [
    lambda s: s[0].update(start=0.5),
    lambda s: s[0].update(end=2.5),
    lambda s: s[0].update(vector=[3.0, 4.0, 0.001]),
    lambda s: s[1].update(text="hello  there"),
    lambda s: s[1].update(option="text_in_video"),
    lambda s: s[0].update(thumbnail_url="t1"),
    lambda s: s[0].pop("vector"),
    lambda s: s.pop(),
])
def test_hash_changes_with_content(change) -> None:
    segs = [dict(s) for s in merge_chunks(_chunks())]
    before = content_hash(segs)
    change(segs)
    assert content_hash(segs) != before


def test_hash_ignores_int_vs_float_times() -> None:
    a = [{"start": 0, "end": 2, "option": "visual", "vector": [1, 0]}]
    b = [{"start": 0.0, "end": 2.0, "option": "visual", "vector": [1.0, 0.0]}]
    assert content_hash(a) == content_hash(b)


# ---- completeness ----------------------------------------------------------------------------

def test_chunk_info() -> None:
    assert chunk_info(_chunks()) == ({0, 1, 2}, 2, 3)
    assert chunk_info(_chunks()[:2]) == ({0, 1}, None, None)
    assert chunk_info([{"segments": []}]) == ({0}, 0, 1)  # an unchunked event is whole


@pytest.mark.parametrize("seqs, final, total, status", [
    ({0, 1, 2}, 2, None, "complete"),
    ({0, 1, 2}, 2, 3, "complete"),
    ({0}, 0, None, "complete"),
    ({0, 1, 2}, None, None, "waiting"),   # final not seen yet
    ({0, 1, 2}, None, 3, "waiting"),      # total alone is not the final chunk
    ({0, 2}, 2, None, "waiting"),         # gap
    ({1, 2}, 2, 3, "waiting"),            # seq 0 missing
    (set(), None, None, "waiting"),
    ({0, 1, 2, 3}, 2, None, "inconsistent"),  # a chunk after the final one
    ({0, 1, 2}, 2, 4, "inconsistent"),        # total disagrees with final
    ({0, 5}, None, 3, "inconsistent"),        # seq beyond total
    ({-1, 0}, 0, None, "inconsistent"),
])
def test_completeness_rules(seqs: set[int], final: int | None, total: int | None, status: str) -> None:
    assert chunk_status(seqs, final, total) == status
    assert is_complete(seqs, final, total) is (status == "complete")


def test_completeness_from_out_of_order_stream() -> None:
    chunks = _chunks()
    seen: list[dict] = []
    states = []
    for c in (chunks[2], chunks[0], chunks[2], chunks[1]):
        seen.append(c)
        states.append(is_complete(*chunk_info(seen)))
    assert states == [False, False, False, True]
