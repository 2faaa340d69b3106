"""Taxonomy and moderation-policy models (the ``training`` topic's taxonomy records).

A taxonomy is a named, versioned set of classes described by prompts, following the design's
``{name, prompts[], prompt_vectors?, parent?, head?}`` and the Twelve Labs ``classes`` shape.
These models check what one record can check on its own (types, ranges, one vector per prompt);
whole-graph rules (unknown parents, cycles, duplicate names, vector dimensions) are checked by
:func:`app.core.taxonomy.compile_taxonomy`, which raises ``TaxonomyError`` with a machine-readable
``reason`` suitable for a dead letter.

>>> tax = Taxonomy(name="tone", version=1, classes=[
...     {"name": "happy", "prompts": ["a joyful text"]},
...     {"name": "sad", "prompts": ["a gloomy text"]}])
>>> (tax.vectorizer, tax.temperature, [c.name for c in tax.classes])
('hashing', 0.05, ['happy', 'sad'])
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["TaxonomyClass", "PolicyRule", "Taxonomy", "DEFAULT_TEMPERATURE"]

#: Softmax temperature for cosine similarities. Cosines live in [-1, 1] and, for sentence
#: embeddings, the best and second-best prompt usually differ by 0.05-0.2; with T = 0.05
#: (logit scale 1/T = 20) a 0.1 cosine gap becomes e^2 ~ 7.4x odds: decisive but not one-hot.
#: CLIP learns a scale of 100 (T = 0.01), which saturates for our hashing vectorizer.
DEFAULT_TEMPERATURE = 0.05


class TaxonomyClass(BaseModel):
    """One class: a name, the prompts that describe it, optional precomputed prompt vectors.

    ``prompts`` must be non-empty for a leaf. A class that is the ``parent`` of others may have
    ``prompts=[]``: its score is the max of its children's, its own prompts are not scored
    (kept as documentation / for UIs). ``head`` groups mutually exclusive classes (Hive's
    multi-head models); a child inherits its parent's head when it names none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=256)
    prompts: list[str]
    prompt_vectors: list[list[float]] | None = None
    parent: str | None = None
    head: str | None = Field(default=None, min_length=1)

    @field_validator("prompts")
    @classmethod
    def _prompts_not_blank(cls, prompts: list[str]) -> list[str]:
        if any(not p.strip() for p in prompts):
            raise ValueError("prompts must not be blank")
        return prompts

    @model_validator(mode="after")
    def _one_vector_per_prompt(self) -> TaxonomyClass:
        vecs = self.prompt_vectors
        if vecs is not None:
            if len(vecs) != len(self.prompts):
                raise ValueError(
                    f"class {self.name!r}: {len(vecs)} prompt_vectors for {len(self.prompts)} prompts"
                )
            if any(not all(math.isfinite(x) for x in v) for v in vecs):
                raise ValueError(f"class {self.name!r}: prompt_vectors must be finite")
        return self


class PolicyRule(BaseModel):
    """A moderation rule: ``action`` fires when any of ``classes`` scores ``>= min_score``.

    ``score`` says which number is read: ``probability`` (head softmax; a parent's probability is
    the sum of its leaves') or ``similarity`` (raw cosine; a parent's is the max of its children's).
    Rules are evaluated by :func:`app.core.policies.evaluate`: the most severe firing action wins
    (block > review > allow), ties go to the earlier rule.

    >>> PolicyRule(action="block", classes=["nsfw", "gore"], min_score=0.9).score
    'probability'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["block", "review", "allow"]
    classes: list[str] = Field(min_length=1)
    min_score: float
    score: Literal["probability", "similarity"] = "probability"
    name: str | None = None

    @model_validator(mode="after")
    def _threshold_in_range(self) -> PolicyRule:
        lo = 0.0 if self.score == "probability" else -1.0
        if not (lo <= self.min_score <= 1.0):
            raise ValueError(f"min_score for a {self.score} rule must be in [{lo}, 1]")
        return self


class Taxonomy(BaseModel):
    """A named, versioned prompt taxonomy: flat, hierarchical (``parent``) or multi-head (``head``).

    ``vectorizer`` turns prompts without ``prompt_vectors`` into vectors: ``hashing`` (built in,
    deterministic), ``minilm`` (optional extra) or ``none`` (every prompt must carry a vector,
    e.g. image/video embeddings computed upstream). ``temperature`` is the softmax temperature
    applied to cosine similarities (see :data:`DEFAULT_TEMPERATURE`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=256)
    version: int = Field(ge=1)
    vectorizer: Literal["none", "hashing", "minilm"] = "hashing"
    temperature: float = Field(default=DEFAULT_TEMPERATURE, gt=0.0, allow_inf_nan=False)
    classes: list[TaxonomyClass]
    policies: list[PolicyRule] = Field(default_factory=list)
