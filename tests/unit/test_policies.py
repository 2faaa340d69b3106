"""Moderation policies: inclusive thresholds, severity order, rule order, score kinds."""

import numpy as np
import pytest

from app.core.policies import ALLOW, PolicyError, evaluate, evaluate_batch
from app.schemas.taxonomy import PolicyRule

RULES = [
    {"action": "block", "classes": ["nsfw", "gore"], "min_score": 0.9, "name": "hard"},
    {"action": "review", "classes": ["nsfw"], "min_score": 0.6},
]
BELOW = np.nextafter  # the float just below a threshold


def test_block_exactly_at_threshold_inclusive():
    d = evaluate(RULES, {"nsfw": 0.9, "gore": 0.0})
    assert (d.action, d.rule, d.rule_name, d.class_name, d.score) == ("block", 0, "hard", "nsfw", 0.9)
    assert d.hit and d.score_kind == "probability"


def test_just_below_block_falls_to_review():
    d = evaluate(RULES, {"nsfw": float(BELOW(0.9, 0.0)), "gore": 0.0})
    assert (d.action, d.rule, d.class_name) == ("review", 1, "nsfw")


def test_review_exactly_at_and_just_below():
    assert evaluate(RULES, {"nsfw": 0.6}).action == "review"
    d = evaluate(RULES, {"nsfw": float(BELOW(0.6, 0.0))})
    assert d == ALLOW and not d.hit and d.rule is None and d.class_name is None


def test_any_listed_class_fires_and_reports_the_highest():
    d = evaluate(RULES, {"nsfw": 0.1, "gore": 0.95})
    assert (d.action, d.class_name, d.score) == ("block", "gore", 0.95)
    d = evaluate(RULES, {"nsfw": 0.97, "gore": 0.95})
    assert d.class_name == "nsfw"
    d = evaluate(RULES, {"nsfw": 0.95, "gore": 0.95})
    assert d.class_name == "nsfw"  # tie: first listed


def test_most_severe_wins_regardless_of_order():
    rules = [{"action": "review", "classes": ["a"], "min_score": 0.1},
             {"action": "block", "classes": ["a"], "min_score": 0.5}]
    assert evaluate(rules, {"a": 0.7}).rule == 1
    assert evaluate(rules, {"a": 0.3}).rule == 0


def test_equal_severity_first_rule_wins():
    rules = [{"action": "review", "classes": ["a"], "min_score": 0.5, "name": "first"},
             {"action": "review", "classes": ["b"], "min_score": 0.1, "name": "second"}]
    assert evaluate(rules, {"a": 0.9, "b": 0.9}).rule_name == "first"
    assert evaluate(rules, {"a": 0.2, "b": 0.9}).rule_name == "second"


def test_explicit_allow_rule_never_beats_review_and_is_no_hit():
    rules = [{"action": "allow", "classes": ["safe"], "min_score": 0.5},
             {"action": "review", "classes": ["nsfw"], "min_score": 0.5}]
    d = evaluate(rules, {"safe": 0.9, "nsfw": 0.1})
    assert (d.action, d.rule, d.hit) == ("allow", 0, False)
    assert evaluate(rules, {"safe": 0.9, "nsfw": 0.5}).action == "review"


def test_no_rules_and_unknown_classes_allow():
    assert evaluate([], {"nsfw": 1.0}) == ALLOW
    assert evaluate([{"action": "block", "classes": ["x"], "min_score": 0.0}], {"nsfw": 1.0}) == ALLOW


def test_similarity_rules_read_similarities():
    rules = [PolicyRule(action="block", classes=["nsfw"], min_score=0.3, score="similarity")]
    d = evaluate(rules, {"nsfw": 0.01}, similarities={"nsfw": 0.3})
    assert (d.action, d.score, d.score_kind) == ("block", 0.3, "similarity")
    assert evaluate(rules, {"nsfw": 0.99}, similarities={"nsfw": float(BELOW(0.3, 0.0))}).action == "allow"
    with pytest.raises(PolicyError):
        evaluate(rules, {"nsfw": 0.99})


def test_negative_similarity_threshold():
    rules = [{"action": "review", "classes": ["a"], "min_score": -0.2, "score": "similarity"}]
    assert evaluate(rules, {}, similarities={"a": -0.2}).action == "review"
    assert evaluate(rules, {}, similarities={"a": -0.21}).action == "allow"


def test_batch_matches_single_and_to_dict():
    names = ["nsfw", "gore", "safe"]
    prob = np.array([[0.9, 0.0, 0.1], [0.6, 0.3, 0.1], [0.59, 0.4, 0.01], [0.2, 0.9, 0.0]])
    batch = evaluate_batch(RULES, names, prob)
    singles = [evaluate(RULES, dict(zip(names, row))) for row in prob.tolist()]
    assert batch == singles
    assert [d.action for d in batch] == ["block", "review", "allow", "block"]
    assert batch[3].to_dict() == {"action": "block", "rule": 0, "rule_name": "hard", "class": "gore",
                                  "score": 0.9, "score_kind": "probability"}


def test_nan_scores_never_fire_or_hide_others():
    d = evaluate(RULES, {"nsfw": float("nan"), "gore": 0.95})
    assert (d.action, d.class_name) == ("block", "gore")
