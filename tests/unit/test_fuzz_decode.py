"""Property-based fuzzing of the decode/validate path: bad input becomes a dead letter, never a crash.

Whatever bytes arrive on the objects, media or training topic, ``app.classify.codec.decode`` and
``app.classify.training.validate`` either return a model or raise ``Rejected`` with a reason
from ``REASONS`` (and a string detail, and a field path or none). Any other exception would
stop the agent's batch: that is the bug these properties look for.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from app.devtools import samples
from app.classify.codec import Rejected, decode
from app.classify.training import validate
from app.schemas.deadletter import REASONS
from app.schemas.media import MediaEvent
from app.schemas.objects import ObjectEvent
from app.settings import Settings
from app.classify.state import ModelState

LIMIT = 64 * 1024
# FUZZ_EXAMPLES=5000 for a deeper run; 300 keeps the suite fast.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# -- building blocks ------------------------------------------------------------------------
json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def f32(values) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


special_floats = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, -1e-45])
good_vector = st.lists(st.floats(-3, 3, width=32), min_size=samples.DIM, max_size=samples.DIM)
vectors = st.one_of(
    good_vector, good_vector.map(f32), good_vector.map(f32),  # the sample class's dimension
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=0, max_size=40),
    st.lists(st.floats(width=32) | special_floats, min_size=1, max_size=20).map(f32),  # NaN/inf only as float32
    st.binary(max_size=70).map(lambda b: base64.b64encode(b).decode()),  # lengths not a multiple of 4
    st.just([1.0] * samples.DIM).map(f32),
    st.integers(1, 5000).map(lambda n: f32([0.5] * n)),  # over max_vector_dim
    st.text(max_size=12),
    json_values,
)


def maybe(strategy):
    """A field value: 85 % the field's own strategy, else any JSON value or absent."""
    return st.integers(0, 19).flatmap(
        lambda i: strategy if i < 17 else json_values if i < 19 else st.just(_ABSENT))


_ABSENT = object()


def record(**fields) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({k: maybe(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not _ABSENT})


def properties() -> st.SearchStrategy:
    return st.dictionaries(st.text(max_size=6), json_scalars, max_size=3)


objects = record(id=st.text(min_size=1, max_size=20), **{"class": st.sampled_from([samples.CLASS, samples.CLASS, "Other"])},
                 properties=properties(), vector=vectors, text=st.text(max_size=20))

segment = st.tuples(st.floats(-1, 100), st.floats(-5, 50)).flatmap(  # mostly end >= start >= 0
    lambda t: record(start=st.just(t[0]), end=st.just(t[0] + t[1]),
                     option=st.sampled_from(["visual", "conversation", "text_in_video", "smell"]),
                     vector=vectors, text=st.text(max_size=10), thumbnail_url=st.text(max_size=10)))
media = record(media_id=st.text(min_size=1, max_size=12), index_id=st.text(min_size=1, max_size=8),
               kind=st.sampled_from(["image", "video", "audio", "hologram"]), mimetype=st.text(max_size=8),
               duration=st.floats(-1, 100), width=st.integers(-1, 4000), height=st.integers(-1, 4000),
               segments=st.lists(segment, max_size=4),
               chunk=record(seq=st.integers(-1, 5), final=st.booleans(), total=st.integers(-1, 5)),
               classifier=st.text(max_size=8))

# where-filters: valid shapes and near misses
leaf = record(path=st.lists(st.text(max_size=5), max_size=3) | st.text(max_size=5),
              operator=st.sampled_from(["Equal", "NotEqual", "GreaterThan", "Like", "ContainsAny", "IsNull",
                                        "Bogus", "And"]),
              valueInt=st.integers(-5, 5) | st.text(max_size=3), valueText=st.text(max_size=5),
              valueDate=st.text(max_size=25), valueTextArray=st.lists(st.text(max_size=3), max_size=3))
where = st.recursive(leaf, lambda inner: record(operator=st.sampled_from(["And", "Or", "Not", "Equal"]),
                                                operands=st.lists(inner, max_size=3)), max_leaves=5)
classifiers = record(record=st.just("classifier"), op=st.sampled_from(["upsert", "delete", "nope"]),
                     name=st.text(min_size=1, max_size=10), type=st.sampled_from(["knn", "knn", "zeroshot", "media", "magic"]),
                     **{"class": st.sampled_from([samples.CLASS, samples.CLASS, ""])},
                     classifyProperties=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=2),
                     settings=record(k=st.integers(1, 20) | st.integers(-1, 2000),
                                     distance=st.sampled_from(["cosine", "euclidean", "manhattan"])),
                     filters=st.fixed_dictionaries({}, optional={"sourceWhere": where, "trainingSetWhere": where,
                                                                  "targetWhere": where}),
                     taxonomies=st.lists(st.text(max_size=5), max_size=2))
tax_classes = st.lists(record(name=st.text(min_size=1, max_size=6), prompts=st.lists(st.text(min_size=1, max_size=12), max_size=3),
                              prompt_vectors=st.lists(st.lists(st.floats(allow_nan=False), max_size=4), max_size=3),
                              parent=st.text(max_size=6), head=st.text(max_size=4)), max_size=4)
