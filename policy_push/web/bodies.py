"""Reading request bodies and writing JSON responses.

The body size limit is enforced twice: a declared ``Content-Length`` over the limit is refused
before one byte is read, and aiohttp's ``client_max_size`` (set from the same setting) stops a
chunked body as soon as it passes the limit.  Nothing reads an unbounded body into memory.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aiohttp import web

from policy_push.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

from .keys import settings_key

__all__ = ["json_response", "read_json", "too_large"]

_JSON_TYPES = ("application/json", "application/octet-stream", "text/plain")

#: readable Chinese in responses; a JSON string never needs ASCII escapes
_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def too_large(limit: int, what: str = "request body") -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{what} is larger than the limit of {limit:,} bytes (setting POLICY_PUSH_MAX_BODY_BYTES)",
        loc=["body"],
        limit_bytes=limit,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: web.Request) -> Any:
    """The request's JSON document; 413 when too large, 415 for another content type,
    422 (with line and column) when it does not parse."""
    limit = request.app[settings_key].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    ctype = request.content_type
    if request.body_exists and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"send the record as application/json, not {ctype[:60]}", loc=["header", "Content-Type"])
    raw = await request.read()  # bounded by client_max_size: raises 413 past the limit
    if not raw.strip():
        raise InvalidInput("a JSON body is required", loc=["body"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not UTF-8 text: {exc.reason} at byte {exc.start}", loc=["body"]) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
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
