"""Weaviate where-filters: one test per operator, edge semantics, invalid filters."""
from datetime import datetime, timezone

import pytest

from app.core.filters import FilterError, compile_where, validate_where

ART = {"title": "Kafka Streams in Action", "words": 1200, "score": 4.5, "draft": False,
       "tags": ["kafka", "streams"], "ratings": [3, 5], "published": "2021-06-01T12:00:00Z",
       "author": {"name": "Ada", "age": 36}, "nothing": None}


def leaf(prop, op, **value):
    return {"path": [prop], "operator": op, **value}


def match(where, props=ART):
    return compile_where(where)(props)


def test_equal():
    assert match(leaf("title", "Equal", valueText="Kafka Streams in Action"))
    assert not match(leaf("title", "Equal", valueText="kafka streams in action"))  # exact
    assert match(leaf("words", "Equal", valueInt=1200))
    assert match(leaf("score", "Equal", valueNumber=4.5))
    assert match(leaf("draft", "Equal", valueBoolean=False))
    assert match(leaf("title", "Equal", valueString="Kafka Streams in Action"))  # alias
    assert match(leaf("published", "Equal", valueDate="2021-06-01T14:00:00+02:00"))


def test_not_equal():
    assert match(leaf("words", "NotEqual", valueInt=7))
    assert not match(leaf("words", "NotEqual", valueInt=1200))
    assert match(leaf("missing", "NotEqual", valueText="x"))  # missing: NotEqual is true
    assert match(leaf("tags", "NotEqual", valueText="java"))
    assert not match(leaf("tags", "NotEqual", valueText="kafka"))  # list: not any-equal


def test_greater_than():
    assert match(leaf("words", "GreaterThan", valueInt=1199))
    assert not match(leaf("words", "GreaterThan", valueInt=1200))
    assert match(leaf("score", "GreaterThan", valueNumber=4))
    assert match(leaf("ratings", "GreaterThan", valueInt=4))  # any element
    assert match(leaf("published", "GreaterThan", valueDate="2021-01-01T00:00:00Z"))


def test_greater_than_equal():
    assert match(leaf("words", "GreaterThanEqual", valueInt=1200))
    assert not match(leaf("words", "GreaterThanEqual", valueInt=1201))
    assert match(leaf("title", "GreaterThanEqual", valueText="Kafka"))  # lexicographic


def test_less_than():
    assert match(leaf("score", "LessThan", valueNumber=5.0))
    assert not match(leaf("score", "LessThan", valueNumber=4.5))
    assert not match(leaf("published", "LessThan", valueDate="2021-06-01T12:00:00Z"))


def test_less_than_equal():
    assert match(leaf("score", "LessThanEqual", valueNumber=4.5))
    assert match(leaf("published", "LessThanEqual", valueDate="2021-06-01T12:00:00+00:00"))
    assert not match(leaf("words", "LessThanEqual", valueInt=1199))


def test_like():
    assert match(leaf("title", "Like", valueText="kafka*"))  # case-insensitive
    assert match(leaf("title", "Like", valueText="*STREAMS*"))
    assert match(leaf("title", "Like", valueText="K?fka Streams in Action"))
    assert not match(leaf("title", "Like", valueText="Kafka"))  # whole value must match
    assert not match(leaf("title", "Like", valueText="K?afka*"))
    assert match({"path": ["f"], "operator": "Like", "valueText": "a.b+(c)*"}, {"f": "A.B+(C)x"})
    assert match(leaf("tags", "Like", valueText="str*"))


def test_contains_any():
    assert match(leaf("tags", "ContainsAny", valueTextArray=["java", "kafka"]))
    assert not match(leaf("tags", "ContainsAny", valueTextArray=["java", "go"]))
    assert match(leaf("ratings", "ContainsAny", valueIntArray=[5]))
    assert match(leaf("words", "ContainsAny", valueInt=[1, 1200]))  # scalar property, scalar key
    assert not match(leaf("draft", "ContainsAny", valueIntArray=[0]))  # False is not 0


