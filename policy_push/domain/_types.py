"""Field types shared by the policy and profile models, each failing with a readable reason."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import fields
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo
from pydantic.json_schema import WithJsonSchema

from .context import ValidationContext

__all__ = [
    "BLANK_FREE",
    "DEFAULT_LIMITS",
    "ID_PATTERN",
    "ISODate",
    "RecordId",
    "TagList",
    "check_region",
    "check_short_text",
    "context_of",
    "short_text_schema",
]

#: fullmatch, not match with ``$``: ``$`` also matches before a trailing newline ("a\n" passed as an id)
_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: the same rule, anchored, for the OpenAPI document
ID_PATTERN = f"^{_ID_RE.pattern}$"
#: "has a character that is not whitespace" in JSON Schema's regex dialect: ECMA ``\s`` lacks the
#: separators U+001C-U+001F and U+0085 that Python's ``str.strip`` removes, so they are named too
BLANK_FREE = r"[^\s\x1c-\x1f\x85]"
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
    if not _ID_RE.fullmatch(value):
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


RecordId = Annotated[str, BeforeValidator(_record_id), WithJsonSchema({"type": "string", "pattern": ID_PATTERN})]
ISODate = Annotated[dt.date, BeforeValidator(_iso_date), PlainSerializer(lambda d: d.isoformat(), return_type=str)]
_TAG_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": BLANK_FREE}
TagList = Annotated[
    list[str] | None,
    BeforeValidator(_tag_list),
    WithJsonSchema({"anyOf": [{"type": "array", "items": _TAG_SCHEMA}, {"type": "null"}]}),
]


#: the limits a default :class:`ValidationContext` applies, which the OpenAPI document states
DEFAULT_LIMITS: dict[str, int] = {f.name: f.default for f in fields(ValidationContext) if isinstance(f.default, int)}


def short_text_schema(*, required: bool = False, limit: int | None = None) -> dict[str, object]:
    """What :func:`check_short_text` accepts, for ``Field(json_schema_extra=...)``: at most the default limit
    (POLICY_PUSH_MAX_SHORT_TEXT_CHARS), and when required something besides whitespace."""
    schema: dict[str, object] = {"maxLength": limit or DEFAULT_LIMITS["max_short_text_chars"]}
    if required:
        schema.update(minLength=1, pattern=BLANK_FREE)
    return schema


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
