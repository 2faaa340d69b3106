"""Decoding: every bad payload maps to one specific, machine-readable reason."""

import base64

import numpy as np
import pytest

from app.classify.codec import Rejected, decode
from app.classify.deadletter import dead_letter
from app.classify.outcome import Record
from app.schemas.deadletter import DeadLetter
from app.schemas.objects import ObjectEvent
from app.schemas.vectors import encode_vector


def reason(raw: bytes | None, limit: int = 10_000) -> tuple[str, str | None]:
    with pytest.raises(Rejected) as e:
        decode(raw, ObjectEvent, limit)
    return e.value.reason, e.value.path


def test_valid_json_list_and_base64_vectors_decode_to_the_same_array():
    a = decode(b'{"id": "o", "class": "C", "vector": [0.5, -1, 2]}', ObjectEvent, 1000)
    b = decode(('{"id": "o", "class": "C", "vector": "%s"}' % encode_vector([0.5, -1, 2])).encode(), ObjectEvent, 1000)
    assert a.vector.dtype == np.float32 and a.vector.tolist() == b.vector.tolist() == [0.5, -1.0, 2.0]


@pytest.mark.parametrize("raw, want", [
    (None, ("empty_value", None)),
    (b"{not json", ("invalid_json", None)),
    (b"[1, 2]", ("invalid_json", None)),
    (b'{"class": "C", "vector": [1]}', ("schema_violation", "id")),
    (b'{"id": "o", "class": "C", "vector": [1, "x"]}', ("schema_violation", "vector")),
    (b'{"id": "o", "class": "C"}', ("schema_violation", None)),
    (b'{"id": "o", "class": "C", "vector": "!!!"}', ("schema_violation", "vector")),
    (b'{"id": "o", "class": "C", "vector": "AAAA AA=="}', ("schema_violation", "vector")),
])
def test_bad_payloads_get_specific_reasons(raw, want):
    assert reason(raw) == want


def test_nan_in_base64_vector_is_vector_not_finite():
    raw = ('{"id": "o", "class": "C", "vector": "%s"}' % encode_vector([1.0, float("nan")])).encode()
    assert reason(raw) == ("vector_not_finite", "vector")


def test_payload_over_the_limit():
    assert reason(b'{"id": "' + b"x" * 200 + b'"}', limit=100) == ("payload_too_large", None)


def test_dead_letter_keeps_the_original_bytes_and_source():
    class Msg:
        topic, partition, offset, timestamp = "labelstream.objects", 3, 42, 1700000000.5
        key, value = b"o1", b"\xff\xfe not json"

    dl = DeadLetter.model_validate_json(dead_letter(Record.of(Msg), Rejected("invalid_json", "nope"), 1 << 20))
    assert base64.b64decode(dl.value_b64) == Msg.value and dl.key == "o1"
    assert (dl.source.topic, dl.source.partition, dl.source.offset, dl.source.timestamp) == ("labelstream.objects", 3, 42, 1700000000500)
