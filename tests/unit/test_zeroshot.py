"""Zero-shot scoring with hand-made vectors: winners, matched prompts, output shapes, hierarchy."""

import numpy as np
import pytest

from app.core.taxonomy import compile_taxonomy
from app.core.zeroshot import (ScoreError, best_paths, candidate_mask, decide, model_output,
                               multi_head_output, nearest, score, weaviate_zeroshot)
from app.schemas.taxonomy import Taxonomy


def compiled(classes, **kw):
    return compile_taxonomy(Taxonomy(name="t", version=kw.pop("version", 1), vectorizer="none",
                                     classes=classes, **kw))


def cls(name, vecs, parent=None, head=None, prompts=None):
    return {"name": name, "prompts": prompts or [f"{name} prompt {i}" for i in range(len(vecs))],
            "prompt_vectors": vecs, "parent": parent, "head": head}


FLAT = [cls("cat", [[1, 0, 0], [0.6, 0.8, 0]], prompts=["a cat", "a kitten"]),
        cls("dog", [[0, 1, 0]], prompts=["a dog"]),
        cls("bird", [[0, 0, 1]], prompts=["a bird"])]

TREE = [cls("sport", [], prompts=[]),
        cls("football", [[1, 0, 0, 0]], parent="sport"),
        cls("ball", [], parent="sport", prompts=[]),
        cls("tennis", [[0, 1, 0, 0]], parent="ball"),
        cls("golf", [[0, 0.8, 0.6, 0]], parent="ball"),
        cls("news", [[0, 0, 0, 1], [0, 0, 1, 0]])]


def test_flat_winner_matched_prompt_and_exact_cosines():
    ct = compiled(FLAT)
    x = np.array([[0.5, 0.9, 0.0], [0.0, 0.1, -2.0], [3.0, 0.0, 0.0]])
    s = score(x, ct)
    n0 = np.hypot(0.5, 0.9)
    assert s.similarity[0].tolist() == pytest.approx([1.02 / n0, 0.9 / n0, 0.0], abs=1e-6)
    res = nearest(s)
    assert [r["class"] for r in res] == ["cat", "dog", "cat"]
    assert (res[0]["prompt"], res[0]["prompt_index"], res[0]["prompt_class"]) == ("a kitten", 1, "cat")
    assert (res[2]["prompt"], res[2]["prompt_index"]) == ("a cat", 0)
    assert res[0]["distance"] == pytest.approx((1 - 1.02 / n0) / 2, abs=1e-6)  # one cosine distance (app.core.knn)
    assert res[0]["path"] == ["cat"]


def test_prompt_tie_picks_first_prompt():
    ct = compiled([cls("a", [[1, 0], [1, 0]]), cls("b", [[0, 1]])])
    r = nearest(score(np.array([[1.0, 0.0]]), ct))[0]
    assert (r["class"], r["prompt_index"]) == ("a", 0)


def test_batch_equals_one_at_a_time_and_1d_input():
    ct = compiled(TREE)
    X = np.random.default_rng(0).normal(size=(20, 4))
    s = score(X, ct)
    for i in range(20):
        one = score(X[i], ct)
        assert np.allclose(one.similarity[0], s.similarity[i], atol=1e-6)
        assert (one.prompt[0] == s.prompt[i]).all()
        assert np.allclose(one.probability[0], s.probability[i], atol=1e-9)


def test_zero_vector_and_empty_batch():
    ct = compiled(FLAT)
    s = score(np.zeros((1, 3)), ct)
    assert s.similarity.tolist() == [[0.0, 0.0, 0.0]]
    assert s.probability[0] == pytest.approx([1 / 3] * 3)
    e = score(np.zeros((0, 3)), ct)
    assert len(e) == 0 and e.similarity.shape == (0, 3) and model_output(e) == []


def test_bad_vectors():
    ct = compiled(FLAT)
    with pytest.raises(ScoreError) as err:
        score(np.zeros((2, 4)), ct)
    assert err.value.reason == "vector_dimension_mismatch"
    with pytest.raises(ScoreError) as err:
        score(np.array([[np.nan, 0, 0]]), ct)
    assert err.value.reason == "vector_not_finite"


def test_model_output_lists_every_class_with_zeros():
    ct = compiled(FLAT, temperature=0.001)
    out = model_output(score(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), ct))
    assert len(out) == 2
    assert [d["name"] for d in out[0]] == ["cat", "dog", "bird"]
    assert out[0][0]["probability"] == pytest.approx(1.0)
    assert out[0][1]["probability"] == 0.0 and out[0][2]["probability"] == 0.0  # underflow: still listed
    assert set(out[1][0]) == {"name", "probability"}
    assert sum(d["probability"] for d in out[1]) == pytest.approx(1.0, abs=1e-6)


