"""Bounded work per filter: depth/operand/node limits without recursion, and a linear ``Like``."""
import re
import sys
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.core.filters import FilterError, FilterLimits, compile_where, validate_where
from app.core.like import compile_like
from app.schemas.deadletter import REASONS

LEAF = {"path": ["n"], "operator": "IsNull", "valueBoolean": True}


def nest(levels, node=LEAF, op="Not"):
    for _ in range(levels):
        node = {"operator": op, "operands": [node]}
    return node


def too_complex(where, limits=FilterLimits()):
    with pytest.raises(FilterError) as err:
        compile_where(where, limits=limits)
    assert err.value.reason == "filter_too_complex"
    return err.value


def test_reasons_are_dead_letter_reasons():
    assert {"invalid_filter", "filter_too_complex"} <= set(REASONS)
    with pytest.raises(FilterError) as err:
        validate_where({"path": ["a"], "operator": "Eq", "valueInt": 1})
    assert err.value.reason == "invalid_filter"


def test_depth_limit_is_inclusive():
    assert compile_where(nest(31))({}) is False  # 31 Nots + leaf = depth 32: allowed
    err = too_complex(nest(32))
    assert "deeper than 32" in err.message
    assert err.path == ".".join(["operands[0]"] * 32)
    assert compile_where(nest(3), limits=FilterLimits(max_depth=4))({}) is False
    too_complex(nest(4), FilterLimits(max_depth=4))


@pytest.mark.parametrize("levels", [400, 10_000, sys.getrecursionlimit() * 5])
def test_deep_nesting_is_refused_not_a_recursion_error(levels):
    # The reproducer: 400 nested Not raised RecursionError and crashed the agent.
    for op in ("Not", "And", "Or"):
        err = too_complex(nest(levels, op=op))
        assert "deeper than 32" in err.message


def test_self_referencing_filter_is_refused():
    loop = {"operator": "Not", "operands": []}
    loop["operands"].append(loop)
    too_complex(loop)


def test_operand_limit():
    ok = {"operator": "Or", "operands": [LEAF] * 256}
    assert compile_where(ok)({"n": None}) is True
    err = too_complex({"operator": "Or", "operands": [LEAF] * 257})
    assert err.path == "operands" and "257 operands, the limit is 256" in err.message
    inner = {"operator": "And", "operands": [{"operator": "Or", "operands": [LEAF] * 3}]}
    err = too_complex(inner, FilterLimits(max_operands=2))
    assert err.path == "operands[0].operands"


def test_node_limit_counts_every_node():
    # 1 root + 10 Ors + 10*99 leaves = 1001 nodes, each compound under the operand limit.
    wide = {"operator": "And", "operands": [{"operator": "Or", "operands": [LEAF] * 99}] * 10}
    assert "more than 1000 nodes" in too_complex(wide).message
    fits = {"operator": "And", "operands": [{"operator": "Or", "operands": [LEAF] * 98}] * 10}
    assert compile_where(fits)({"n": 1}) is False  # 991 nodes
    small = FilterLimits(max_nodes=3)
    assert compile_where({"operator": "And", "operands": [LEAF, LEAF]}, limits=small)({})
    too_complex({"operator": "And", "operands": [LEAF, LEAF, LEAF]}, small)


def test_like_pattern_length_limit():
    like = lambda p: {"path": ["t"], "operator": "Like", "valueText": p}  # noqa: E731
    assert compile_where(like("a" * 256))({"t": "A" * 256})
    err = too_complex(like("*" * 257))
    assert err.path == "valueText" and "257 characters, the limit is 256" in err.message
    too_complex({"operator": "Or", "operands": [LEAF, like("ab")]}, FilterLimits(max_like_pattern=1))


def test_malformed_filters_inside_limits_stay_invalid_filter():
    with pytest.raises(FilterError) as err:
        compile_where({"operator": "Or", "operands": ["oops"]})
    assert err.value.reason == "invalid_filter" and err.value.path == "operands[0]"


@pytest.mark.parametrize("kwargs", [{"max_depth": 0}, {"max_depth": 101}, {"max_operands": 0},
                                    {"max_nodes": 0}, {"max_like_pattern": 0}])
def test_limits_reject_nonsense_settings(kwargs):
    with pytest.raises(ValueError):
        FilterLimits(**kwargs)


def test_limits_are_frozen():
    with pytest.raises(AttributeError):
        FilterLimits().max_depth = 5  # type: ignore[misc]


# --- Like: the linear matcher against the old regex translation (the reference) -----------

def reference_like(pattern, value):
    """The previous implementation: a backtracking regex. Only ever run on short strings."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL) is not None


# Letters in both cases, regex metacharacters, a newline, and characters whose case-insensitive
# matching is special in Python's re (Kelvin sign ~ k, long s ~ s, dotless i, sharp s, Greek).
ALPHABET = "abkAKs*?.+\n\u212a\u017f\u0131\u0130\u00df\u03c3\u03c2\u03a3"
VALUES = "abkAKs*?.\n\u212a\u017f\u0131\u0130\u00df\u03c3\u03c2\u03a3"


@settings(max_examples=1000, deadline=None)
@given(st.text(ALPHABET, max_size=10), st.text(VALUES, max_size=14))
@example("*a*", "bab")
@example("a*a", "a")
@example("*?*", "")
@example("k*s", "\u212aisS")
@example("**", "")
def test_like_agrees_with_the_reference(pattern, value):
    assert compile_like(pattern)(value) is reference_like(pattern, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "ab", "?", "a?b", "ba"]), min_size=1, max_size=5),
       st.text("ab", max_size=40))
def test_like_agrees_on_star_separated_segments(segments, value):
    # Patterns built from segments that overlap each other, the case greedy-leftmost must get right.
    for pattern in ("*".join(segments), "*" + "*".join(segments) + "*", "*".join(segments) + "*"):
        assert compile_like(pattern)(value) is reference_like(pattern, value)


def test_like_on_a_megabyte_value_is_linear():
    # '*a*b*c*...*z*' on 1 MB that has all letters but z: the old regex backtracked for minutes.
    pattern = "*" + "*".join("abcdefghijklmnopqrstuvwxyz") + "*"
    value = "abcdefghijklmnopqrstuvwxy" * 42_000  # 1.05 MB, no 'z'
    matcher = compile_like(pattern)
    started = time.perf_counter()
    assert matcher(value) is False
    assert matcher(value + "Z") is True  # case-insensitive, z only at the very end
    assert compile_like("*BREAKING*NEWS*")("breaking " * 100_000 + "news") is True
    assert compile_like("*breaking*news*")("breaking " * 100_000) is False
    # Not a timing assertion (the machine is shared); a generous bound only catches a return
    # to super-linear matching, which took minutes here.
    assert time.perf_counter() - started < 30


def test_like_through_the_filter_on_a_list_and_long_values():
    where = {"path": ["tags"], "operator": "Like", "valueText": "*kafka?streams*"}
    f = compile_where(where)
    assert f({"tags": ["x" * 500_000, "y" * 500_000 + "Kafka-Streams"]})
    assert not f({"tags": ["x" * 500_000, "kafkastreams"]})
