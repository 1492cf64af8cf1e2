"""Query parameters: declared once, read by the views and by the OpenAPI generator alike.

A bad value is a 422 naming the parameter (``loc: ["query", "limit"]``); so is a parameter the
route does not know, since a misspelt filter (``?stauts=open``) would otherwise silently return
everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from policy_push.errors import FieldError, RecordInvalid
from policy_push.importing import PHONE_SOURCE_MAX, PHONE_SOURCE_PATTERN

__all__ = [
    "PHONE_SOURCE_PARAMS",
    "POLICY_LIST_PARAMS",
    "PROFILE_LIST_PARAMS",
    "QueryParam",
    "enum_param",
    "int_param",
    "parse_query",
    "pattern_param",
]

MAX_PAGE_SIZE = 500
_MAX_DIGITS_VALUE = 999_999_999
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    description: str
    #: JSON schema of the value, for the OpenAPI document
    schema: dict[str, Any]
    #: turns the raw string into the value, or raises ValueError with a message for the client
    convert: Callable[[str], Any]
    default: Any = None

    def openapi(self) -> dict[str, Any]:
        schema = dict(self.schema)
        if self.default is not None:
            schema["default"] = self.default
        return {"name": self.name, "in": "query", "required": False, "description": self.description, "schema": schema}


def int_param(name: str, description: str, *, minimum: int, maximum: int | None = None, default: int | None) -> QueryParam:
    def convert(raw: str) -> int:
        if not re.fullmatch(r"[+-]?\d{1,9}", raw.strip()):
            raise ValueError(f"{name} must be a whole number, got {raw[:40]!r}")
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"{name} must be at least {minimum}{upper}, got {value}")
        return value

    # without a stated maximum the converter still reads at most 9 digits: the document says so
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": _MAX_DIGITS_VALUE if maximum is None else maximum}
    return QueryParam(name, description, schema, convert, default)


def enum_param(name: str, description: str, values: Sequence[str]) -> QueryParam:
    def convert(raw: str) -> str:
        if raw not in values:
            raise ValueError(f"{name} must be one of {', '.join(values)}; got {raw[:40]!r}")
        return raw

    return QueryParam(name, description, {"type": "string", "enum": list(values)}, convert)


def pattern_param(name: str, description: str, pattern: str, explain: str) -> QueryParam:
    compiled = re.compile(pattern)

    def convert(raw: str) -> str:
        if not compiled.fullmatch(raw):
            raise ValueError(f"{name} must be {explain}; got {raw[:40]!r}")
        return raw

    return QueryParam(name, description, {"type": "string", "pattern": f"^{pattern}$"}, convert)


_LIMIT = int_param(
    "limit", f"Page size, 1-{MAX_PAGE_SIZE}.", minimum=1, maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
)
_OFFSET = int_param("offset", "Number of items to skip.", minimum=0, default=0)
_REGION = pattern_param("region", "Region code (6 or 9 digits).", r"\d{6}(\d{3})?", "a region code of 6 or 9 digits")

POLICY_LIST_PARAMS: tuple[QueryParam, ...] = (
    enum_param("audience", "Only policies for enterprises (惠企) or for residents (惠民).", ("enterprise", "resident")),
    pattern_param("category", "Only policies with this category, e.g. 资金奖补.", r"[^\x00-\x1f]{1,32}", "1-32 characters"),
    QueryParam(
        _REGION.name,
        "Only policies whose region conditions name this region or one containing it.",
        _REGION.schema,
        _REGION.convert,
    ),
    enum_param(
        "status",
        "`open`: no deadline or a deadline not yet passed (today in Asia/Shanghai); `closed`: the deadline has passed.",
        ("open", "closed"),
    ),
    _LIMIT,
    _OFFSET,
)

PROFILE_LIST_PARAMS: tuple[QueryParam, ...] = (
    QueryParam(_REGION.name, "Only profiles registered in this region.", _REGION.schema, _REGION.convert),
    _LIMIT,
    _OFFSET,
)


def parse_query(request: web.Request, params: Sequence[QueryParam]) -> dict[str, Any]:
    """The declared parameters' values (defaults filled in); every problem is reported at once."""
    known = {p.name: p for p in params}
    errors: list[FieldError] = []
    values: dict[str, Any] = {p.name: p.default for p in params}
    for name in request.query:
        if name not in known:
            allowed = ", ".join(known) or "none"
            errors.append(FieldError(("query", name[:40]), f"unknown query parameter; this route takes: {allowed}"))
    for name, param in known.items():
        raw = request.query.getall(name, [])
        if not raw:
            continue
        if len(raw) > 1:
            errors.append(FieldError(("query", name), f"{name} is given {len(raw)} times; give it once"))
            continue
        try:
            values[name] = param.convert(raw[0])
        except ValueError as exc:
            errors.append(FieldError(("query", name), str(exc)))
    if errors:
        raise RecordInvalid(errors)
    return values

#: a profile write's or an import's vouching for its phones (``policy_push.reach``); checked by
#: ``importing.phone_source_name`` so the CLI, the API and the staff form agree
PHONE_SOURCE_PARAMS: tuple[QueryParam, ...] = (
    QueryParam(
        "phone_source",
        "The official register the phones come from (e.g. 盘锦市市场监督管理局企业登记), recorded on each profile and "
        "in the audit log. Without it the phones are unproven and never pushed to, until their holder proves "
        "them with an SMS code.",
        {"type": "string", "minLength": 1, "maxLength": PHONE_SOURCE_MAX, "pattern": PHONE_SOURCE_PATTERN}, str,
    ),
)
