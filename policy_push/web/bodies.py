"""Reading request bodies and writing JSON responses.

The body size limit is enforced twice: a declared ``Content-Length`` over the limit is refused
before one byte is read, and aiohttp's ``client_max_size`` (set from the same setting) stops a
chunked body as soon as it passes the limit.  Nothing reads an unbounded body into memory.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from policy_push.domain.text import first_text_problem, text_problem
from policy_push.errors import (
    FieldError,
    InvalidInput,
    PayloadTooLarge,
    RecordInvalid,
    RequestRefused,
    RequestTimeout,
    UnsupportedMediaType,
)

from .keys import settings_key

__all__ = [
    "check_text", "encode_json", "json_bytes_response", "json_response", "read_body", "read_form", "read_json",
    "read_model", "too_large",
]

M = TypeVar("M", bound=BaseModel)

_JSON_TYPES = ("application/json", "application/octet-stream", "text/plain")

#: readable Chinese in responses; a JSON string never needs ASCII escapes
_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def encode_json(data: Any) -> bytes:
    """The body :func:`json_response` would send, as bytes (for an answer kept already encoded)."""
    return _dumps(data).encode()


def json_bytes_response(body: bytes, *, status: int = 200) -> web.Response:
    """A JSON response of a body :func:`encode_json` made."""
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def too_large(limit: int, what: str = "request body") -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{what} is larger than the limit of {limit:,} bytes (setting POLICY_PUSH_MAX_BODY_BYTES)",
        loc=["body"],
        limit_bytes=limit,
    )


def _too_slow(request: web.Request) -> RequestTimeout:
    limit = request.app[settings_key].request_body_timeout_s
    return RequestTimeout(
        f"the body did not arrive within {limit:g} s (setting POLICY_PUSH_REQUEST_BODY_TIMEOUT_S)", loc=["body"]
    )


async def read_body(request: web.Request) -> bytes:
    """The raw body, bounded in size (client_max_size: 413 past the limit) and in time (408): a
    client that stalls its body must not hold a connection and a handler for ever."""
    try:
        async with asyncio.timeout(request.app[settings_key].request_body_timeout_s):
            return await request.read()
    except TimeoutError:
        raise _too_slow(request) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # 1e400 parses to inf: stored, it later renders as "最高inf万元" and is served as Infinity
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is out of range (numbers must be finite)")
    return value


def check_text(value: str, loc: list[str | int]) -> str:
    """``value`` when it is valid Unicode without NUL; 422 for a lone surrogate (``"\\ud800"`` in JSON, or
    bytes that are not UTF-8 in a header) or a NUL, which no database (or, for NUL, not PostgreSQL) can store."""
    problem = text_problem(value)
    if problem:
        raise InvalidInput(problem, loc=loc)
    return value


def _check_strings(doc: Any) -> None:
    """Every string (and key) of a parsed JSON document can be stored (policy_push.domain.text)."""
    found = first_text_problem(doc, ["body"])
    if found is not None:
        raise InvalidInput(found[1], loc=found[0])


async def read_json(request: web.Request) -> Any:
    """The request's JSON document; 413 when too large, 415 for another content type,
    422 (with line and column) when it does not parse."""
    limit = request.app[settings_key].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    ctype = request.content_type
    if request.body_exists and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"send the record as application/json, not {ctype[:60]}", loc=["header", "Content-Type"])
    raw = await read_body(request)
    if not raw.strip():
        raise InvalidInput("a JSON body is required", loc=["body"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not UTF-8 text: {exc.reason} at byte {exc.start}", loc=["body"]) from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            loc=["body"],
            line=exc.lineno,
            column=exc.colno,
        ) from None
    except ValueError as exc:  # NaN / Infinity
        raise InvalidInput(f"invalid JSON: {exc}", loc=["body"]) from None
    except RecursionError:
        # the C parser recurses once per level: 100k nested arrays must be a 422, not a crash
        raise InvalidInput("invalid JSON: nested too deeply", loc=["body"]) from None
    _check_strings(doc)
    return doc


async def read_model(request: web.Request, model: type[M]) -> M:
    """The JSON body validated as ``model``; every field it refuses is named (a 422 listing them)."""
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecordInvalid([FieldError(("body", *e["loc"]), e["msg"]) for e in exc.errors()]) from None


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_form(request: web.Request) -> dict[str, str]:
    """The request's form fields (text only; the last value of a repeated field); 413 when too large,
    415 for another content type, 400 for a multipart body without a boundary or otherwise broken."""
    limit = request.app[settings_key].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    ctype = request.content_type
    if request.body_exists and ctype not in _FORM_TYPES:
        raise UnsupportedMediaType(
            f"send the form as application/x-www-form-urlencoded, not {ctype[:60]}", loc=["header", "Content-Type"]
        )
    try:
        async with asyncio.timeout(request.app[settings_key].request_body_timeout_s):
            form = await request.post()
    except TimeoutError:
        raise _too_slow(request) from None
    except web.HTTPException:
        raise  # 413 from client_max_size
    except (ValueError, AssertionError, UnicodeDecodeError, LookupError, HttpProcessingError) as exc:
        # aiohttp's multipart reader asserts on a missing boundary, raises ValueError on a bad one and
        # InvalidHeader on a part header it cannot parse
        raise RequestRefused(f"the form body cannot be read ({type(exc).__name__}); send a well-formed form", loc=["body"]) from None
    out: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, str):
            out[check_text(key, ["form"])] = check_text(value, ["form", key])
    return out
