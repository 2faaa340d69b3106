"""Moderation policies: ordered rules that map class scores to an action (block/review/allow).

Rules (:class:`~app.schemas.taxonomy.PolicyRule`) are evaluated as follows:

* a rule **fires** when at least one of its classes has ``score >= min_score`` (inclusive);
  the score read is the rule's ``score`` field: ``probability`` (default: the head softmax;
  a parent class's probability is the sum of its leaves') or ``similarity`` (raw cosine);
  a class absent from the scores never fires (compiled taxonomies reject unknown classes);
* of the firing rules the **most severe action wins** (``block > review > allow``); among
  equally severe rules the **earliest** wins. Within the winning rule the reported class is
  its highest-scoring class (earliest listed on a tie);
* no rule fires -> ``allow`` with ``rule=None``. A *hit* is a decision whose action is not allow.

>>> rules = [{"action": "block", "classes": ["nsfw", "gore"], "min_score": 0.9},
...          {"action": "review", "classes": ["nsfw"], "min_score": 0.6}]
>>> evaluate(rules, {"nsfw": 0.7, "gore": 0.1}).to_dict()
{'action': 'review', 'rule': 1, 'rule_name': None, 'class': 'nsfw', 'score': 0.7, 'score_kind': 'probability'}
>>> evaluate(rules, {"nsfw": 0.5, "gore": 0.1}).hit
False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.schemas.taxonomy import PolicyRule

__all__ = ["SEVERITY", "PolicyDecision", "PolicyError", "ALLOW", "evaluate", "evaluate_batch"]

SEVERITY = {"allow": 0, "review": 1, "block": 2}


class PolicyError(ValueError):
    """Rules that cannot be evaluated with the scores given (e.g. similarity rule, no similarities)."""


@dataclass(frozen=True)
class PolicyDecision:
    """The outcome for one event: the action and the rule/class/score that caused it."""

    action: str = "allow"
    rule: int | None = None  # index of the rule in the taxonomy's policies
    rule_name: str | None = None
    class_name: str | None = None
    score: float | None = None
    score_kind: str | None = None  # "probability" | "similarity"

    @property
    def hit(self) -> bool:
        """True when the decision should go to the moderation topic (action is not allow)."""
        return self.action != "allow"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "rule": self.rule,
            "rule_name": self.rule_name,
            "class": self.class_name,
            "score": self.score,
            "score_kind": self.score_kind,
        }


ALLOW = PolicyDecision()


def _rules(rules: Sequence[PolicyRule | Mapping[str, Any]]) -> list[PolicyRule]:
    return [r if isinstance(r, PolicyRule) else PolicyRule.model_validate(r) for r in rules]


def evaluate_batch(
    rules: Sequence[PolicyRule | Mapping[str, Any]],
    class_names: Sequence[str],
    probability: np.ndarray,
    similarity: np.ndarray | None = None,
) -> list[PolicyDecision]:
    """Decisions for a batch: ``probability``/``similarity`` are ``(n, C)`` in ``class_names`` order.

    >>> evaluate_batch([{"action": "block", "classes": ["a"], "min_score": 0.5}], ["a", "b"],
    ...                np.array([[0.5, 0.5], [0.4, 0.6]]))[1].action
    'allow'
    """
    rules = _rules(rules)
    prob = np.asarray(probability, dtype=np.float64)
    n = prob.shape[0]
    if not rules:
        return [ALLOW] * n
    index = {name: i for i, name in enumerate(class_names)}
    R = len(rules)
    key = np.full((n, R), -1, dtype=np.int64)  # -1: rule does not fire
    best_col = np.zeros((n, R), dtype=np.int64)
    best_val = np.zeros((n, R), dtype=np.float64)
    for r, rule in enumerate(rules):
        if rule.score == "similarity":
            if similarity is None:
                raise PolicyError(f"policy rule {r} reads similarities, none were given")
            mat = np.asarray(similarity, dtype=np.float64)
        else:
            mat = prob
        cols = [index[c] for c in rule.classes if c in index]
        if not cols:
            continue
        sub = mat[:, cols]
        sub = np.where(np.isnan(sub), -np.inf, sub)  # NaN (missing) must neither win nor fire
        a = sub.argmax(axis=1)  # first listed class on a tie
        val = sub[np.arange(n), a]
        best_col[:, r] = np.asarray(cols)[a]
        best_val[:, r] = val
        # Most severe first, then earliest rule: one integer key per (event, rule).
        key[:, r] = np.where(val >= rule.min_score, SEVERITY[rule.action] * (R + 1) + (R - r), -1)
    win = key.argmax(axis=1)
    out = []
    for i, r in enumerate(win.tolist()):
        if key[i, r] < 0:
            out.append(ALLOW)
            continue
        rule = rules[r]
        out.append(PolicyDecision(
            action=rule.action, rule=r, rule_name=rule.name, class_name=class_names[int(best_col[i, r])],
            score=float(best_val[i, r]), score_kind=rule.score,
        ))
    return out


def evaluate(
    rules: Sequence[PolicyRule | Mapping[str, Any]],
    class_scores: Mapping[str, float],
    *,
    similarities: Mapping[str, float] | None = None,
) -> PolicyDecision:
    """Decision for one event. ``class_scores`` are probabilities; similarity rules read
    ``similarities`` (a :class:`PolicyError` if such a rule exists and they are missing)."""
    names = list(dict.fromkeys([*class_scores, *(similarities or {})]))
    nan = float("nan")  # a class missing from one mapping never fires a rule reading it
    prob = np.array([[class_scores.get(c, nan) for c in names]], dtype=np.float64)
    sim = None if similarities is None else np.array([[similarities.get(c, nan) for c in names]])
    return evaluate_batch(rules, names, prob, sim)[0]
