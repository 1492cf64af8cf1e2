"""Bulk JSONL import. The body is read chunk by chunk from ``request.content`` and cut into lines by
:func:`policy_push.importing.import_lines` (through the service) with a bounded buffer, so an import of
any size, or one 5 MB line, never sits whole in memory. ``max_body_bytes`` does not apply here; each
line is bounded by ``max_import_line_bytes`` instead.
"""

from __future__ import annotations

from aiohttp import web

from policy_push.errors import NotFound, UnsupportedMediaType
from policy_push.importing import KINDS

from ..bodies import json_response
from ..keys import service_key
from ..params import PHONE_SOURCE_PARAMS, parse_query
from ._common import drafter, staff_member

__all__ = ["NDJSON_TYPES", "import_records"]

#: accepted content types; the first is the one documented
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain", "application/octet-stream")

_CHUNK_BYTES = 64 * 1024


async def import_records(request: web.Request) -> web.Response:
    collection = request.match_info["kind"]
    if collection not in KINDS:
        raise NotFound(f"no record kind {collection[:40]!r}; use one of {', '.join(KINDS)}", loc=["path", "kind"])
    if request.body_exists and request.content_type not in NDJSON_TYPES:
        raise UnsupportedMediaType(
            f"send JSON lines as application/x-ndjson, not {request.content_type[:60]}", loc=["header", "Content-Type"]
        )
    source = parse_query(request, PHONE_SOURCE_PARAMS)["phone_source"]
    report = await request.app[service_key].import_lines(
        collection, request.content.iter_chunked(_CHUNK_BYTES), actor=staff_member(request), drafter=drafter(request),
        phone_source=source,
    )  # fmt: skip
    return json_response(report.as_dict())
