"""The error middleware: every error becomes JSON (who may ask what is policy_push.web.auth).

Errors: :data:`STATUS` is the one table from an error of ``policy_push.errors`` to its HTTP status (the
most specific class listed wins); the body is always ``{"errors": [{"loc", "msg", …}]}``. aiohttp's own
404/405/413 are re-dressed the same way; anything else is logged under a request id and answered with a
500 JSON body. Logs name the exception type, its message with anything shaped like a phone or ID number
masked (driver messages quote the values of the row), and where it was raised.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import IntegrityError

from policy_push.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    MatchIndexUnavailable,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PiiDecryptError,
    PolicyPushError,
    RequestRefused,
    RequestTimeout,
    StorageError,
    TooManyRequests,
    UnsupportedMediaType,
)
from policy_push.logs import REQUEST_ID, mask_personal
from policy_push.storage.sql import is_busy

from .bodies import json_response, read_body, too_large
from .keys import request_id_key, route_spec, settings_key

__all__ = ["REQUEST_ID_HEADER", "STATUS", "body_middleware", "error_middleware", "expect_continue", "input_middleware", "status_of"]

log = logging.getLogger("policy_push.web")

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


#: error class -> HTTP status; a class not listed takes its nearest listed base's
STATUS: dict[type[PolicyPushError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    NotAllowed: 403,
    NotAuthenticated: 401,
    TooManyRequests: 429,
    RequestRefused: 400,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    RequestTimeout: 408,
    MatchIndexUnavailable: 503,
    StorageError: 503,
    ConfigurationError: 500,
    PiiDecryptError: 500,
}


def status_of(exc: PolicyPushError) -> int:
    """The HTTP status of an error: its nearest class in :data:`STATUS`."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_ID_RE.match(given) else uuid.uuid4().hex


def _errors_response(status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"errors": errors}, status=status, headers=headers)


def _from_error(exc: PolicyPushError, request_id: str) -> web.Response:
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    if status >= 500:  # a fault of ours, not of the request: its message may say too much
        return _errors_response(status, [{"loc": [], "msg": _SERVER_SIDE.get(status, "internal error"), "request_id": request_id}])
    return _errors_response(status, exc.as_errors(), headers)


#: seconds a client should wait after a 503 for a busy database (a lock held past the busy timeout)
BUSY_RETRY_AFTER_S = 2
_BUSY = f"the database is busy with another write; retry in {BUSY_RETRY_AFTER_S} s"

_SERVER_SIDE = {503: "the service cannot do this right now; see /healthz", 500: "internal error"}


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        raise exc  # redirects and the like are answers, not errors
    if exc.status == 413:
        return _errors_response(413, too_large(request.app[settings_key].max_body_bytes).as_errors())
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
    if exc.status == 404:
        msg = f"no route {request.path[:200]!r}; see /api/v1/openapi.json"
        return _errors_response(404, [{"loc": ["path"], "msg": msg}], headers)
    if exc.status == 405:
        allowed = headers.get("Allow", "")
        msg = f"method {request.method} is not allowed here; allowed: {allowed}"
        return _errors_response(405, [{"loc": ["method"], "msg": msg}], headers)
    return _errors_response(exc.status, [{"loc": [], "msg": exc.reason}], headers)


def _where(request: web.Request) -> str:
    """The route's path template (never the path itself, which may hold an id)."""
    return request.match_info.route.resource.canonical if request.match_info.route.resource else request.path