def test_softmax_uses_taxonomy_temperature():
    ct = compiled(FLAT, temperature=0.5)
    s = score(np.array([[1.0, 0.0, 0.0]]), ct)
    z = np.array([1.0, 0.0, 0.0]) / 0.5
    assert s.probability[0] == pytest.approx(np.exp(z) / np.exp(z).sum(), abs=1e-7)
    assert s.temperature == 0.5
    assert score(np.array([[1.0, 0, 0]]), ct, temperature=2.0).temperature == 2.0


def test_hierarchy_parent_is_max_of_children_recursively():
    ct = compiled(TREE)
    x = np.array([[0.1, 0.5, 0.7, 0.2]])
    s = score(x, ct)
    idx = ct.class_index
    sim = dict(zip(ct.class_names, s.similarity[0]))
    assert sim["ball"] == max(sim["tennis"], sim["golf"])
    assert sim["sport"] == max(sim["football"], sim["ball"])
    xn = x[0] / np.linalg.norm(x[0])
    assert sim["golf"] == pytest.approx(xn @ [0, 0.8, 0.6, 0], abs=1e-6)
    assert sim["news"] == pytest.approx(max(xn[3], xn[2]), abs=1e-6)
    # The parent reports the prompt that made it win (its best leaf's).
    assert ct.prompts[s.prompt[0, idx["sport"]]] == "golf prompt 0"
    # Parent probability = sum of its leaves'; leaves of the (single) head sum to 1.
    p = dict(zip(ct.class_names, s.probability[0]))
    assert p["ball"] == pytest.approx(p["tennis"] + p["golf"], abs=1e-12)
    assert p["sport"] == pytest.approx(p["football"] + p["tennis"] + p["golf"], abs=1e-12)
    assert p["sport"] + p["news"] == pytest.approx(1.0, abs=1e-9)


def test_best_path_category_to_subcategory():
    ct = compiled(TREE)
    s = score(np.array([[0.1, 0.5, 0.7, 0.2], [0.0, 0.0, 0.0, 1.0]]), ct)
    paths = best_paths(s)
    assert [p["path"] for p in paths[0]] == [["sport", "ball", "golf"]]
    assert paths[1][0]["path"] == ["news"]
    first = paths[0][0]
    ids = [ct.class_index[n] for n in first["path"]]
    assert first["scores"] == pytest.approx(s.probability[0, ids].tolist())
    assert first["similarities"] == pytest.approx([s.similarity[0, ids[-1]]] * 3)
    assert first["scores"][0] >= first["scores"][1] >= first["scores"][2]
    assert (first["head"], first["prompt"], first["prompt_index"]) == ("default", "golf prompt 0", 0)


def test_nearest_prefers_deepest_on_ties_and_targetwhere_on_parents():
    ct = compiled(TREE)
    s = score(np.array([[0.1, 0.5, 0.7, 0.2]]), ct)
    assert nearest(s)[0]["class"] == "golf"
    cats = candidate_mask(ct, {"sport", "news"})
    r = nearest(s, cats)[0]
    assert (r["class"], r["prompt"], r["prompt_class"]) == ("sport", "golf prompt 0", "golf")


def test_weaviate_targetwhere_limits_candidates():
    ct = compiled(TREE)
    s = score(np.array([[0.1, 0.5, 0.7, 0.2]]), ct)
    # A set of allowed names: golf (the best) excluded -> the next best allowed class.
    out = weaviate_zeroshot(s, ["ofCategory"], target_where={"football", "tennis", "news"})
    xn = np.array([0.1, 0.5, 0.7, 0.2]) / np.linalg.norm([0.1, 0.5, 0.7, 0.2])
    assert out[0]["ofCategory"]["class"] == "news" and xn[2] > xn[1]
    # A predicate on class properties (what a compiled where-filter receives).
    out = weaviate_zeroshot(s, ["p"], target_where=lambda props: props["parent"] == "ball" and props["leaf"])
    assert out[0]["p"]["class"] == "golf"
    out = weaviate_zeroshot(s, ["p"], target_where=lambda props: props["path"][0] == "sport" and props["depth"] == 1)
    assert out[0]["p"]["class"] == "ball"
    assert weaviate_zeroshot(s, ["p"], target_where=set())[0] == {"p": None}


