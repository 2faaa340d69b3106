"""Object events: what producers publish to the objects topic (keyed by object id).

    >>> ObjectEvent.model_validate({"id": "a1", "class": "Article", "vector": [0.1, 0.2]}).class_
    'Article'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.schemas.vectors import Vector

Id = str


class ObjectEvent(BaseModel):
    """An object to classify: Weaviate's object shape (id, class, properties, vector)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", arbitrary_types_allowed=True)

    id: Id = Field(min_length=1, max_length=512)
    class_: str = Field(alias="class", min_length=1, max_length=256)
    properties: dict[str, Any] = Field(default_factory=dict)
    vector: Vector | None = None
    text: str | None = Field(None, description="vectorized by the service when no vector is given")

    @model_validator(mode="after")
    def _needs_vector_or_text(self) -> "ObjectEvent":
        if self.vector is None and not self.text:
            raise PydanticCustomError("vector_missing", "object has neither a vector nor text to vectorize")
        return self