def _log_unexpected(request: web.Request, exc: BaseException, request_id: str) -> None:
    where = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "unexpected %s (%s) in %s %s [request_id=%s]\n%s",
        type(exc).__name__,
        mask_personal(str(exc))[:500],
        request.method,
        _where(request),
        request_id,
        where,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    request[request_id_key] = request_id
    REQUEST_ID.set(request_id)  # every log line of this request carries it (policy_push.logs)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except MatchIndexUnavailable as exc:  # says plainly that matching is down, not a fault of the request
        response = _errors_response(503, exc.as_errors())
    except PolicyPushError as exc:
        if status_of(exc) >= 500:
            _log_unexpected(request, exc, request_id)
        response = _from_error(exc, request_id)
    except IntegrityError:
        # two requests raced to write the same record; the loser may simply retry
        response = _errors_response(409, [{"loc": ["body"], "msg": "conflicting concurrent write; retry the request"}])
    except web.HTTPException as exc:
        response = _from_http_exception(request, exc)
    except Exception as exc:
        if is_busy(exc):
            # a writer held the database past the busy timeout: the request is sound and a retry will do (the
            # providers retry a callback that is not answered 200); one line, no traceback
            log.warning("database busy in %s %s, answered 503 [request_id=%s]", request.method, _where(request), request_id)
            busy = [{"loc": [], "msg": _BUSY, "request_id": request_id}]
            response = _errors_response(503, busy, {"Retry-After": str(BUSY_RETRY_AFTER_S)})
        else:
            _log_unexpected(request, exc, request_id)
            response = _errors_response(500, [{"loc": [], "msg": "internal error", "request_id": request_id}])
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _utf8(value: str | bytes) -> bool:
    """Whether ``value`` is UTF-8 text: bytes that decode, or a string without lone surrogates."""
    try:
        if isinstance(value, bytes):
            value.decode("utf-8")
        else:
            value.encode("utf-8")
    except UnicodeError:
        return False
    return True


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (400) a request whose headers, path or query are not valid UTF-8 text.

    aiohttp decodes header bytes such as ``\\xff\\xfe`` with ``surrogateescape``; the lone surrogates
    this leaves in a string pass every check and then fail where the value is written (a database, a
    log, a provider) with a UnicodeEncodeError: a 500 caused by the request.  Checked once, here."""
    for name, value in request.raw_headers:
        if not _utf8(name) or not _utf8(value):
            raise RequestRefused("a request header is not valid UTF-8 text", loc=["header"])
    if not _utf8(request.path) or not all(_utf8(k) and _utf8(v) for k, v in request.query.items()):
        raise RequestRefused("the URL is not valid UTF-8 text once percent-decoded", loc=["path"])
    return await handler(request)


#: bodies read whole by their handlers: read here first, under the time limit (an NDJSON import streams,
#: and a multipart form is parsed from the stream, so those two are bounded where they are read)
_READ_WHOLE = ("application/json", "text/xml", "application/x-www-form-urlencoded")


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read a body its handler will read whole, bounded in size (413) and in time (408), after the
    token check: a client that stalls its body gets 408 instead of holding a connection and a handler
    for ever, on every route, the provider callbacks included.  The handler then reads the cached body."""
    spec = route_spec(request)
    if (
        spec is not None and spec.body is not None and spec.body.content_type in _READ_WHOLE
        and request.body_exists and not request.content_type.startswith("multipart/")
    ):  # fmt: skip
        await read_body(request)
    return await handler(request)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: refuse at once (401/403/413) what would be refused after the
    upload, so a client does not send 5 MB to hear "too large".  Runs before the middlewares,
    hence it answers with a response instead of raising."""
    spec = route_spec(request)
    limit = request.app[settings_key].max_body_bytes
    try:
        if spec is not None and spec.auth and not ("Authorization" in request.headers or "pp_staff" in request.cookies):
            raise NotAuthenticated("log in, or send 'Authorization: Bearer <token>'", loc=["header", "Authorization"])
        bounded = spec is not None and spec.body is not None and spec.body.content_type == "application/json"
        if bounded and request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
    except PolicyPushError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else {}
        headers[REQUEST_ID_HEADER] = _request_id(request)
        return _errors_response(status_of(exc), exc.as_errors(), headers)
    expect = request.headers.get("Expect", "")
    if expect.lower() != "100-continue":
        return _errors_response(417, [{"loc": ["header", "Expect"], "msg": f"unknown Expect: {expect[:60]}"}])
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # as aiohttp's own handler: the real response has not started
    return None