def test_weaviate_property_per_head():
    ct = compiled([cls("nsfw", [[1, 0]], head="nsfw"), cls("sfw", [[0, 1]], head="nsfw"),
                   cls("gun", [[0.9, 0.1]], head="gun"), cls("no_gun", [[0.1, 0.9]], head="gun")])
    s = score(np.array([[0.0, 1.0]]), ct)
    out = weaviate_zeroshot(s, {"safety": "nsfw", "weapons": "gun", "any": None})[0]
    assert (out["safety"]["class"], out["weapons"]["class"], out["any"]["class"]) == ("sfw", "no_gun", "sfw")
    with pytest.raises(KeyError):
        weaviate_zeroshot(s, {"x": "missing-head"})


def test_multi_head_each_head_sums_to_one():
    ct = compiled([
        cls("general_nsfw", [[1, 0, 0, 0]], head="nsfw"), cls("general_suggestive", [[0.7, 0.7, 0, 0]], head="nsfw"),
        cls("general_not_nsfw_not_suggestive", [[0, 1, 0, 0]], head="nsfw"),
        cls("gun_in_hand", [[0, 0, 1, 0]], head="gun"), cls("animated_gun", [[0, 0, 0.5, 0.5]], head="gun"),
        cls("gun_not_in_hand", [[0, 0, 0.2, 0.8]], head="gun"), cls("no_gun", [[0, 0, 0, 1]], head="gun"),
    ], temperature=0.1)
    X = np.random.default_rng(1).normal(size=(50, 4))
    s = score(X, ct)
    out = multi_head_output(s)
    assert len(out) == 50
    assert [d["class"] for d in out[0]] == list(ct.class_names)
    assert set(out[0][0]) == {"class", "score"}
    for row in out:
        sc = {d["class"]: d["score"] for d in row}
        assert abs(sum(sc[n] for n in ct.class_names[:3]) - 1) <= 1e-6
        assert abs(sum(sc[n] for n in ct.class_names[3:]) - 1) <= 1e-6
    hot = multi_head_output(s, temperature=0.01)
    assert max(d["score"] for d in hot[0][:3]) > max(d["score"] for d in out[0][:3])
    paths = best_paths(s)[0]
    assert [p["head"] for p in paths] == ["nsfw", "gun"]


def test_multi_head_include_parents():
    ct = compiled(TREE)
    s = score(np.array([[0.1, 0.5, 0.7, 0.2]]), ct)
    leaves = multi_head_output(s)[0]
    assert [d["class"] for d in leaves] == ["football", "tennis", "golf", "news"]
    assert sum(d["score"] for d in leaves) == pytest.approx(1.0, abs=1e-6)
    every = multi_head_output(s, include_parents=True)[0]
    assert [d["class"] for d in every] == list(ct.class_names)


def test_decide_applies_taxonomy_policies():
    ct = compiled(FLAT, temperature=0.05, policies=[
        {"action": "block", "classes": ["bird"], "min_score": 0.9},
        {"action": "review", "classes": ["dog"], "min_score": 0.5, "score": "similarity"}])
    s = score(np.array([[0, 0, 1.0], [0.1, 1.0, 0], [1.0, 0, 0]]), ct)
    d = decide(s)
    assert [x.action for x in d] == ["block", "review", "allow"]
    assert (d[0].class_name, d[0].rule) == ("bird", 0)
    assert d[1].score_kind == "similarity" and d[1].score == pytest.approx(1 / np.hypot(0.1, 1), abs=1e-6)


def test_random_taxonomies_parent_max_and_matched_prompt():
    rng = np.random.default_rng(7)
    classes = [cls("r0", [], prompts=[]), cls("r1", [], prompts=[])]
    for i in range(12):
        k = int(rng.integers(1, 4))
        classes.append(cls(f"leaf{i}", rng.normal(size=(k, 8)).tolist(), parent=f"r{i % 2}"))
    ct = compiled(classes)
    X = rng.normal(size=(30, 8))
    s = score(X, ct)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ (ct.P.T.astype(np.float64))
    for c, name in enumerate(ct.class_names):
        # The prompts of every leaf below (or equal to) the class.
        cols = [k for k in range(len(ct.prompts)) if name in ct.paths[ct.prompt_class[k]]]
        assert np.allclose(s.similarity[:, c], S[:, cols].max(axis=1), atol=1e-5)
        assert (S[np.arange(30), s.prompt[:, c]] >= S[:, cols].max(axis=1) - 1e-5).all()