def test_contains_all():
    assert match(leaf("tags", "ContainsAll", valueTextArray=["streams", "kafka"]))
    assert not match(leaf("tags", "ContainsAll", valueTextArray=["kafka", "java"]))
    assert match(leaf("ratings", "ContainsAll", valueNumberArray=[3.0, 5]))
    assert match(leaf("draft", "ContainsAll", valueBooleanArray=[False]))
    assert match(leaf("published", "ContainsAll", valueDateArray=["2021-06-01T12:00:00Z"]))


def test_is_null():
    assert match(leaf("missing", "IsNull", valueBoolean=True))
    assert match(leaf("nothing", "IsNull", valueBoolean=True))
    assert not match(leaf("words", "IsNull", valueBoolean=True))
    assert match(leaf("words", "IsNull", valueBoolean=False))
    assert not match(leaf("missing", "IsNull", valueBoolean=False))


def test_and_or_not():
    yes, no = leaf("words", "Equal", valueInt=1200), leaf("words", "Equal", valueInt=1)
    assert match({"operator": "And", "operands": [yes, yes]})
    assert not match({"operator": "And", "operands": [yes, no]})
    assert match({"operator": "Or", "operands": [no, yes]})
    assert not match({"operator": "Or", "operands": [no, no]})
    assert match({"operator": "Not", "operands": [no]})
    nested = {"operator": "Or", "operands": [no, {"operator": "And", "operands": [yes, yes]}]}
    assert match(nested)


def test_missing_property_is_false_except_notequal_and_isnull():
    for op, value in [("Equal", {"valueInt": 1}), ("GreaterThan", {"valueInt": 1}),
                      ("LessThan", {"valueInt": 1}), ("Like", {"valueText": "*"}),
                      ("ContainsAny", {"valueIntArray": [1]}),
                      ("ContainsAll", {"valueIntArray": [1]})]:
        assert not match(leaf("missing", op, **value)), op
        assert not match(leaf("nothing", op, **value)), op


def test_type_mismatch_is_false_not_an_error():
    assert not match(leaf("title", "Equal", valueInt=3))
    assert not match(leaf("title", "GreaterThan", valueInt=3))
    assert not match(leaf("words", "Like", valueText="12*"))
    assert not match(leaf("draft", "Equal", valueInt=0))  # bool is not a number
    assert not match(leaf("words", "GreaterThan", valueDate="2021-01-01T00:00:00Z"))
    assert not match(leaf("title", "LessThan", valueDate="2021-01-01T00:00:00Z"))  # unparsable
    assert not match(leaf("author", "Equal", valueText="Ada"))  # dict vs text


def test_int_and_number_compare_numerically():
    assert match(leaf("score", "GreaterThan", valueInt=4))
    assert match(leaf("words", "Equal", valueNumber=1200.0))


def test_dates_timezone_aware():
    props = {"t": datetime(2021, 6, 1, 12, 0, tzinfo=timezone.utc), "naive": "2021-06-01T12:00:00"}
    assert match(leaf("t", "Equal", valueDate="2021-06-01T08:00:00-04:00"), props)
    assert match(leaf("naive", "Equal", valueDate="2021-06-01T12:00:00Z"), props)  # naive = UTC
    assert match(leaf("t", "LessThan", valueDate="2021-06-01t12:00:01z"), props)


def test_nested_path_and_string_path():
    assert match({"path": ["author", "name"], "operator": "Equal", "valueText": "Ada"})
    assert not match({"path": ["author", "nope"], "operator": "Equal", "valueText": "Ada"})
    assert not match({"path": ["title", "x"], "operator": "Equal", "valueText": "Ada"})
    assert match({"path": "words", "operator": "Equal", "valueInt": 1200})


def test_none_and_empty_match_everything():
    assert compile_where(None)({}) and compile_where({})({"a": 1})
    validate_where(None)


