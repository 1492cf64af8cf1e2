"""The policy record (formats.md, "Policy")."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from ._types import (
    BLANK_FREE,
    DEFAULT_LIMITS,
    ISODate,
    RecordId,
    check_short_text,
    context_of,
    short_text_schema,
)
from .canonical import HashedRecord

__all__ = ["RESERVED_POLICY_IDS", "Policy"]

#: words that are routes beside a policy's own address (``/api/v1/policies/suggest``,
#: ``/staff/policies/new``, ``/staff/policies/import``): a policy under one of them could never be read there
RESERVED_POLICY_IDS = frozenset({"suggest", "new", "import"})

_URL_RE = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)
#: the same rule in JSON Schema's dialect (no flags; ECMA ``\s`` lacks U+001C-U+001F and U+0085)
_URL_SCHEMA = {"maxLength": 2048, "pattern": r"^[hH][tT][tT][pP][sS]?://[^\s\x1c-\x1f\x85/$.?#][^\s\x1c-\x1f\x85]*$"}


class Policy(HashedRecord):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[RecordId, Field(json_schema_extra={"not": {"enum": sorted(RESERVED_POLICY_IDS)}})]
    title: str = Field(json_schema_extra=short_text_schema(required=True))
    issuer: str | None = Field(None, json_schema_extra=short_text_schema())
    doc_number: str | None = Field(None, json_schema_extra=short_text_schema())
    audience: Literal["enterprise", "resident"]
    categories: list[Annotated[str, Field(json_schema_extra={"minLength": 1, "maxLength": 32, "pattern": BLANK_FREE})]] = Field(
        default_factory=list
    )
    summary: str | None = Field(None, json_schema_extra=short_text_schema())
    text: str = Field("", json_schema_extra={"maxLength": DEFAULT_LIMITS["max_text_chars"]})
    url: str | None = Field(None, json_schema_extra=_URL_SCHEMA)
    published_on: ISODate | None = None
    apply_from: ISODate | None = None
    apply_until: ISODate | None = None
    # strict: a JSON number (true and "5" were read as 1.0 and 5.0)
    benefit_max_yuan: float | None = Field(None, ge=0, strict=True)
    #: bypasses quiet hours when sending (design.md, invariant 5); strict: 1 or "yes" is no boolean
    urgent: bool = Field(False, strict=True)
    #: validated as a tree by :func:`policy_push.domain.parse_policy`, which knows the audience
    criteria: dict[str, Any] | None = None

    @field_validator("id")
    @classmethod
    def _not_a_route_word(cls, v: str) -> str:
        if v in RESERVED_POLICY_IDS:
            raise ValueError(f"id {v!r} is reserved (a route beside the policies'); reserved: {', '.join(sorted(RESERVED_POLICY_IDS))}")
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str, info: ValidationInfo) -> str:
        return check_short_text(v, info, required=True)  # type: ignore[return-value]

    @field_validator("issuer", "doc_number", "summary")
    @classmethod
    def _short(cls, v: str | None, info: ValidationInfo) -> str | None:
        return check_short_text(v, info)

    @field_validator("text")
    @classmethod
    def _text(cls, v: str, info: ValidationInfo) -> str:
        limit = context_of(info).max_text_chars
        if len(v) > limit:
            raise ValueError(f"text is {len(v):,} characters long; the limit is {limit:,}")
        return v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        for i, c in enumerate(v):
            if not c.strip() or len(c) > 32:
                raise ValueError(f"category {i} must be 1-32 characters")
        return list(dict.fromkeys(v))

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 2048 or not _URL_RE.fullmatch(v)):
            raise ValueError("url must be an http(s) address of at most 2048 characters")
        return v

    @field_validator("apply_until")
    @classmethod
    def _window(cls, v: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("apply_from")
        if v is not None and start is not None and v < start:
            raise ValueError(f"apply_until {v.isoformat()} is before apply_from {start.isoformat()}")
        return v

    # -- derived -------------------------------------------------------------------------------
    def is_open(self, on: dt.date) -> bool:
        """Still open for applications on ``on`` (no deadline counts as open)."""
        return self.apply_until is None or self.apply_until >= on