taxonomies = record(record=st.just("taxonomy"), op=st.sampled_from(["upsert", "upsert", "delete"]),
                    name=st.text(min_size=1, max_size=8), version=st.integers(-1, 5),
                    vectorizer=st.sampled_from(["hashing", "none", "word2vec"]), temperature=st.floats(-1, 2),
                    classes=tax_classes)
examples = record(record=st.just("example"), op=st.sampled_from(["upsert", "upsert", "delete"]), id=st.text(min_size=1, max_size=10),
                  **{"class": st.sampled_from([samples.CLASS, "Other"])}, vector=vectors, text=st.text(max_size=10),
                  properties=properties(), labels=st.dictionaries(
                      st.sampled_from(["topic", "tone"]) | st.text(max_size=5),
                      st.sampled_from(["sport", "politics"]) | st.text(max_size=5) | json_scalars, min_size=1, max_size=2))
training_records = st.one_of(examples, classifiers, taxonomies,
                             record(record=st.text(max_size=10), id=st.text(max_size=5), op=st.just("delete")))


def payload(docs: st.SearchStrategy[dict]) -> st.SearchStrategy[bytes | None]:
    """JSON documents, plus raw noise, truncations, non-objects and oversized values."""
    encoded = docs.map(dumps)
    return st.one_of(
        encoded, encoded, encoded, encoded, encoded, encoded,
        encoded.flatmap(lambda b: st.integers(0, len(b)).map(lambda i: b[:i])),  # truncated JSON
        st.binary(max_size=200),
        json_values.map(dumps),  # lists, scalars, objects of anything
        st.just(None),
        st.integers(0, 100).map(lambda n: b'{"id": "x", "pad": "' + b"y" * (LIMIT + n) + b'"}'),
    )


def dumps(doc) -> bytes:
    """stdlib JSON: unlike orjson it writes integers beyond 64 bits, which producers may send."""
    return json.dumps(doc).encode()


def check(outcome) -> None:
    event(outcome.reason if isinstance(outcome, Rejected) else "accepted")  # --hypothesis-show-statistics
    if isinstance(outcome, Rejected):
        assert outcome.reason in REASONS
        assert isinstance(outcome.detail, str) and outcome.detail
        assert outcome.path is None or isinstance(outcome.path, str)


def run(fn, *args):
    """Call the decode path; return the model or the Rejected. Anything else propagates and fails."""
    try:
        return fn(*args)
    except Rejected as r:
        return r


# -- the properties ------------------------------------------------------------------------------
@FUZZ
@given(payload(objects))
def test_object_payloads_decode_or_are_rejected_with_a_reason(raw):
    out = run(decode, raw, ObjectEvent, LIMIT)
    check(out)
    if isinstance(out, ObjectEvent) and out.vector is not None:
        assert out.vector.dtype == np.float32 and np.isfinite(out.vector).all()


@FUZZ
@given(payload(media))
def test_media_payloads_decode_or_are_rejected_with_a_reason(raw):
    out = run(decode, raw, MediaEvent, LIMIT)
    check(out)
    if isinstance(out, MediaEvent):
        assert out.segments and all(s.end >= s.start for s in out.segments)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    """A model state with the sample classifier and examples (so dimensions are checked)."""
    s = ModelState(Settings(data_dir=tmp_path_factory.mktemp("fuzz-state"), max_payload_bytes=LIMIT))
    for key, value in samples.training_records(per_label=3):
        k, v = validate(key.encode(), orjson.dumps(value), s, s.taxonomy_doc)
        s.apply(k, v)
    yield s
    s.close()


@FUZZ
@given(key=st.none() | st.binary(max_size=20), raw=payload(training_records))
def test_training_records_validate_or_are_rejected_with_a_reason(state, key, raw):
    out = run(validate, key, raw, state, state.taxonomy_doc)
    check(out)
    if not isinstance(out, Rejected):
        table_key, value = out
        assert isinstance(table_key, str)
        if value is not None:
            state.apply(table_key, value)  # what validation let through, the workers can load


@pytest.mark.parametrize("raw, reason, path", [
    (orjson.dumps({"id": "a", "class": "C", "vector": f32([1.0, math.nan])}), "vector_not_finite", "vector"),
    (orjson.dumps({"id": "a", "class": "C", "vector": f32([math.inf])}), "vector_not_finite", "vector"),
    (orjson.dumps({"id": "a", "class": "C", "vector": [1.0, "x"]}), "schema_violation", "vector"),
    (b'{"id": "a", "class": "C", "vector": [NaN]}', "invalid_json", None),
    (b'{"id": "a", "pad": "' + b"y" * LIMIT + b'"}', "payload_too_large", None),
])
def test_the_reasons_the_fuzzers_rely_on(raw, reason, path):
    out = run(decode, raw, ObjectEvent, LIMIT)
    assert isinstance(out, Rejected) and (out.reason, out.path) == (reason, path)