@pytest.mark.parametrize("where, path, words", [
    ({"path": ["a"], "operator": "Eq", "valueInt": 1}, "operator", "unknown operator"),
    ({"path": ["a"], "valueInt": 1}, "operator", "unknown operator"),
    ({"path": ["a"], "operator": "Equal"}, "", "exactly one value key"),
    ({"path": ["a"], "operator": "Equal", "valueInt": 1, "valueText": "1"}, "",
     "exactly one value key"),
    ({"path": ["a"], "operator": "Equal", "valueInt": "1"}, "valueInt", "integer"),
    ({"path": ["a"], "operator": "Equal", "valueInt": True}, "valueInt", "integer"),
    ({"path": ["a"], "operator": "Equal", "valueNumber": "x"}, "valueNumber", "number"),
    ({"path": ["a"], "operator": "Equal", "valueDate": "yesterday"}, "valueDate", "RFC3339"),
    ({"path": ["a"], "operator": "Equal", "valueDate": "2021-06-01T12:00:00"}, "valueDate",
     "offset"),
    ({"path": [], "operator": "Equal", "valueInt": 1}, "path", "property names"),
    ({"path": [3], "operator": "Equal", "valueInt": 1}, "path", "property names"),
    ({"operator": "Equal", "valueInt": 1}, "path", "property names"),
    ({"path": ["a"], "operator": "Like", "valueInt": 1}, "valueInt", "valueText"),
    ({"path": ["a"], "operator": "IsNull", "valueText": "x"}, "valueText", "valueBoolean"),
    ({"path": ["a"], "operator": "GreaterThan", "valueBoolean": True}, "valueBoolean",
     "booleans"),
    ({"path": ["a"], "operator": "Equal", "valueTextArray": ["x"]}, "valueTextArray",
     "ContainsAny"),
    ({"path": ["a"], "operator": "ContainsAny", "valueTextArray": []}, "valueTextArray",
     "non-empty"),
    ({"path": ["a"], "operator": "ContainsAll", "valueText": "x"}, "valueText", "non-empty list"),
    ({"path": ["a"], "operator": "ContainsAny", "valueIntArray": [1, "2"]}, "valueIntArray[1]",
     "integer"),
    ({"path": ["a"], "operator": "Equal", "valueInteger": 1}, "valueInteger", "unknown key"),
    ({"operator": "And", "operands": []}, "operands", "non-empty"),
    ({"operator": "And"}, "operands", "non-empty"),
    ({"operator": "Not", "operands": [{"path": ["a"], "operator": "IsNull",
                                       "valueBoolean": True}] * 2}, "operands", "exactly one"),
    ({"operator": "Or", "operands": [{"path": ["a"], "operator": "IsNull", "valueBoolean": True}],
      "valueInt": 1}, "valueInt", "not allowed"),
    ({"operator": "Or", "operands": [{"path": ["a"], "operator": "Equal", "valueInt": 1},
                                     {"path": ["a"], "operator": "Equal", "valueInt": 1.5}]},
     "operands[1].valueInt", "integer"),
    ({"operator": "And", "operands": [{"path": ["a"], "operator": "Equal", "valueInt": 1},
                                      {"operator": "Or", "operands": ["oops"]}]},
     "operands[1].operands[0]", "must be an object"),
    ({"operator": "And", "operands": [{"operator": "Or", "operands": [
        {"path": ["a"], "operator": "Wat", "valueInt": 1}]}]},
     "operands[0].operands[0].operator", "unknown operator"),
    (["not", "a", "dict"], "", "must be an object"),
])
def test_invalid_filters_report_path(where, path, words):
    with pytest.raises(FilterError) as err:
        validate_where(where)
    assert err.value.path == path
    assert words in err.value.message
    assert isinstance(err.value, ValueError)
    with pytest.raises(FilterError):
        compile_where(where)
