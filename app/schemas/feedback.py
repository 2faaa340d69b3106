"""Feedback: a person's (or another system's) verdict on one decision of the service.

Topic ``feedback``, keyed by item id (the partition of the item's object, so the worker that
holds the stored object, with its vector, also holds the item's verdicts). One record per
verdict; ``op: "retract"`` withdraws every verdict on the item's result (and so a training
example learned from them).

    >>> fb = Feedback(feedback_id="f1", item_id="c1", result_id="c1/tone", classifier="tone",
    ...               class_="Comment", property="tone", decision=Decision(action="review", label="toxic"),
    ...               verdict="relabel", label="calm", reviewer="ana", at=1)
    >>> fb.true_label()
    'calm'
    >>> fb.model_copy(update={"verdict": "confirm"}).true_label(), fb.model_copy(update={"verdict": "reject"}).true_label()
    ('toxic', None)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.schemas.results import TaxonomyRef

Verdict = Literal["confirm", "reject", "relabel", "ground_truth"]


class Decision(BaseModel):
    """What the service decided: the policy action (zero-shot policies) and the label it gave."""

    action: Literal["allow", "review", "block"] | None = Field(None, description="policy action, if a policy ran")
    label: str | None = Field(None, description="the label the classifier gave the property")


class Feedback(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    op: Literal["verdict", "retract"] = "verdict"
    feedback_id: str = Field(min_length=1, max_length=256, description="unique per verdict (consumers dedupe on it)")
    item_id: str = Field(min_length=1, max_length=512)
    item_kind: Literal["object", "media"] = "object"
    result_id: str = Field(min_length=1, max_length=1024, description="the result judged: '<item_id>/<classifier>'")
    classifier: str = Field(min_length=1, max_length=256)
    class_: str = Field("", alias="class", max_length=256, description="the item's class (kNN learning needs it)")
    property: str = Field("", max_length=256, description="the classified property judged")
    taxonomy: TaxonomyRef | None = Field(None, description="zero-shot/media: the taxonomy and version that decided")
    index_version: int | None = Field(None, description="kNN: the index version that decided")
    decision: Decision = Field(default_factory=Decision)
    verdict: Verdict = "confirm"
    label: str | None = Field(None, max_length=256, description="relabel/ground_truth: the right label")
    reviewer: str = Field(min_length=1, max_length=256, description="who: a person or a system")
    at: int = Field(ge=0, description="when, ms since epoch")
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _check(self) -> "Feedback":
        if self.op == "verdict" and self.verdict in ("relabel", "ground_truth") and not self.label:
            raise PydanticCustomError("label_missing", "a {verdict} verdict needs 'label'", {"verdict": self.verdict})
        return self

    def true_label(self) -> str | None:
        """The right label this verdict asserts (None: only that the decision was wrong, or unknown)."""
        if self.verdict == "confirm":
            return self.decision.label
        if self.verdict == "reject":
            return None
        return self.label

    def version(self) -> str:
        """What decided, as one string: ``taxonomy@version``, ``index@version`` or ``-``."""
        if self.taxonomy is not None:
            return f"{self.taxonomy.name}@{self.taxonomy.version}"
        if self.index_version is not None:
            return f"index@{self.index_version}"
        return "-"


class FeedbackRule(BaseModel):
    """On a kNN classifier: learn verdicts as training examples (opt-in) once a rule is met."""

    model_config = ConfigDict(extra="forbid")

    learn: bool = Field(False, description="turn verdicts on items of this class into training examples")
    min_agreeing: int = Field(2, ge=1, le=100, description="reviewers who must agree on a label")
    trusted_reviewers: list[str] = Field(default_factory=list, description="one verdict of these is enough")
