"""Field types shared by the policy and profile models, each failing with a readable reason."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo

from .context import ValidationContext

__all__ = [
    "ISODate",
    "RecordId",
    "TagList",
    "check_region",
    "check_short_text",
    "context_of",
]

_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def context_of(info: ValidationInfo) -> ValidationContext:
    ctx = info.context
    if isinstance(ctx, ValidationContext):
        return ctx
    if isinstance(ctx, dict) and isinstance(ctx.get("ctx"), ValidationContext):
        return ctx["ctx"]
    return _default_context()


_DEFAULT: list[ValidationContext] = []


def _default_context() -> ValidationContext:
    if not _DEFAULT:
        _DEFAULT.append(ValidationContext())
    return _DEFAULT[0]


def _record_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string id, got {type(value).__name__}")
    if not _ID_RE.match(value):
        raise ValueError("id must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return value


def _iso_date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError(f"expected a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None


def _tag_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"expected a list of tags, got {type(value).__name__}")
    out: list[str] = []
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip():
            raise ValueError(f"tag {i} must be a non-empty string")
        if len(tag) > 32:
            raise ValueError(f"tag {i} ({tag[:20]}…) is longer than 32 characters")
        if tag not in out:
            out.append(tag)
    return out


RecordId = Annotated[str, BeforeValidator(_record_id)]
ISODate = Annotated[dt.date, BeforeValidator(_iso_date), PlainSerializer(lambda d: d.isoformat(), return_type=str)]
TagList = Annotated[list[str] | None, BeforeValidator(_tag_list)]


def check_short_text(value: str | None, info: ValidationInfo, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError("is required")
        return None
    limit = context_of(info).max_short_text_chars
    if required and not value.strip():
        raise ValueError("must not be empty")
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
    return value


def check_code(
    value: str | None, info: ValidationInfo, *, pattern: str, table: str, shape: str, unknown: str
) -> str | None:
    """A code of a reference table (``ctx.ref.<table>``): well formed (``shape`` says how), then known
    (``unknown`` says where it was looked for) unless the record comes from our own storage."""
    if value is None:
        return None
    if not re.fullmatch(pattern, value):
        raise ValueError(f"{shape}, got {value!r}")
    ctx = context_of(info)
    if not ctx.trusted and value not in getattr(ctx.ref, table):
        raise ValueError(f"unknown {unknown}")
    return value


def check_region(value: str | None, info: ValidationInfo) -> str | None:
    return check_code(value, info, pattern=r"\d{6}(\d{3})?", table="regions", shape="region code must be 6 or 9 digits",
                      unknown=f"region code {value!r} (not in the regions table)")  # fmt: skip
