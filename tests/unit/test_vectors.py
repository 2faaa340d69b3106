"""Base64 vectors are decoded by pybase64 (SIMD): ``b64decode`` must keep the standard library's rules
exactly, on hostile strings as on good ones (same bytes, or refused alike). (pybase64 alone does not:
it refuses ``"0000="``, which the standard library decodes.)"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pybase64
from hypothesis import given, settings
from hypothesis import strategies as st

from app.schemas.vectors import b64decode, encode_vector, parse_vector

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# valid-looking text with the characters that break it: padding in the wrong place, whitespace,
# URL-safe letters, non-ASCII
HOSTILE = st.text(alphabet=st.sampled_from(list(B64) + ["=", "=", " ", "\n", "-", "_", "é", "\x00"]), max_size=64)


def stdlib(s: str) -> bytes | str:
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return "refused"


def ours(s: str) -> bytes | str:
    try:
        return b64decode(s)
    except (binascii.Error, ValueError):  # the exceptions parse_vector turns into vector_base64
        return "refused"


@settings(max_examples=3000, deadline=None)
@given(HOSTILE)
def test_hostile_base64_is_decoded_or_refused_as_the_standard_library_does(s):
    assert ours(s) == stdlib(s)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_every_encoding_round_trips_and_equals_the_standard_librarys(raw):
    s = base64.b64encode(raw).decode()
    assert ours(s) == raw
    assert pybase64.b64encode(raw).decode() == s


def test_vectors_encode_and_parse_back():
    v = np.random.default_rng(1).normal(size=384).astype(np.float32)
    text = encode_vector(v)
    assert text == base64.b64encode(v.astype("<f4").tobytes()).decode()
    assert np.array_equal(parse_vector(text), v)
