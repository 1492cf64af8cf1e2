"""The access log: one line per request naming the route, never the URL as sent.

aiohttp's own access log writes the request line (``GET /s/Ab3dEf7h HTTP/1.1``), so every link code,
signed link token and record id a person's link carries would land in the log, where they are a
credential (the code opens that person's page).  This logger writes the route's pattern
(``/s/{code}``, ``/p/{policy_id}``) and drops the query string; a path that matched no route is
written as ``-``.  The request id ties the line to the error log.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import request_id_key

__all__ = ["RedactingAccessLogger", "route_pattern"]


def route_pattern(request: web.BaseRequest) -> str:
    """The route pattern a request matched (``/p/{policy_id}``), or ``-``: never the path as sent."""
    match_info = getattr(request, "_match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "-"


class RedactingAccessLogger(AbstractAccessLogger):
    """``<method> <route pattern> <status> <bytes> <ms> [request_id=…]``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        request_id = request.get(request_id_key, "-") if isinstance(request, web.Request) else "-"
        self.logger.info(
            "%s %s %d %d %.1fms [request_id=%s]",
            request.method if request.method.isalpha() else "-",
            route_pattern(request),
            response.status,
            response.body_length,
            time * 1000,
            request_id,
        )
