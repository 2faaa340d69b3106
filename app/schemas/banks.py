"""Hash banks on the training topic: a ``bank`` declares a list of known content, ``bank_entry``
records fill it (upserted and deleted live, like examples).

Keys: ``bank:<name>`` and ``bank_entry:<id>`` (entry ids are unique across banks). An entry
carries PDQ hashes as 64 hex digits (``hash`` for an image, ``hashes`` for a video's frames, a
vPDQ target), or ``content`` (base64 image or video) that the service hashes on the way in; the
stored record always holds ``hashes``.

    >>> BankRecord.model_validate({"record": "bank", "name": "known-bad"}).threshold
    31
    >>> BankEntry.model_validate({"record": "bank_entry", "id": "e1", "bank": "known-bad", "hash": "00" * 32}).bank
    'known-bad'
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

BANK_PREFIX = "bank:"
BANK_ENTRY_PREFIX = "bank_entry:"
#: frame hashes one entry may hold (a 10-minute video at 1 fps is 600)
MAX_ENTRY_HASHES = 10_000


class BankRecord(BaseModel):
    """A bank: its signal type, match threshold (bits), labels (e.g. the policy category) and the
    action a match takes (``block`` / ``review``: a moderation hit; ``allow``: reported only)."""

    model_config = ConfigDict(extra="forbid")

    record: Literal["bank"] = "bank"
    op: Literal["upsert", "delete"] = "upsert"
    name: str = Field(min_length=1, max_length=256)
    version: int = Field(1, ge=1)
    signal_type: Literal["pdq"] = "pdq"
    threshold: int = Field(31, ge=0, le=63, description="largest Hamming distance (bits of 256) that matches; PDQ: 31")
    labels: dict[str, str] = Field(default_factory=dict, description="e.g. {'category': 'terrorism'}")
    action: Literal["block", "review", "allow"] = "block"
    index_id: str | None = Field(None, description="match media of this index only; None: every index")


class BankEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: Literal["bank_entry"] = "bank_entry"
    op: Literal["upsert", "delete"] = "upsert"
    id: str = Field(min_length=1, max_length=512)
    bank: str = Field("", max_length=256)
    hash: str | None = Field(None, description="one PDQ hash, 64 hex digits")
    hashes: list[str] | None = Field(None, max_length=MAX_ENTRY_HASHES, description="a video's frame hashes")
    content: str | None = Field(None, description="base64 image or video to hash instead")
    label: str | None = Field(None, max_length=256)
    provenance: dict[str, Any] = Field(default_factory=dict, description="where it came from (source, case, ...)")

    @model_validator(mode="after")
    def _check(self) -> "BankEntry":
        if self.op == "upsert":
            if not self.bank:
                raise PydanticCustomError("missing", "a bank entry needs 'bank'")
            if sum(x is not None for x in (self.hash, self.hashes, self.content)) != 1:
                raise PydanticCustomError("hash_missing", "a bank entry needs exactly one of hash, hashes, content")
        return self
